"""Benchmark: `ragops snapshot verify --deep` next to plain `verify`, same stored snapshot.

For each size, the Qdrant stand-in (on Qdrant's engine) gets a collection of real points
(384-dimension Dot vectors, payload {"n": id}, spread over --shards shards) filled
in-process until its snapshot archive is about that size; `ragops snapshot create` stores
it in a local directory target; then plain verify (stream + SHA-256) and deep verify
(stream + SHA-256 + unpack shard by shard + load with the engine + count + sample) run on
it, each in its own process, --rounds times, alternated. Printed per size: archive MiB,
throughput (MiB/s of the archive over the median of the command's wall times, interpreter
start-up included), peak RSS (MiB, from wait4, the highest of the rounds), the deep runs'
peak scratch use (disk blocks, sampled every 20 ms) against the largest shard's size (the
bytes its files take in the archive, as the manifest records them), and deep/plain.

    .venv/bin/python scripts/bench/deep_verify_bench.py --sizes 256M,1G --rounds 3

Goals (issue 14): deep >= 0.5x plain's throughput, scratch <= the largest shard, peak RSS
<= 200 MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scripts.bench.snapshot_bench import run_measured  # noqa: E402
from tests.integration.snapshot.snapshot_fixtures import start_standin, write_config  # noqa: E402

UNITS = {"M": 1 << 20, "G": 1 << 30}
DIM = 384
# Bytes per point in the archive, measured: a 384-float vector, its id-tracker and
# payload entries. Each segment adds ~67 MiB of fixed-size files (32 MiB vector chunks and
# a 32 MiB payload page), preallocated by the engine.
PER_POINT = 1600
PER_SEGMENT = 70 << 20


def parse_size(text: str) -> int:
    return int(float(text[:-1]) * UNITS[text[-1].upper()]) if text[-1].isalpha() else int(text)


def tree_bytes(path: Path, on_disk: bool = False) -> int:
    """Apparent size of the files under ``path``, or the disk blocks they use."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                stat = os.lstat(os.path.join(root, name))
                total += stat.st_blocks * 512 if on_disk else stat.st_size
    return total


class ScratchSampler(threading.Thread):
    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root, self.peak, self.stop = root, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, tree_bytes(self.root, on_disk=True))
            time.sleep(0.02)


def one_size(size: int, shards: int, work: Path, rounds: int) -> dict[str, float]:
    qdrant = start_standin(work / "qdrant", snapshot_size=0)
    try:
        qdrant.call(
            "PUT",
            "/collections/bench",
            json={"vectors": {"size": DIM, "distance": "Dot"}, "shard_number": shards},
        )
        points = max(1000, (size - shards * PER_SEGMENT) // PER_POINT)
        started = time.monotonic()
        for start in range(0, points, 50_000):
            qdrant.call(
                "POST",
                "/_fill",
                json={"collection": "bench", "count": min(50_000, points - start), "start": start},
            )
        fill_seconds = time.monotonic() - started
        ragops = write_config(work, qdrant, f"file://{work / 'backups'}")
        argv = [sys.executable, "-m", "agent.cli", "--config", str(ragops.config)]
        run_measured([*argv, "snapshot", "create"], env=ragops.env)
    finally:
        qdrant.stop()
    listed = run_measured([*argv, "snapshot", "list", "--json"], env=ragops.env)[4]
    manifest = json.loads(listed)[-1]
    archive = int(manifest["size"])
    largest = max(manifest["shard_bytes"].values())
    plain: list[tuple[float, float]] = []
    deep: list[tuple[float, float]] = []
    sampler = ScratchSampler(ragops.state_dir / "verify-scratch")
    sampler.start()
    for _ in range(rounds):  # alternated, so that a burst of other load hits both
        seconds, rss, _, _, _ = run_measured(
            [*argv, "snapshot", "verify", manifest["id"]], env=ragops.env
        )
        plain.append((seconds, rss))
        seconds, rss, _, _, out = run_measured(
            [*argv, "snapshot", "verify", "--deep", manifest["id"]], env=ragops.env
        )
        deep.append((seconds, rss))
    sampler.stop.set()
    sampler.join()
    plain_s, deep_s = statistics.median(p[0] for p in plain), statistics.median(d[0] for d in deep)
    plain_rss, deep_rss = max(p[1] for p in plain), max(d[1] for d in deep)
    mib = archive / (1 << 20)
    return {
        "points": float(points),
        "fill_s": fill_seconds,
        "archive_mib": mib,
        "plain_mibs": mib / plain_s,
        "plain_rss": plain_rss,
        "deep_mibs": mib / deep_s,
        "deep_rss": deep_rss,
        "scratch_mib": sampler.peak / (1 << 20),
        "largest_shard_mib": largest / (1 << 20),
        "reported": float(out.rsplit(" at ", 1)[-1].split()[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256M,1G")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="verify runs per kind (median)")
    args = parser.parse_args()
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(
        f"{'size':>6} {'archive':>9} {'points':>8} {'plain MiB/s':>12} {'plain RSS':>10} "
        f"{'deep MiB/s':>11} {'deep RSS':>9} {'scratch':>9} {'largest shard':>14} "
        f"{'deep/plain':>11}"
    )
    for text in args.sizes.split(","):
        with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="ragops-deep-bench-") as tmp:
            f = one_size(parse_size(text), args.shards, Path(tmp), args.rounds)
        print(
            f"{text:>6} {f['archive_mib']:>5.0f} MiB {f['points']:>8.0f} "
            f"{f['plain_mibs']:>12.1f} {f['plain_rss']:>6.0f} MiB "
            f"{f['deep_mibs']:>11.1f} {f['deep_rss']:>5.0f} MiB {f['scratch_mib']:>5.0f} MiB "
            f"{f['largest_shard_mib']:>10.0f} MiB {f['deep_mibs'] / f['plain_mibs']:>10.2f}x",
            flush=True,
        )
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
