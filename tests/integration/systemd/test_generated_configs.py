"""Generated configurations through ``config check`` and ``units render``: never a traceback,
and whatever is accepted renders units that systemd-analyze verify passes without a word.

Each example is the shipped configuration with a few values replaced by hostile ones (wrong
types, huge and negative numbers, inf/nan, unicode, a backslash at the end, NUL, quotes,
specifiers, unknown keys) and a few RAGOPS_* environment overrides. The commands' own code
runs in-process (``settings_from_data``, ``plan_cpus``, ``render_checked``); every 20th
accepted configuration is written out and verified with the flags test_systemd_analyze.py
uses; a handful go through the real CLI as well.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config.loading import settings_from_data
from agent.errors import ConfigError
from agent.systemd.cpuplan import plan_cpus
from agent.systemd.render import render_checked
from tests.paths import SHIPPED_CONFIG

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(
    ANALYZE is None and os.environ.get("CI") != "true",
    reason="systemd-analyze is not installed (apt-get install systemd)",
)
EXAMPLES = 2000
VERIFY_EVERY = 20
SOURCE = "/etc/ragops/ragops.toml"
BASE: dict[str, Any] = tomllib.loads(SHIPPED_CONFIG.read_text())
SERVICE = sorted(BASE["services"])[0]

FIELDS: list[tuple[str, ...]] = [
    ("ragops", "state_dir"),
    ("ragops", "run_dir"),
    ("ragops", "ragops_bin"),
    ("ragops", "log_dir"),
    ("cpu", "cores"),
    ("agent", "watchdog_seconds"),
    ("agent", "metrics_listen"),
    ("snapshot", "target"),
    ("snapshot", "on_calendar"),
    ("snapshot", "timeout_seconds"),
    ("snapshot", "randomized_delay_seconds"),
    ("snapshot", "retention", "orphan_grace_hours"),
    ("snapshot", "retention", "keep_last"),
    ("logrotate", "on_calendar"),
    ("logrotate", "randomized_delay_seconds"),
    ("services", SERVICE, "exec"),
    ("services", SERVICE, "description"),
    ("services", SERVICE, "memory_max"),
    ("services", SERVICE, "cpus"),
    ("services", SERVICE, "data_paths"),
    ("services", SERVICE, "environment"),
    ("services", SERVICE, "restart_sec"),
    ("services", SERVICE, "start_timeout_seconds"),
    ("services", SERVICE, "stop_timeout_seconds"),
    ("services", SERVICE, "start_limit_interval_seconds"),
    ("services", SERVICE, "working_directory"),
    ("services", SERVICE, "environment_file"),
    ("services", SERVICE, "user"),
    ("services", SERVICE, "cpu_weight"),
    ("services", SERVICE, "log_rate_limit_burst"),
    ("services", SERVICE, "credentials"),
    ("services", SERVICE, "memory_deny_write_execute"),
    ("services", SERVICE, "unknown_key"),
    ("unknown_table",),
]
ENV_NAMES = [
    "RAGOPS_RAGOPS__STATE_DIR",
    "RAGOPS_RAGOPS__RAGOPS_BIN",
    "RAGOPS_SNAPSHOT__ON_CALENDAR",
    "RAGOPS_SNAPSHOT__TARGET",
    "RAGOPS_SNAPSHOT__RETENTION__ORPHAN_GRACE_HOURS",
    "RAGOPS_AGENT__WATCHDOG_SECONDS",
    "RAGOPS_LOGROTATE__ON_CALENDAR",
    "RAGOPS_AGENT",
    "RAGOPS_SERVICES",
    "RAGOPS_CPU__CORES",
]
INTERESTING = [
    "daily",
    "hourly",
    "Mon..Fri 03:00",
    "*-*-* 00/6:00",
    "Sat *-*-1..7 18:00:00",
    "2000-01-01",
    "*-*-* 99:00",
    "bogus",
    "/srv/data",
    "/var/lib/ragops\\",
    "/srv/a\\b",
    '/usr/bin/rag"ops',
    "/usr/bin/rag ops",
    "/srv/%h",
    "/srv/$HOME",
    "/srv/ünï/✓",
    "file:///var/backups/x",
    "file:///var/backups/x\\",
    "s3://bucket/prefix",
    "s3://bucket/p\\",
    "512M",
    "50%",
    "0%",
    "100%",
    "infinity",
    "99999999999999999999G",
    "18446744073709551615",
    "16E",
    "0",
    "0-1 3",
    "0-4000000000",
    "3-1",
    "inf",
    "nan",
    "-1",
    "1e-9",
    "1" * 400,
    "true",
    "127.0.0.1:9464",
    "x\x00y",
    "line\nExecStartPre=/bin/sh",
    "tab\tin",
    "",
]

paths = st.builds(lambda s: "/" + s, st.text(max_size=20))
text = st.one_of(
    st.text(max_size=30),
    st.text(max_size=20).map(lambda s: s + "\\"),
    st.sampled_from(INTERESTING),
    paths,
)
scalars = st.one_of(
    text,
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.floats(min_value=-1e6, max_value=1e6),
    st.booleans(),
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(paths, text), max_size=3),
    st.dictionaries(st.text(max_size=8), scalars, max_size=3),
)
env_text = st.one_of(
    st.sampled_from(INTERESTING),
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30),
    st.just('{"x": 1}'),
    st.just("{bad"),
).filter(lambda s: "\x00" not in s)


# Plausible values per field, unicode, specifiers and edge numbers included, so that many
# examples get through validation and reach the renderer and systemd-analyze verify.
safe_path = st.from_regex(r"/[a-zA-Z0-9_.%@+éü✓-]{1,12}(/[a-z0-9_.-]{1,8}){0,2}", fullmatch=True)
seconds = st.one_of(
    st.floats(min_value=0.0005, max_value=604800), st.integers(min_value=1, max_value=604800)
)
small_int = st.integers(min_value=0, max_value=100_000)
words = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=20)
calendar = st.sampled_from(
    ["daily", "hourly", "weekly", "Mon..Fri 03:00", "*-*-* 00/6:00", "Sat *-*-1..7 18:00:00",
     "*:0/15", "2000-01-01", "*-*-* 99:00", "Mon foo", "03:00 UTC"]
)  # fmt: skip
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "state_dir": safe_path,
    "run_dir": safe_path,
    "ragops_bin": safe_path,
    "log_dir": safe_path,
    "cores": st.one_of(st.just("auto"), st.integers(min_value=1, max_value=64)),
    "watchdog_seconds": st.integers(min_value=2, max_value=3600),
    "metrics_listen": st.sampled_from(["127.0.0.1:9464", "[::1]:1", "localhost:65535", ""]),
    "target": st.one_of(safe_path.map(lambda p: "file://" + p), st.just("s3://bucket/pre/fix")),
    "on_calendar": calendar,
    "timeout_seconds": seconds,
    "randomized_delay_seconds": st.integers(min_value=0, max_value=86400),
    "orphan_grace_hours": st.floats(min_value=0, max_value=1000),
    "keep_last": small_int,
    "exec": st.lists(words, min_size=0, max_size=3).flatmap(
        lambda rest: safe_path.map(lambda p: [p, *rest])
    ),
    "description": words,
    "memory_max": st.one_of(
        st.sampled_from(["infinity", "1%", "100%", "512M", "16E", "1"]),
        st.integers(min_value=1, max_value=2**40).map(str),
    ),
    "cpus": st.sampled_from(["0", "0-1", "1 3", "0,2-3"]),
    "data_paths": st.lists(safe_path, max_size=3),
    "environment": st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), words,
                                   max_size=3),
    "restart_sec": st.floats(min_value=0, max_value=3600),
    "start_timeout_seconds": seconds,
    "stop_timeout_seconds": seconds,
    "start_limit_interval_seconds": seconds,
    "working_directory": safe_path,
    "environment_file": safe_path,
    "user": st.from_regex(r"[a-z_][a-z0-9_-]{0,10}", fullmatch=True),
    "cpu_weight": st.integers(min_value=1, max_value=10000),
    "log_rate_limit_burst": st.integers(min_value=0, max_value=10_000_000),
    "credentials": st.dictionaries(st.from_regex(r"[a-z][a-z0-9.-]{0,8}", fullmatch=True),
                                   safe_path, max_size=2),
    "memory_deny_write_execute": st.booleans(),
}  # fmt: skip


ENV_GOOD: dict[str, st.SearchStrategy[str]] = {
    "RAGOPS_RAGOPS__STATE_DIR": safe_path,
    "RAGOPS_RAGOPS__RAGOPS_BIN": safe_path,
    "RAGOPS_SNAPSHOT__ON_CALENDAR": calendar,
    "RAGOPS_SNAPSHOT__TARGET": safe_path.map(lambda p: "file://" + p),
    "RAGOPS_SNAPSHOT__RETENTION__ORPHAN_GRACE_HOURS": st.floats(0, 1000).map(str),
    "RAGOPS_AGENT__WATCHDOG_SECONDS": st.integers(2, 3600).map(str),
    "RAGOPS_LOGROTATE__ON_CALENDAR": calendar,
    "RAGOPS_AGENT": st.just('{"watchdog_seconds": 20}'),
    "RAGOPS_SERVICES": st.just("{}"),
    "RAGOPS_CPU__CORES": st.integers(1, 64).map(str),
}


def env_of(name: str) -> st.SearchStrategy[tuple[str, str]]:
    good = ENV_GOOD[name]
    return st.tuples(st.just(name), st.one_of(good, good, good, env_text))


def change_of(path: tuple[str, ...]) -> st.SearchStrategy[tuple[tuple[str, ...], Any]]:
    good = GOOD.get(path[-1])
    pick = values if good is None else st.one_of(good, good, good, values)
    return st.tuples(st.just(path), pick)


def with_value(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[path[-1]] = value


@contextlib.contextmanager
def environment(overrides: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def check_and_render(data: dict[str, Any]) -> dict[str, str] | None:
    """What ``config check`` does, in-process: the units, or None for a ConfigError."""
    try:
        loaded = settings_from_data(data, SOURCE)
        return render_checked(loaded, plan_cpus(loaded, 4))
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must say what is wrong"
        for line in exc.problems:
            assert line.strip() and "\n" not in line and "Traceback" not in line
        return None


class Verifier:
    """A --root for systemd-analyze verify, reused: units and program stubs per config."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.unit_dir = root / "etc/systemd/system"
        shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
        # What the previous config's stubs added, removed before the next config's: one
        # config's program "/a/b" must not stand where another's "/a/b/c" needs a directory.
        self.made: list[Path] = []

    def verify(self, data: dict[str, Any], units: dict[str, str]) -> str:
        shutil.rmtree(self.unit_dir, ignore_errors=True)
        self.unit_dir.mkdir(parents=True)
        for made in reversed(self.made):
            if made.is_dir() and not made.is_symlink():
                shutil.rmtree(made, ignore_errors=True)
            else:
                made.unlink(missing_ok=True)
        self.made = []
        loaded = settings_from_data(data, SOURCE)
        programs = {s.exec[0] for s in loaded.services.values()}
        programs |= {loaded.ragops.ragops_bin, "/bin/kill"}
        for program in sorted(programs):
            stub = self.root / program.lstrip("/")
            missing = [d for d in (stub.parent, *stub.parent.parents) if not d.exists()]
            if stub.is_dir() or any(d.is_file() for d in stub.parents if d != self.root):
                continue  # two programs of one config that cannot both exist: verify says so
            stub.parent.mkdir(parents=True, exist_ok=True)
            self.made += [*reversed(missing), *([] if stub.exists() else [stub])]
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
        for name, body in units.items():
            (self.unit_dir / name).write_text(body)
        proc = subprocess.run(
            [str(ANALYZE), "verify", "--man=no", f"--root={self.root}", *sorted(units)],
            cwd=self.unit_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        return (
            f"exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
            if (proc.returncode or proc.stdout or proc.stderr)
            else ""
        )


def test_generated_configs_never_crash_and_accepted_ones_verify(tmp_path: Path) -> None:
    assert ANALYZE is not None, "systemd-analyze is required in CI"
    verifier = Verifier(tmp_path / "root")
    seen = {"examples": 0, "accepted": 0, "verified": 0}
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        changes=st.lists(st.sampled_from(FIELDS).flatmap(change_of), min_size=1, max_size=3),
        env=st.lists(st.sampled_from(ENV_NAMES).flatmap(env_of), max_size=2).map(dict),
    )
    def one(changes: list[tuple[tuple[str, ...], Any]], env: dict[str, str]) -> None:
        env = {k: v for k, v in env.items() if "\x00" not in v}
        seen["examples"] += 1
        data = copy.deepcopy(BASE)
        for path, value in changes:
            with_value(data, path, value)
        with environment(env):
            units = check_and_render(data)
            if units is None:
                return
            seen["accepted"] += 1
            if seen["accepted"] % VERIFY_EVERY == 1:
                seen["verified"] += 1
                output = verifier.verify(data, units)
                if output:
                    failures.append(f"{changes!r} {env!r}:\n{output}")

    one()
    print(f"generated configs: {seen}")  # the figures README quotes (pytest -s)
    assert seen["examples"] >= EXAMPLES
    # The generator reaches the renderer, not only errors (99 of 2,000 with derandomize).
    assert seen["accepted"] >= 80, seen
    assert seen["verified"] >= 5, seen
    assert failures == []


