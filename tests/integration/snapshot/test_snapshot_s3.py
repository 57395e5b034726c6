"""ragops snapshot against a real S3 server (SeaweedFS), with faults on either side.

After every failure: a clear one-line error, no multipart upload left open, no manifest for
the incomplete snapshot, no snapshot left inside Qdrant, earlier snapshots untouched, and
the next run succeeds.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.snapshot.snapshot_fixtures import (
    QdrantStandin,
    Ragops,
    Seaweed,
    free_ports,
    write_config,
)
from tests.standins.s3proxy import S3Proxy


@pytest.fixture
def prefix() -> str:
    return "t-" + uuid.uuid4().hex[:10]


@pytest.fixture
def proxy(seaweed: Seaweed) -> Iterator[S3Proxy]:
    proxied = S3Proxy(seaweed.s3_port)
    yield proxied
    proxied.close()


def setup(
    qdrant: QdrantStandin,
    seaweed: Seaweed,
    tmp_path: Path,
    prefix: str,
    endpoint: str | None = None,
    **kwargs: str,
) -> Ragops:
    qdrant.make_collection("docs", 12)
    return write_config(
        tmp_path,
        qdrant,
        f"s3://{seaweed.bucket}/{prefix}",
        endpoint=endpoint or seaweed.endpoint,
        **kwargs,
    )


def good_snapshot(ragops: Ragops, seaweed: Seaweed, prefix: str) -> list[str]:
    """One successful run; returns the keys it wrote."""
    result = ragops.run("snapshot", "create")
    assert result.returncode == 0, result.stderr
    return seaweed.keys(prefix)


def assert_clean_failure(
    result: object,
    ragops: Ragops,
    seaweed: Seaweed,
    qdrant: QdrantStandin,
    prefix: str,
    before: list[str],
    message: str,
) -> None:
    import subprocess

    assert isinstance(result, subprocess.CompletedProcess)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert seaweed.open_uploads(prefix) == []
    assert seaweed.keys(prefix) == before
    assert qdrant.snapshots("docs") == []
    qdrant.clear_faults()
    again = ragops.run("snapshot", "create")
    assert again.returncode == 0, again.stderr
    after = seaweed.keys(prefix)
    assert set(before) < set(after)
    assert sum(k.endswith(".manifest.json") for k in after) == 1 + sum(
        k.endswith(".manifest.json") for k in before
    )


def test_snapshot_round_trip_through_s3(
    qdrant: QdrantStandin, seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix)
    keys = good_snapshot(ragops, seaweed, prefix)

    assert len(keys) == 2 and keys[1].endswith(".manifest.json")
    body = seaweed.boto().get_object(Bucket=seaweed.bucket, Key=keys[1])["Body"].read()
    manifest = json.loads(body)
    assert f"{prefix}/{manifest['object_key']}" == keys[0]
    assert seaweed.open_uploads(prefix) == []
    verified = ragops.run("snapshot", "verify", manifest["id"])
    assert verified.returncode == 0, verified.stderr
    restored = ragops.run("snapshot", "restore", manifest["id"], "--to-collection", "back")
    assert restored.returncode == 0, restored.stderr
    assert qdrant.count("back") == 12


def test_qdrant_500_on_create_is_a_clear_error(
    qdrant: QdrantStandin, seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix)
    before = good_snapshot(ragops, seaweed, prefix)
    qdrant.fault(create_500=1)

    result = ragops.run("snapshot", "create")

    assert_clean_failure(result, ragops, seaweed, qdrant, prefix, before, "answered 500")


def test_download_dropped_midway_aborts_the_upload(
    qdrant: QdrantStandin, seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix)
    before = good_snapshot(ragops, seaweed, prefix)
    # Past the first 5 MiB part, so a multipart upload is open when the download dies.
    qdrant.fault(drop_download_after=7 << 20, snapshot_size=12 << 20)

    result = ragops.run("snapshot", "create")

    assert_clean_failure(result, ragops, seaweed, qdrant, prefix, before, "download broke off")


def test_checksum_mismatch_aborts_the_upload(
    qdrant: QdrantStandin, seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix)
    before = good_snapshot(ragops, seaweed, prefix)
    qdrant.fault(wrong_checksum=True, snapshot_size=12 << 20)

    result = ragops.run("snapshot", "create")

    assert_clean_failure(result, ragops, seaweed, qdrant, prefix, before, "checksum mismatch")


def test_wrong_credentials_are_a_clear_error(
    qdrant: QdrantStandin, seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix)
    before = good_snapshot(ragops, seaweed, prefix)
    secret_file = tmp_path / "secrets" / "s3-secret"
    good_secret = secret_file.read_text()
    secret_file.write_text("not-the-secret")

    result = ragops.run("snapshot", "create")

    assert good_secret not in result.stderr and "not-the-secret" not in result.stderr
    secret_file.write_text(good_secret)
    assert_clean_failure(result, ragops, seaweed, qdrant, prefix, before, "SignatureDoesNotMatch")


def test_s3_unreachable_is_a_clear_error(
    qdrant: QdrantStandin, seaweed: Seaweed, tmp_path: Path, prefix: str
) -> None:
    dead = f"http://127.0.0.1:{free_ports(1)[0]}"
    ragops = setup(qdrant, seaweed, tmp_path, prefix, endpoint=dead, extra="")
    config = ragops.config.read_text()
    ragops.config.write_text(
        config.replace("retry_timeout_seconds = 20", "retry_timeout_seconds = 2")
    )

    result = ragops.run("snapshot", "create")

    assert result.returncode == 1
    assert "error sending request" in result.stderr or "connect" in result.stderr.lower()
    assert qdrant.snapshots("docs") == []
    assert seaweed.open_uploads(prefix) == []
    ragops.config.write_text(config.replace(dead, seaweed.endpoint))
    assert ragops.run("snapshot", "create").returncode == 0


def test_s3_slow_down_answers_are_retried(
    qdrant: QdrantStandin, seaweed: Seaweed, proxy: S3Proxy, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix, endpoint=proxy.endpoint)
    qdrant.fault(snapshot_size=12 << 20)
    proxy.slow_down_parts = 2

    result = ragops.run("snapshot", "create")

    assert result.returncode == 0, result.stderr
    assert proxy.slowed == 2
    assert seaweed.open_uploads(prefix) == []
    verified = ragops.run("snapshot", "verify", "--latest")
    assert verified.returncode == 0, verified.stderr


def test_s3_5xx_beyond_the_retries_aborts_the_upload(
    qdrant: QdrantStandin, seaweed: Seaweed, proxy: S3Proxy, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix, endpoint=proxy.endpoint)
    before = good_snapshot(ragops, seaweed, prefix)
    qdrant.fault(snapshot_size=12 << 20)
    proxy.slow_down_parts = 1000

    result = ragops.run("snapshot", "create")

    proxy.slow_down_parts = 0
    assert_clean_failure(result, ragops, seaweed, qdrant, prefix, before, "SlowDown")


def test_s3_dying_mid_upload_and_coming_back_loses_nothing(
    qdrant: QdrantStandin, seaweed: Seaweed, proxy: S3Proxy, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix, endpoint=proxy.endpoint)
    ragops.config.write_text(
        ragops.config.read_text().replace("max_retries = 3", "max_retries = 10")
    )
    before = good_snapshot(ragops, seaweed, prefix)
    qdrant.fault(snapshot_size=20 << 20)
    proxy.die_after_parts = 1
    proxy.die_seconds = 3.0

    result = ragops.run("snapshot", "create")

    # Either obstore's retries carry the upload through, or it fails and is aborted: never
    # a half-written snapshot.
    assert seaweed.open_uploads(prefix) == []
    assert qdrant.snapshots("docs") == []
    after = seaweed.keys(prefix)
    if result.returncode == 0:
        assert len(after) == len(before) + 2
        verified = ragops.run("snapshot", "verify", "--latest")
        assert verified.returncode == 0, verified.stderr
    else:
        assert after == before and "Traceback" not in result.stderr


def expected_parts(ragops: Ragops) -> int:
    """5 MiB parts of the newest snapshot: Qdrant's archives (one 32 MiB vector chunk and
    one 32 MiB payload page per segment) are larger than the size the stand-in pads to."""
    size = json.loads(ragops.run("snapshot", "list", "--json").stdout)[-1]["size"]
    return -(-int(size) // (5 << 20))


def part_headers(proxy: S3Proxy) -> list[tuple[str, tuple[str, ...]]]:
    return [(h, c) for m, p, h, c in proxy.headers if m == "PUT" and "partNumber=" in p]


def test_parts_go_unsigned_with_a_crc64_checksum_while_manifests_are_signed(
    qdrant: QdrantStandin, seaweed: Seaweed, proxy: S3Proxy, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix, endpoint=proxy.endpoint)
    qdrant.fault(snapshot_size=12 << 20)

    good_snapshot(ragops, seaweed, prefix)

    parts = part_headers(proxy)
    assert len(parts) == expected_parts(ragops) > 1
    assert all(h == ("UNSIGNED-PAYLOAD", ("x-amz-checksum-crc64nvme",)) for h in parts)
    manifests = [h for m, p, h, _ in proxy.headers if m == "PUT" and "manifest.json" in p]
    assert len(manifests) == 1 and len(manifests[0]) == 64 and manifests[0] != "UNSIGNED-PAYLOAD"


def test_sign_payload_hashes_every_part_into_its_signature(
    qdrant: QdrantStandin, seaweed: Seaweed, proxy: S3Proxy, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(
        qdrant,
        seaweed,
        tmp_path,
        prefix,
        endpoint=proxy.endpoint,
        extra='sign_payload = true\nchecksum = "none"',
    )
    qdrant.fault(snapshot_size=12 << 20)

    good_snapshot(ragops, seaweed, prefix)

    parts = part_headers(proxy)
    assert len(parts) == expected_parts(ragops) > 1
    assert all(len(h) == 64 and h != "UNSIGNED-PAYLOAD" and c == () for h, c in parts)
    verified = ragops.run("snapshot", "verify", "--latest")
    assert verified.returncode == 0, verified.stderr


def test_a_part_damaged_in_transit_is_refused_and_the_upload_aborted(
    qdrant: QdrantStandin, seaweed: Seaweed, proxy: S3Proxy, tmp_path: Path, prefix: str
) -> None:
    ragops = setup(qdrant, seaweed, tmp_path, prefix, endpoint=proxy.endpoint)
    before = good_snapshot(ragops, seaweed, prefix)
    qdrant.fault(snapshot_size=12 << 20)
    proxy.corrupt_parts = 1

    result = ragops.run("snapshot", "create")

    assert proxy.corrupted == 1
    assert_clean_failure(result, ragops, seaweed, qdrant, prefix, before, "BadDigest")


def test_a_signature_alone_lets_seaweedfs_store_a_damaged_part_and_verify_catches_it(
    qdrant: QdrantStandin, seaweed: Seaweed, proxy: S3Proxy, tmp_path: Path, prefix: str
) -> None:
    # Why checksum = "crc64nvme" is the default: SeaweedFS does not check signed payload
    # hashes, so without a checksum only ragops' own SHA-256 notices the damage.
    extra = 'sign_payload = true\nchecksum = "none"'
    ragops = setup(qdrant, seaweed, tmp_path, prefix, endpoint=proxy.endpoint, extra=extra)
    qdrant.fault(snapshot_size=12 << 20)
    proxy.corrupt_parts = 1

    created = ragops.run("snapshot", "create")
    verified = ragops.run("snapshot", "verify", "--latest")

    assert proxy.corrupted == 1 and created.returncode == 0, created.stderr
    assert verified.returncode == 1 and "damaged" in verified.stderr, verified.stderr
