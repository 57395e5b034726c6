"""Benchmark: `ragops migrate --from` per source against the founding documents' loop.

For each source and point count, a store of 384-dimensional vectors with payloads is made
with the source's own library or server (tests/integration/migrate/source_builders.py), then
timed twice into a fresh Qdrant stand-in (on Qdrant's engine; ``--compact`` records each
upsert by its size, not its body): `ragops migrate`
(batches of 500, verify sample 256 included) and scripts/bench/founding_migrate.py
(qdrant-client upsert in batches of 500, no verify). Printed per run: seconds from process
start to exit, points/s, and peak RSS of the process (MiB, from wait4 in a fresh launcher).
Goals: ragops >= 1.0x the founding loop's points/s; RSS <= 300 MiB at 100k and flat when the
points double.

The stand-in (Python HTTP in front of qdrant-edge, one request at a time under its lock) runs on
the same 2 cores: both loops wait on it alike.

    .venv/bin/python scripts/bench/migrate_sources_bench.py --sources faiss --points 100000,200000
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.migrate import source_builders as sb  # noqa: E402
from tests.integration.migrate.pg_server import running_postgres  # noqa: E402
from tests.integration.snapshot.snapshot_fixtures import start_standin  # noqa: E402

BATCH = 500


# wait4's ru_maxrss of a child is at least the RSS its parent had when it was spawned: the
# kernel keeps the high-water mark of the address space a process had before exec (tried
# here: a child of a parent that had touched 400 MiB reports 413 MiB for `python -c pass`).
# This process builds the stores in memory, so each loop is started and waited for by a
# fresh, small interpreter, and its own peak is what is printed.
LAUNCHER = """
import os, subprocess, sys, time
started = time.monotonic()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(time.monotonic() - started, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_measured(argv: list[str]) -> tuple[float, float]:
    """(seconds from start to exit, peak RSS in MiB) of one run of argv."""
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, *argv]
    with tempfile.TemporaryFile() as err:
        done = subprocess.run(
            launcher, check=True, stdout=subprocess.PIPE, stderr=err, cwd=ROOT, text=True
        )
        seconds, maxrss, code = done.stdout.split()
        if int(code) != 0:
            err.seek(0)
            raise SystemExit(f"{argv[2:5]} failed: {err.read().decode()[-2000:]}")
    return float(seconds), int(maxrss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="faiss,pgvector,milvus")
    parser.add_argument("--points", default="100000,200000")
    parser.add_argument("--no-baseline", action="store_true", help="time ragops only")
    args = parser.parse_args()
    print(f"{'source':>9} {'points':>7} {'loop':>9} {'seconds':>8} {'points/s':>9} {'RSS MiB':>8}")
    with tempfile.TemporaryDirectory() as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        pg = None
        for kind in args.sources.split(","):
            for count in (int(n) for n in args.points.split(",")):
                extra: list[str]
                if kind == "faiss":
                    path = sb.build_faiss(tmp / f"f{count}.faiss", count, "flat", idmap=True)
                    source = ["--from", f"faiss:{path}", "--payloads", f"{path}.jsonl"]
                    founding = [str(path)]
                    extra = ["--collection", "docs"]
                elif kind == "pgvector":
                    pg = pg or stack.enter_context(running_postgres())
                    table = f"docs_{count}"
                    sb.build_pg_table(pg.conninfo, table, count)
                    source = ["--from", f"pgvector:{pg.url}", "--table", table]
                    source += ["--password-file", str(pg.password_file(tmp))]
                    founding = [pg.conninfo, table]
                    extra = ["--collection", "docs"]
                else:
                    path = sb.build_milvus(tmp / f"m{count}.db", count)
                    source, founding, extra = ["--from", f"milvus:{path}"], [str(path)], []
                loops = {"ragops": source}
                if not args.no_baseline:
                    loops["founding"] = founding
                for loop, where in loops.items():
                    standin = start_standin(tmp / f"q-{kind}-{count}-{loop}", compact=True)
                    try:
                        key = tmp / "key"
                        key.write_text(standin.api_key)
                        config = tmp / "ragops.toml"
                        config.write_text(
                            f'[ragops]\nstate_dir = "{tmp}/state"\n'
                            f'[qdrant]\nurl = "{standin.url}"\napi_key_file = "{key}"\n'
                            "timeout_seconds = 300\n"
                        )
                        if loop == "ragops":
                            argv = [sys.executable, "-m", "agent.cli", "--config", str(config)]
                            argv += ["migrate", *where, *extra, "--batch-size", str(BATCH)]
                        else:
                            script = ROOT / "scripts" / "bench" / "founding_migrate.py"
                            argv = [sys.executable, str(script), standin.url, str(key), kind]
                            argv += where
                        seconds, rss = run_measured(argv)
                        assert standin.count("docs") == count
                    finally:
                        standin.stop()
                    rate = count / seconds
                    print(
                        f"{kind:>9} {count:>7} {loop:>9} {seconds:>8.1f} {rate:>9.0f} {rss:>8.0f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