CLI_CASES = [
    ({"snapshot": {"on_calendar": "daily\\"}}, {}),
    ({"ragops": {"state_dir": "/var/lib/ragops\\"}}, {}),
    ({"ragops": {"ragops_bin": '/usr/bin/rag"ops'}}, {}),
    ({"snapshot": {"retention": {"orphan_grace_hours": "inf"}}}, {}),
    ({}, {"RAGOPS_SERVICES": "{bad"}),
    ({}, {"RAGOPS_SNAPSHOT__RETENTION__ORPHAN_GRACE_HOURS": "inf"}),
    ({"agent": {"watchdog_seconds": True}}, {}),
    ({}, {}),
]


@pytest.mark.parametrize("change,env", CLI_CASES)
def test_the_cli_answers_generated_configs_in_one_line_or_ok(
    tmp_path: Path, change: dict[str, Any], env: dict[str, str]
) -> None:
    data = copy.deepcopy(BASE)
    for key, table in change.items():
        data.setdefault(key, {})
        for field, value in table.items():
            data[key][field] = value
    config = tmp_path / "ragops.toml"
    config.write_text(toml_text(data))
    run_env = {**os.environ, **env}
    for argv in (["config", "check"], ["units", "render", "--out", str(tmp_path / "out")]):
        proc = subprocess.run(
            [sys.executable, "-m", "agent.cli", "--config", str(config), *argv],
            capture_output=True, text=True, check=False, env=run_env,
        )  # fmt: skip
        assert "Traceback" not in proc.stderr
        expected = 0 if not change and not env else 78
        assert proc.returncode == expected, proc.stderr
        if expected:
            assert proc.stderr.strip(), "a refusal says why"


def toml_text(data: dict[str, Any], prefix: str = "") -> str:
    """A minimal TOML writer (tests only): tables, arrays of tables, scalars and lists."""
    import json

    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = json.dumps(key)
        if isinstance(value, dict):
            tables.append((f"{prefix}{name}", value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                lines.append(f"[[{prefix}{name}]]\n" + toml_text(item, f"{prefix}{name}."))
        else:
            lines.insert(0, f"{name} = {toml_value(value)}")
    out = "\n".join(lines)
    for name, table in tables:
        out += f"\n[{name}]\n" + toml_text(table, name + ".")
    return out + "\n"


def toml_value(value: Any) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)
