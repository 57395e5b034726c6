"""Benchmark: shards mode against collection mode and the seeds' shell pipeline.

For each size, a 3-shard collection of about that size (files of the Qdrant stand-in's
engine shards, points of 256 random floats) is backed up into SeaweedFS three ways:

- ``ragops snapshot create`` with ``snapshot.mode = "shards"`` (each shard streamed);
- the same with ``snapshot.mode = "collection"`` (Qdrant writes an archive, ragops streams it);
- the pipeline the seeds ran: ``curl -X POST .../snapshots``, copy the snapshots directory,
  ``tar -czf``, ``aws s3 cp`` (the AWS CLI from PyPI), ``find -mtime +7 -delete``.

Each way runs ``--repeat`` times (default 3), the ways taking turns; the median is printed
with the range, and the pipeline's median over the way's. Before the first way one object is
written to the bucket (SeaweedFS grows its volumes on a bucket's first write), and before
each trial the collection's files are read once (page cache warm for every way) and
the last trial's writes are flushed (``sync``).
Printed per way: bytes written to the Qdrant host's disk during the run (the stand-in's
``/proc/<pid>/io`` write_bytes, plus the backup processes' own block writes from wait4),
end-to-end seconds (request to committed manifest or finished upload) and peak RSS of the
backup process tree (MiB, wait4). Qdrant-side snapshots are deleted between ways.

Both ragops modes run with ``part_size_mib = 5`` and ``concurrency = 4``. With ``--work``
the filled collections stay there (``shards-bench-filled-<size>/``) for the next run;
``--fill-only`` makes them, so a measurement on a quiet machine does not include the fill:

    python3 -m venv /tmp/aws && /tmp/aws/bin/pip install awscli
    .venv/bin/python scripts/bench/shards_bench.py --sizes 256M,1G,4G --work /var/tmp --fill-only
    .venv/bin/python scripts/bench/shards_bench.py --sizes 256M,1G,4G --work /var/tmp \
        --aws /tmp/aws/bin/aws
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Way:
    name: str
    argv: list[str]
    env: dict[str, str]
    stage: Path | None = None  # emptied before each trial, outside the measurement


@dataclass(frozen=True)
class Row:
    """One way's trials: host disk bytes, seconds and peak RSS MiB of each."""

    way: str
    host: tuple[int, ...]
    seconds: tuple[float, ...]
    rss: tuple[float, ...]


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


def filled_storage(qdrant_dir: Path, size: int) -> tuple[QdrantStandin, int]:
    """The stand-in on a filled collection of ``size``: reused from an earlier run when
    ``qdrant_dir`` has one (``filled.json`` is written once the fill is complete)."""
    marker = qdrant_dir / "filled.json"
    if marker.is_file():
        qdrant = start_standin(qdrant_dir, snapshot_size=0)
        clean_qdrant(qdrant)
        return qdrant, int(json.loads(marker.read_text())["points"])
    shutil.rmtree(qdrant_dir, ignore_errors=True)
    qdrant = start_standin(qdrant_dir, snapshot_size=0)
    started = time.monotonic()
    try:
        points = fill(qdrant, size)
    except BaseException:
        qdrant.stop()
        raise
    marker.write_text(json.dumps({"points": points, "seconds": time.monotonic() - started}))
    return qdrant, points


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


def warm(directory: Path) -> None:
    """Read the collection's files once, so that every way finds them in the page cache (a
    collection filled by an earlier run is on disk only, and the first way would pay it)."""
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(1 << 20):
                    pass


def clean_qdrant(qdrant: QdrantStandin) -> None:
    for snap in qdrant.snapshots("bench"):
        qdrant.call("DELETE", f"/collections/bench/snapshots/{snap['name']}")


def warm_target(weed: Seaweed) -> None:
    """One upload and delete before the first way: SeaweedFS grows its volumes on a bucket's
    first write, which would otherwise be charged to whichever way runs first."""
    client = weed.boto()
    client.put_object(Bucket=weed.bucket, Key="warm-up", Body=os.urandom(8 << 20))
    client.delete_object(Bucket=weed.bucket, Key="warm-up")


