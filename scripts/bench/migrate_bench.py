"""Benchmark: `ragops migrate` of a local-mode store into the Qdrant stand-in.

For each point count, a store with one Cosine collection of DIM-dimensional vectors and small
payloads is built (qdrant-client's own format); then `ragops migrate` runs as a subprocess for
each batch size. Printed: wall seconds (copy + verify), points/s, and ragops' peak RSS (MiB,
from wait4), which should follow the batch size, not the number of points.

The stand-in is single-threaded Python: the throughput is the stand-in's, a real Qdrant is
faster. The RSS column is the point of this script.

    .venv/bin/python scripts/bench/migrate_bench.py --points 20000,80000 --batch-sizes 256,2048
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from qdrant_client import QdrantClient, models  # noqa: E402

from tests.integration.migrate.store_builder import bulk_insert  # noqa: E402
from tests.integration.snapshot.snapshot_fixtures import start_standin  # noqa: E402


def build(path: Path, count: int, dim: int) -> None:
    client = QdrantClient(path=str(path))
    client.create_collection(
        "bench", vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE)
    )
    client.close()

    def points() -> Iterator[models.PointStruct]:
        rng = random.Random(count)
        for i in range(count):
            vector = [rng.uniform(-1, 1) for _ in range(dim)]
            payload = {"text": f"chunk {i} " * 8, "page": i % 500, "source": f"doc-{i // 40}"}
            yield models.PointStruct(id=i, vector=vector, payload=payload)

    bulk_insert(path, "bench", points(), skip=0)


def run_measured(argv: list[str]) -> tuple[float, float]:
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.monotonic() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"ragops migrate failed: {err.read().decode()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", default="20000,80000")
    parser.add_argument("--batch-sizes", default="256,2048")
    parser.add_argument("--dim", type=int, default=128)
    args = parser.parse_args()
    print(f"{'points':>8} {'dim':>5} {'batch':>6} {'seconds':>8} {'points/s':>9} {'RSS MiB':>8}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for count in (int(n) for n in args.points.split(",")):
            store = tmp / f"store-{count}"
            build(store, count, args.dim)
            for batch in (int(b) for b in args.batch_sizes.split(",")):
                standin = start_standin(tmp / f"qdrant-{count}-{batch}")
                try:
                    key = tmp / "key"
                    key.write_text(standin.api_key)
                    config = tmp / "ragops.toml"
                    config.write_text(
                        f'[ragops]\nstate_dir = "{tmp}/state"\n'
                        f'[qdrant]\nurl = "{standin.url}"\napi_key_file = "{key}"\n'
                    )
                    argv = [sys.executable, "-m", "agent.cli", "--config", str(config)]
                    argv += ["migrate", "--from-path", str(store), "--batch-size", str(batch)]
                    seconds, rss = run_measured(argv)
                finally:
                    standin.stop()
                rate = count / seconds
                print(
                    f"{count:>8} {args.dim:>5} {batch:>6} {seconds:>8.1f} {rate:>9.0f} {rss:>8.0f}"
                )


if __name__ == "__main__":
    main()
