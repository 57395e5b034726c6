#!/usr/bin/env python3
"""Write ragops(1) in roff from the click command tree (no extra dependency).

Usage: gen_manpage.py [OUTFILE]   (stdout without OUTFILE)
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import version
from pathlib import Path

import click

from agent.cli import cli


def roff(text: str) -> str:
    """Escape text for roff: backslashes, hyphens, and control characters at line starts."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]


def option_lines(ctx: click.Context, command: click.Command, *, with_help: bool = False) -> list[str]:
    out: list[str] = []
    for param in command.get_params(ctx):
        if param.name == "help" and not with_help:
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, help_text = record
        out += [".TP", f"\\fB{roff(names)}\\fR", roff(help_text or "")]
    return out


def command_sections(
    ctx: click.Context, command: click.Command, path: list[str]
) -> list[str]:
    """One subsection per command, depth first, in the order ``--help`` lists them."""
    out: list[str] = []
    if path:
        usage = " ".join(command.collect_usage_pieces(ctx))
        out += [".SS " + roff(" ".join(["ragops", *path])), f"\\fBragops {roff(' '.join(path))}\\fR "
                + roff(usage), ".PP"]
        for para in paragraphs(command.help or command.short_help or ""):
            out += [roff(para), ".PP"]
        opts = [line for line in option_lines(ctx, command) if line]
        if opts:
            out += [".RS", *opts, ".RE"]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = click.Context(sub, info_name=name, parent=ctx)
            out += command_sections(sub_ctx, sub, [*path, name])
    return out


def render_manpage() -> str:
    ctx = click.Context(cli, info_name="ragops")
    ver = version("ragops")
    help_paras = paragraphs(cli.help or "")
    lines = [
        '.TH RAGOPS 1 "" "ragops ' + ver + '" "User Commands"',
        ".SH NAME",
        "ragops \\- " + roff(help_paras[0].split(":", 1)[-1].strip()),
        ".SH SYNOPSIS",
        "\\fBragops\\fR [\\fIOPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
    ]
    for para in help_paras:
        lines += [roff(para), ".PP"]
    lines += [".SH OPTIONS", *option_lines(ctx, cli, with_help=True), ".SH COMMANDS"]
    lines += command_sections(ctx, cli, [])
    lines += [
        ".SH FILES",
        ".TP",
        "\\fI/etc/ragops/ragops.toml\\fR",
        "The configuration file; every setting is documented in it.",
        ".TP",
        "\\fI/usr/share/ragops/units/\\fR",
        "The unit templates \\fBragops units install\\fR renders.",
        ".SH SEE ALSO",
        "\\fBsystemctl\\fR(1), \\fBsystemd.exec\\fR(5), \\fBjournalctl\\fR(1)",
    ]
    # A .PP right before a section header or .TP is redundant and man warns on some.
    cleaned: list[str] = []
    for line in lines:
        if cleaned and cleaned[-1] == ".PP" and line.startswith((".SH", ".SS", ".TP", ".RS")):
            cleaned.pop()
        cleaned.append(line)
    return "\n".join(cleaned) + "\n"


def main(argv: list[str]) -> int:
    text = render_manpage()
    if len(argv) > 1:
        Path(argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
