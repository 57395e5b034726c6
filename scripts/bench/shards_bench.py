"""Benchmark: shards mode against collection mode and the seeds' shell pipeline.

For each size, a 3-shard collection of about that size (files of the Qdrant stand-in's
engine shards, points of 256 random floats) is backed up into SeaweedFS three ways:

- ``ragops snapshot create`` with ``snapshot.mode = "shards"`` (each shard streamed);
- the same with ``snapshot.mode = "collection"`` (Qdrant writes an archive, ragops streams it);
- the pipeline the seeds ran: ``curl -X POST .../snapshots``, copy the snapshots directory,
  ``tar -czf``, ``aws s3 cp`` (the AWS CLI from PyPI), ``find -mtime +7 -delete``.

Printed per way: bytes written to the Qdrant host's disk during the run (the stand-in's
``/proc/<pid>/io`` write_bytes, plus the backup processes' own block writes from wait4),
end-to-end seconds (request to committed manifest or finished upload) and peak RSS of the
backup process tree (MiB, wait4). Qdrant-side snapshots are deleted between ways.

    python3 -m venv /tmp/aws && /tmp/aws/bin/pip install awscli
    .venv/bin/python scripts/bench/shards_bench.py --sizes 256M,1G,4G --aws /tmp/aws/bin/aws
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.snapshot.snapshot_fixtures import (  # noqa: E402
    ACCESS_KEY,
    SECRET_KEY,
    QdrantStandin,
    Seaweed,
    start_standin,
    start_weed,
    write_config,
)

UNITS = {"M": 1 << 20, "G": 1 << 30}
PIPELINE = r"""set -e
name=$(curl -sf -X POST -H "api-key: $QKEY" "$QURL/collections/bench/snapshots?wait=true" \
  | grep -o '"name": *"[^"]*"' | cut -d'"' -f4)
test -n "$name"
cp -r "$SNAPDIR" "$STAGE/copy"
tar -czf "$STAGE/bench-$name.tar.gz" -C "$STAGE/copy" .
"$AWS" --endpoint-url "$EP" s3 cp --only-show-errors "$STAGE/bench-$name.tar.gz" \
  "s3://$BUCKET/pipeline/bench-$name.tar.gz"
find "$STAGE" -name '*.tar.gz' -mtime +7 -delete
"""


def parse_size(text: str) -> int:
    return int(float(text[:-1]) * UNITS[text[-1].upper()]) if text[-1].isalpha() else int(text)


def written_by(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/{pid}/io has no write_bytes")


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def fill(qdrant: QdrantStandin, size: int) -> int:
    body = {"vectors": {"size": 256, "distance": "Dot"}, "shard_number": 3}
    qdrant.call("PUT", "/collections/bench", json=body)
    directory = qdrant.storage / "collections" / "bench"
    count, step = 0, 20000
    while tree_size(directory) < size:
        qdrant.call("POST", "/_fill", json={"collection": "bench", "count": step, "start": count})
        count += step
    return count


def measure(argv: list[str], env: dict[str, str], standin_pid: int) -> tuple[int, float, float]:
    """Host disk bytes, seconds, peak RSS MiB."""
    before = written_by(standin_pid)
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"{argv[:4]} failed: {err.read().decode()[-2000:]}")
    host = written_by(standin_pid) - before + usage.ru_oublock * 512
    return host, seconds, usage.ru_maxrss / 1024


def clean_qdrant(qdrant: QdrantStandin) -> None:
    for snap in qdrant.snapshots("bench"):
        qdrant.call("DELETE", f"/collections/bench/snapshots/{snap['name']}")


def run_size(size: int, aws: str, work: Path) -> list[tuple[str, int, float, float]]:
    weed: Seaweed = start_weed(work / "weed")
    qdrant = start_standin(work / "qdrant", snapshot_size=0)
    rows = []
    try:
        points = fill(qdrant, size)
        actual = tree_size(qdrant.storage / "collections" / "bench")
        print(
            f"# {size >> 20} MiB asked: {points} points, "
            f"{actual / (1 << 20):.0f} MiB of shard files"
        )
        for mode in ("shards", "collection"):
            tmp = work / mode
            tmp.mkdir()
            ragops = write_config(
                tmp, qdrant, f"s3://{weed.bucket}/{mode}", endpoint=weed.endpoint, mode=mode
            )
            argv = [sys.executable, "-m", "agent.cli", "--config", str(ragops.config)]
            argv += ["snapshot", "create", "--collection", "bench"]
            rows.append((f"ragops, mode={mode}", *measure(argv, ragops.env, qdrant.proc.pid)))
            clean_qdrant(qdrant)
        stage = work / "stage"
        stage.mkdir()
        env = dict(os.environ)
        env.update(
            {
                "QKEY": qdrant.api_key,
                "QURL": qdrant.url,
                "SNAPDIR": str(qdrant.storage / "snapshots" / "bench"),
                "STAGE": str(stage),
                "AWS": aws,
                "EP": weed.endpoint,
                "BUCKET": weed.bucket,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        argv = ["bash", "-c", PIPELINE]
        rows.append(("seeds' shell pipeline", *measure(argv, env, qdrant.proc.pid)))
    finally:
        qdrant.stop()
        weed.proc.kill()
        weed.proc.wait(15)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256M,1G,4G")
    parser.add_argument("--aws", default=shutil.which("aws") or "aws")
    parser.add_argument("--work", default=None, help="scratch directory [default: a temp dir]")
    args = parser.parse_args()
    print(f"{'size':>8}  {'way':<24} {'host disk MiB':>13} {'seconds':>8} {'peak RSS MiB':>12}")
    for text in args.sizes.split(","):
        work = Path(tempfile.mkdtemp(prefix="shards-bench-", dir=args.work))
        try:
            for way, host, seconds, rss in run_size(parse_size(text), args.aws, work):
                print(
                    f"{text:>8}  {way:<24} {host / (1 << 20):>13.1f} {seconds:>8.1f} {rss:>12.1f}"
                )
                sys.stdout.flush()
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
