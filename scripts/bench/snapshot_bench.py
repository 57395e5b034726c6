"""Benchmark: `ragops snapshot create` against plain uploaders, same bytes, same SeaweedFS.

For each size, the Qdrant stand-in serves a snapshot of that size; ragops streams it from
Qdrant into S3 (download + SHA-256 + multipart upload, nothing staged), once with its
defaults and once with ``sign_payload = true``. The peers upload the same bytes from a
local file (the stand-in's snapshot file): obstore's plain put, boto3's upload_fileobj and
`rclone copyto`, each with its own defaults otherwise, each on a snapshot Qdrant has just
written, as ragops gets one. All use 8 MiB parts and 4 parts in flight.

Throughput is transfer time against transfer time: ragops' from its
snapshot.create.finished event, the Python peers' from a clock around the upload call (so
neither side is charged for interpreter start-up), rclone's from its wall time. The two
cores here are saturated by SeaweedFS itself, so single runs vary by +-15 %: each size runs
``--rounds`` rounds, each against a fresh SeaweedFS with the tools in a rotated order, and
the medians are compared. Printed: median throughput (MiB/s, with the range), peak RSS
(MiB, from wait4, the highest of the rounds) and bytes each process wrote to local disk,
plus ragops' ratios to the best peer.

    .venv/bin/python scripts/bench/snapshot_bench.py --sizes 256M,1G,4G

Disk: one round writes five copies of the snapshot into SeaweedFS; each round's server
and data are removed before the next.
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
from dataclasses import dataclass, field
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

PART = 8 << 20
CONCURRENCY = 4
UNITS = {"M": 1 << 20, "G": 1 << 30}
OURS = "ragops snapshot create"
SIGNED = "  with sign_payload"


@dataclass
class Figures:
    mibs: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    written: list[int] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.mibs)


def run_measured(
    argv: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, int, str, str]:
    """Wall seconds, peak RSS MiB, bytes written to disk, stderr, stdout."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        err.seek(0)
        out.seek(0)
        text = err.read().decode(errors="replace")
        stdout = out.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0:3]} failed ({proc.returncode}): {text[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_oublock * 512, text, stdout


def peer_code(tool: str, path: Path, weed: Seaweed) -> str:
    """A Python peer that prints the seconds its upload call took."""
    common = (
        f"ep={weed.endpoint!r}; bucket={weed.bucket!r}; path={str(path)!r}; "
        f"ak={ACCESS_KEY!r}; sk={SECRET_KEY!r}\nimport time\n"
    )
    if tool == "obstore":
        return common + (
            "import obstore\nfrom pathlib import Path\nfrom obstore.store import S3Store\n"
            "st = S3Store(bucket, endpoint=ep, region='us-east-1',"
            " virtual_hosted_style_request=False, access_key_id=ak, secret_access_key=sk,"
            " client_options={'allow_http': True})\n"
            "t = time.monotonic()\n"
            f"obstore.put(st, 'peer/obstore', Path(path), chunk_size={PART},"
            f" max_concurrency={CONCURRENCY})\n"
            "print(time.monotonic() - t)\n"
        )
    return common + (
        "import boto3\nfrom boto3.s3.transfer import TransferConfig\n"
        "c = boto3.client('s3', endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk,"
        " region_name='us-east-1')\n"
        f"cfg = TransferConfig(multipart_chunksize={PART}, max_concurrency={CONCURRENCY})\n"
        "t = time.monotonic()\n"
        "with open(path, 'rb') as f:\n    c.upload_fileobj(f, bucket, 'peer/boto3', Config=cfg)\n"
        "print(time.monotonic() - t)\n"
    )


def run_peer(name: str, path: Path, weed: Seaweed, size: int) -> tuple[float, float, int, float]:
    """MiB/s, peak RSS, disk writes, end-to-end MiB/s."""
    if name == "rclone copyto":
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env.update(
            {
                "RCLONE_CONFIG_SW_TYPE": "s3",
                "RCLONE_CONFIG_SW_PROVIDER": "SeaweedFS",
                "RCLONE_CONFIG_SW_ACCESS_KEY_ID": ACCESS_KEY,
                "RCLONE_CONFIG_SW_SECRET_ACCESS_KEY": SECRET_KEY,
                "RCLONE_CONFIG_SW_ENDPOINT": weed.endpoint,
                "RCLONE_CONFIG_SW_REGION": "us-east-1",
            }
        )
        argv = [
            str(shutil.which("rclone")),
            "copyto",
            str(path),
            f"sw:{weed.bucket}/peer/rclone",
            "--s3-chunk-size",
            "8M",
            "--s3-upload-concurrency",
            str(CONCURRENCY),
            "--s3-disable-checksum",
        ]
        seconds, rss, written, _, _ = run_measured(argv, env=env)
        return size / seconds / (1 << 20), rss, written, size / seconds / (1 << 20)
    tool = "obstore" if name.startswith("obstore") else "boto3"
    seconds, rss, written, _, stdout = run_measured(
        [sys.executable, "-c", peer_code(tool, path, weed)]
    )
    transfer = float(stdout.split()[-1])
    return size / transfer / (1 << 20), rss, written, size / seconds / (1 << 20)


def run_ragops(config: Path, env: dict[str, str], size: int) -> tuple[float, float, int, float]:
    argv = [sys.executable, "-m", "agent.cli", "--config", str(config), "--debug"]
    seconds, rss, written, err, _ = run_measured([*argv, "snapshot", "create"], env=env)
    finished = [
        json.loads(line) for line in err.splitlines() if '"snapshot.create.finished"' in line
    ]
    transfer = float(finished[-1]["seconds"])
    return size / transfer / (1 << 20), rss, written, size / seconds / (1 << 20)


def ragops_configs(tmp: Path, qdrant: QdrantStandin, weed: Seaweed) -> dict[str, Path]:
    ragops = write_config(tmp, qdrant, f"s3://{weed.bucket}/ragops", endpoint=weed.endpoint)
    text = ragops.config.read_text()
    text = text.replace("part_size_mib = 5", "part_size_mib = 8")
    text = text.replace("concurrency = 2", f"concurrency = {CONCURRENCY}")
    text = text.replace("timeout_seconds = 60", "timeout_seconds = 3600")
    ragops.config.write_text(text)
    # The same run with SigV4 payload signing on, as obstore's plain put does it.
    signed = ragops.config.with_name("ragops-signed.toml")
    signed.write_text(text.replace("[snapshot.s3]\n", "[snapshot.s3]\nsign_payload = true\n"))
    return {OURS: ragops.config, SIGNED: signed}


def measure_size(
    size: int, rounds: int, tmp: Path, qdrant: QdrantStandin, env: dict[str, str]
) -> dict[str, Figures]:
    qdrant.fault(snapshot_size=size)
    names = [OURS, SIGNED, "obstore put", "boto3 upload_fileobj"]
    if shutil.which("rclone"):
        names.append("rclone copyto")
    figures = {name: Figures() for name in names}
    for round_no in range(rounds):
        weed = start_weed(tmp / f"weed-{round_no}")
        try:
            configs = ragops_configs(tmp, qdrant, weed)
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                if name in configs:
                    result = run_ragops(configs[name], env, size)
                else:
                    result = run_peer_on_fresh_snapshot(name, qdrant, weed, size)
                mibs, rss, written, end_to_end = result
                figures[name].mibs.append(mibs)
                figures[name].rss.append(rss)
                figures[name].written.append(written)
                figures[name].end_to_end.append(end_to_end)
        finally:
            os.killpg(weed.proc.pid, 9)
            weed.proc.wait()
            shutil.rmtree(tmp / f"weed-{round_no}", ignore_errors=True)
    return figures


def run_peer_on_fresh_snapshot(
    name: str, qdrant: QdrantStandin, weed: Seaweed, size: int
) -> tuple[float, float, int, float]:
    """As a user without ragops would: have Qdrant write a snapshot, upload that file.

    A fresh file for each run, as ragops gets, so both sides upload right after Qdrant
    wrote the bytes (and the kernel still has them to write back).
    """
    snap = qdrant.call("POST", "/collections/bench/snapshots", params={"wait": "true"})
    try:
        path = qdrant.storage / "snapshots" / "bench" / snap["name"]
        return run_peer(name, path, weed, size)
    finally:
        qdrant.call("DELETE", f"/collections/bench/snapshots/{snap['name']}")


def report(size: int, figures: dict[str, Figures]) -> None:
    print(f"== {size >> 20} MiB snapshot")
    for name, fig in figures.items():
        extra = ""
        if name in (OURS, SIGNED):
            extra = f" (end to end {statistics.median(fig.end_to_end):.1f})"
        print(
            f"  {name:<24} {fig.median:7.1f} MiB/s [{min(fig.mibs):.1f}-{max(fig.mibs):.1f}]"
            f"{extra}  peak RSS {max(fig.rss):6.1f} MiB  disk writes {max(fig.written)} B"
        )
    peers = {n: f for n, f in figures.items() if n not in (OURS, SIGNED)}
    best_name, best = max(peers.items(), key=lambda kv: kv[1].median)
    print(
        f"  ratio of medians: throughput {figures[OURS].median / best.median:.2f}x best peer "
        f"({best_name}); with sign_payload {figures[SIGNED].median / best.median:.2f}x; "
        f"peak RSS {max(figures[OURS].rss):.0f} MiB (goal <= 100)\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="256M,1G")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s[:-1]) * UNITS[s[-1]] for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="snapshot-bench-"))
    qdrant = start_standin(tmp / "qdrant", snapshot_size=sizes[0])
    results = []
    try:
        qdrant.make_collection("bench", 100)
        env = write_config(tmp, qdrant, "file:///unused").env
        for size in sizes:
            results.append((size, measure_size(size, args.rounds, tmp, qdrant, env)))
    finally:
        qdrant.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"part size {PART >> 20} MiB, {CONCURRENCY} parts in flight, SeaweedFS on 127.0.0.1, "
        f"{args.rounds} rounds\n"
    )
    for size, figures in results:
        report(size, figures)


if __name__ == "__main__":
    main()
