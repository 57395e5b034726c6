"""Where S3 credentials come from: the key files, or (only when asked) the environment
and the instance-metadata address. Against the real SeaweedFS server."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.integration.snapshot.snapshot_fixtures import (
    ACCESS_KEY,
    SECRET_KEY,
    QdrantStandin,
    Ragops,
    Seaweed,
    write_config,
)


class MetadataRecorder:
    """An instance-metadata address on loopback that records every request and refuses it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _refuse(self) -> None:
                recorder.requests.append(f"{self.command} {self.path}")
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = _refuse

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metadata() -> Iterator[MetadataRecorder]:
    recorder = MetadataRecorder()
    yield recorder
    recorder.close()


def keyless(
    tmp_path: Path, qdrant: QdrantStandin, seaweed: Seaweed, metadata: MetadataRecorder, extra: str
) -> Ragops:
    ragops = write_config(
        tmp_path,
        qdrant,
        f"s3://{seaweed.bucket}/k-{uuid.uuid4().hex[:8]}",
        endpoint=seaweed.endpoint,
        extra=extra,
    )
    text = ragops.config.read_text()
    text = re.sub(r"^(access_key_id_file|secret_access_key_file) = .*$", "", text, flags=re.M)
    ragops.config.write_text(text)
    ragops.env["AWS_METADATA_ENDPOINT"] = metadata.url
    return ragops


def test_without_key_files_ragops_names_them_and_asks_no_metadata_address(
    tmp_path: Path, qdrant: QdrantStandin, seaweed: Seaweed, metadata: MetadataRecorder
) -> None:
    ragops = keyless(tmp_path, qdrant, seaweed, metadata, extra="")
    result = ragops.run("snapshot", "list")
    assert result.returncode == 78
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert "no S3 credentials: set snapshot.s3.access_key_id_file and " in line
    assert "snapshot.s3.secret_access_key_file" in line
    assert "snapshot.s3.ambient_credentials = true" in line
    assert metadata.requests == []


def test_one_missing_key_file_is_named_alone(
    tmp_path: Path, qdrant: QdrantStandin, seaweed: Seaweed, metadata: MetadataRecorder
) -> None:
    ragops = keyless(tmp_path, qdrant, seaweed, metadata, extra="")
    id_file = tmp_path / "secrets" / "s3-id"
    text = ragops.config.read_text().replace(
        "[snapshot.s3]\n", f'[snapshot.s3]\naccess_key_id_file = "{id_file}"\n'
    )
    ragops.config.write_text(text)
    result = ragops.run("snapshot", "list")
    assert result.returncode == 78
    assert "set snapshot.s3.secret_access_key_file (or" in result.stderr
    assert metadata.requests == []


def test_ambient_credentials_on_asks_the_metadata_address(
    tmp_path: Path, qdrant: QdrantStandin, seaweed: Seaweed, metadata: MetadataRecorder
) -> None:
    ragops = keyless(tmp_path, qdrant, seaweed, metadata, extra="ambient_credentials = true")
    result = ragops.run("snapshot", "list")
    assert result.returncode != 0
    assert metadata.requests, "obstore did not look for instance credentials"


def test_ambient_credentials_on_uses_the_environment_keys(
    tmp_path: Path, qdrant: QdrantStandin, seaweed: Seaweed, metadata: MetadataRecorder
) -> None:
    ragops = keyless(tmp_path, qdrant, seaweed, metadata, extra="ambient_credentials = true")
    ragops.env |= {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    result = ragops.run("snapshot", "list")
    assert result.returncode == 0, result.stderr
    assert metadata.requests == []
