"""``ragops plan``."""

from __future__ import annotations

import json

import click

from agent.commands.common import EXAMPLE_CONFIG, load_config, load_config_or


@click.command()
@click.option("--cores", type=click.IntRange(1, 4096), default=None, help="Plan for N cores.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plan(ctx: click.Context, cores: int | None, as_json: bool) -> None:
    """Show which CPUs each service and ragops' own jobs run on."""
    from agent.systemd.cpuplan import plan_cpus

    # A plan for another machine needs no config file of this one: without it, the
    # example stack of a checkout is planned.
    settings = load_config_or(ctx, EXAMPLE_CONFIG) if cores else load_config(ctx)
    result = plan_cpus(settings, cores)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    click.echo(f"CPU plan for {result.cores} core{'s' if result.cores != 1 else ''}:")
    width = max([len(n) for n in result.services] + [len("ragops jobs")])
    for name in result.services:
        click.echo(f"  {name:<{width}}  {result.affinity(name)}")
    click.echo(f"  {'ragops jobs':<{width}}  {result.affinity('ragops')}")
