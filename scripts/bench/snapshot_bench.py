"""Benchmark: `ragops snapshot create` against plain uploaders, same bytes, same SeaweedFS.

For each size, the Qdrant stand-in serves a snapshot of that size; ragops streams it from
Qdrant into S3 (download + SHA-256 + multipart upload, nothing staged). The peers upload
the same bytes from a local file (the stand-in's snapshot file): obstore's plain put,
boto3's upload_fileobj and `rclone copyto`. All use 8 MiB parts and 4 parts in flight.
Printed: throughput (MiB/s), peak RSS (MiB, from wait4) and bytes each process wrote to
local disk, plus ragops' ratios to the best peer.

    .venv/bin/python scripts/bench/snapshot_bench.py --sizes 256M,1G,4G
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.integration.snapshot_fixtures import (  # noqa: E402
    ACCESS_KEY,
    SECRET_KEY,
    start_standin,
    start_weed,
    write_config,
)

PART = 8 << 20
CONCURRENCY = 4
UNITS = {"M": 1 << 20, "G": 1 << 30}


def run_measured(
    argv: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS MiB, bytes written to disk, stderr."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        err.seek(0)
        text = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0:3]} failed ({proc.returncode}): {text[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, usage.ru_oublock * 512, text


def peers(path: Path, bucket: str, endpoint: str, size: int) -> dict[str, tuple[float, float, int]]:
    out: dict[str, tuple[float, float, int]] = {}
    py = sys.executable
    common = (
        f"ep={endpoint!r}; bucket={bucket!r}; path={str(path)!r}; "
        f"ak={ACCESS_KEY!r}; sk={SECRET_KEY!r}\n"
    )
    obstore_code = common + (
        "import obstore\nfrom pathlib import Path\nfrom obstore.store import S3Store\n"
        "st = S3Store(bucket, endpoint=ep, region='us-east-1', virtual_hosted_style_request=False,"
        " access_key_id=ak, secret_access_key=sk, client_options={'allow_http': True})\n"
        f"obstore.put(st, 'peer/obstore', Path(path), chunk_size={PART},"
        f" max_concurrency={CONCURRENCY})\n"
    )
    boto_code = common + (
        "import boto3\nfrom boto3.s3.transfer import TransferConfig\n"
        "c = boto3.client('s3', endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk,"
        " region_name='us-east-1')\n"
        f"cfg = TransferConfig(multipart_chunksize={PART}, max_concurrency={CONCURRENCY})\n"
        "with open(path, 'rb') as f:\n    c.upload_fileobj(f, bucket, 'peer/boto3', Config=cfg)\n"
    )
    for name, code in (("obstore put", obstore_code), ("boto3 upload_fileobj", boto_code)):
        seconds, rss, written, _ = run_measured([py, "-c", code])
        out[name] = (size / seconds / (1 << 20), rss, written)
    rclone = shutil.which("rclone")
    if rclone:
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env.update(
            {
                "RCLONE_CONFIG_SW_TYPE": "s3",
                "RCLONE_CONFIG_SW_PROVIDER": "SeaweedFS",
                "RCLONE_CONFIG_SW_ACCESS_KEY_ID": ACCESS_KEY,
                "RCLONE_CONFIG_SW_SECRET_ACCESS_KEY": SECRET_KEY,
                "RCLONE_CONFIG_SW_ENDPOINT": endpoint,
                "RCLONE_CONFIG_SW_REGION": "us-east-1",
            }
        )
        seconds, rss, written, _ = run_measured(
            [
                rclone,
                "copyto",
                str(path),
                f"sw:{bucket}/peer/rclone",
                "--s3-chunk-size",
                "8M",
                "--s3-upload-concurrency",
                str(CONCURRENCY),
                "--s3-disable-checksum",
            ],
            env=env,
        )
        out["rclone copyto"] = (size / seconds / (1 << 20), rss, written)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="256M,1G")
    args = parser.parse_args()
    sizes = [int(s[:-1]) * UNITS[s[-1]] for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="snapshot-bench-"))
    weed = start_weed(tmp / "weed")
    qdrant = start_standin(tmp / "qdrant", snapshot_size=sizes[0])
    rows = []
    try:
        qdrant.make_collection("bench", 100)
        ragops = write_config(tmp, qdrant, f"s3://{weed.bucket}/ragops", endpoint=weed.endpoint)
        text = ragops.config.read_text()
        text = text.replace("part_size_mib = 5", "part_size_mib = 8")
        text = text.replace("concurrency = 2", f"concurrency = {CONCURRENCY}")
        ragops.config.write_text(text.replace("timeout_seconds = 60", "timeout_seconds = 3600"))
        for size in sizes:
            qdrant.fault(snapshot_size=size)
            argv = [
                sys.executable,
                "-m",
                "agent.cli",
                "--config",
                str(ragops.config),
                "--debug",
                "snapshot",
                "create",
            ]
            seconds, rss, written, err = run_measured(argv, env=ragops.env)
            finished = [
                json.loads(line)
                for line in err.splitlines()
                if '"snapshot.create.finished"' in line
            ]
            transfer = float(finished[-1]["seconds"])
            # The peers upload the same bytes from the file Qdrant would keep on its disk.
            snap = qdrant.call("POST", "/collections/bench/snapshots", params={"wait": "true"})
            path = qdrant.storage / "snapshots" / "bench" / snap["name"]
            results = peers(path, weed.bucket, weed.endpoint, size)
            qdrant.call("DELETE", f"/collections/bench/snapshots/{snap['name']}")
            rows.append((size, seconds, transfer, rss, written, results))
    finally:
        qdrant.stop()
        os.killpg(weed.proc.pid, 9)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"part size {PART >> 20} MiB, {CONCURRENCY} parts in flight, SeaweedFS on 127.0.0.1\n")
    for size, seconds, transfer, rss, written, results in rows:
        ours = size / transfer / (1 << 20)
        print(f"== {size >> 20} MiB snapshot")
        print(
            f"  {'ragops snapshot create':<24} {ours:7.1f} MiB/s (transfer; end to end "
            f"{size / seconds / (1 << 20):.1f})  peak RSS {rss:6.1f} MiB  "
            f"disk writes {written} B"
        )
        for name, (mibs, peak, wrote) in results.items():
            print(
                f"  {name:<24} {mibs:7.1f} MiB/s  peak RSS {peak:6.1f} MiB  disk writes {wrote} B"
            )
        best_name, best = max(results.items(), key=lambda kv: kv[1][0])
        print(
            f"  ratio: throughput {ours / best[0]:.2f}x best peer ({best_name}), "
            f"RSS {rss:.0f} MiB (goal <= 100)\n"
        )


if __name__ == "__main__":
    main()