def ragops_way(mode: str, qdrant: QdrantStandin, weed: Seaweed, work: Path) -> Way:
    tmp = work / mode
    tmp.mkdir()
    ragops = write_config(
        tmp, qdrant, f"s3://{weed.bucket}/{mode}", endpoint=weed.endpoint, mode=mode
    )
    # ragops' default concurrency (the tests' is 2); parts of 5 MiB, S3's minimum.
    text = ragops.config.read_text().replace("concurrency = 2", "concurrency = 4")
    ragops.config.write_text(text)
    argv = [sys.executable, "-m", "agent.cli", "--config", str(ragops.config)]
    argv += ["snapshot", "create", "--collection", "bench"]
    return Way(f"ragops, mode={mode}", argv, ragops.env)


def pipeline_way(qdrant: QdrantStandin, weed: Seaweed, aws: str, work: Path) -> Way:
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
    return Way("seeds' shell pipeline", ["bash", "-c", PIPELINE], env, stage)


def run_size(size: int, aws: str, cache: Path, work: Path, repeat: int) -> list[Row]:
    """Each way ``repeat`` times, the ways taking turns (a slow spell of the machine falls on
    all of them, not on one)."""
    weed: Seaweed = start_weed(work / "weed")
    qdrant, points = filled_storage(cache, size)
    try:
        actual = tree_size(qdrant.storage / "collections" / "bench")
        print(
            f"# {size >> 20} MiB asked: {points} points, "
            f"{actual / (1 << 20):.0f} MiB of shard files"
        )
        sys.stdout.flush()
        warm_target(weed)
        ways = [ragops_way(m, qdrant, weed, work) for m in ("shards", "collection")]
        ways.append(pipeline_way(qdrant, weed, aws, work))
        samples: dict[str, list[tuple[int, float, float]]] = {w.name: [] for w in ways}
        for _ in range(repeat):
            for way in ways:
                if way.stage is not None:
                    shutil.rmtree(way.stage)
                    way.stage.mkdir()
                warm(qdrant.storage / "collections" / "bench")
                # The last trial's dirty pages (its archive, stage, stored object) are flushed
                # now, not during this one.
                os.sync()
                samples[way.name].append(measure(way.argv, way.env, qdrant.proc.pid))
                clean_qdrant(qdrant)
    finally:
        qdrant.stop()
        weed.proc.kill()
        weed.proc.wait(15)
    return [Row(name, *zip(*runs, strict=True)) for name, runs in samples.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256M,1G,4G")
    parser.add_argument("--aws", default=shutil.which("aws") or "aws")
    parser.add_argument(
        "--work",
        default=None,
        help="scratch directory, where filled collections are kept for later runs "
        "[default: a temp dir, removed]",
    )
    parser.add_argument(
        "--fill-only",
        action="store_true",
        help="fill the collections of --sizes in --work and stop (then measure on a quiet machine)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="trials of each way per size; the median is printed, with the range [default: 3]",
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat: at least 1")
    if args.fill_only:
        if not args.work:
            parser.error("--fill-only keeps the collections in --work: give it")
        for text in args.sizes.split(","):
            qdrant, points = filled_storage(
                Path(args.work) / f"shards-bench-filled-{text}", parse_size(text)
            )
            qdrant.stop()
            print(f"{text}: {points} points")
        return
    print(
        f"{'size':>8}  {'way':<24} {'host disk MiB':>13} {'seconds (median, min-max)':>26} "
        f"{'peak RSS MiB':>12} {'pipeline / way':>14}"
    )
    for text in args.sizes.split(","):
        work = Path(tempfile.mkdtemp(prefix="shards-bench-", dir=args.work))
        # With --work, the filled collection stays for the next run (keyed by size).
        cache = Path(args.work) / f"shards-bench-filled-{text}" if args.work else work / "qdrant"
        try:
            rows = run_size(parse_size(text), args.aws, cache, work, args.repeat)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        pipeline = statistics.median(rows[-1].seconds)
        for row in rows:
            median = statistics.median(row.seconds)
            spread = f"{median:.1f} ({min(row.seconds):.1f}-{max(row.seconds):.1f})"
            print(
                f"{text:>8}  {row.way:<24} {statistics.median(row.host) / (1 << 20):>13.1f} "
                f"{spread:>26} {max(row.rss):>12.1f} {pipeline / median:>13.2f}x"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
