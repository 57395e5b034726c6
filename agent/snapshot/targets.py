"""Snapshot targets (a local directory or S3-compatible storage), all through obstore.

Uploads stream: bytes go from an iterator into a multipart upload in parts of
``part_size`` bytes, at most ``concurrency`` parts in flight, so memory stays near
part_size x concurrency whatever the object's size. If the iterator raises, obstore aborts
the multipart upload (or removes the staged file of a local target): nothing half-written
stays visible.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agent.errors import ConfigError, RagopsError
from agent.io.files import UnsafePathError, open_directory, open_nofollow

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig, S3Config

    from agent.config.models import SnapshotSettings


class StorageError(RagopsError):
    """The snapshot target refused or failed an operation."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime


def describe_error(exc: BaseException) -> str:
    """One line out of obstore's multi-line error, with S3's code and message if present."""
    text = str(exc)
    code = re.search(r"<Code>([^<]+)</Code>", text)
    message = re.search(r"<Message>([^<]+)</Message>", text)
    if code:
        return f"{code.group(1)}: {message.group(1) if message else ''}".strip(": ")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    # The request URL carries the upload ID and the key again: keep only the reason.
    first = re.sub(r"https?://[^/\s]+/\S*", "", first)
    first = re.sub(r"\s+", " ", first)
    return first[:400]


class Target:
    """One snapshot target; keys are relative to its directory or bucket prefix.

    ``bulk_store`` carries the snapshot data itself; on S3 it may send parts as
    UNSIGNED-PAYLOAD with a per-part checksum (snapshot.s3.sign_payload). ``store`` does
    everything else, manifests included, always fully signed.
    """

    def __init__(
        self,
        store: Any,
        display: str,
        part_size: int,
        concurrency: int,
        bulk_store: Any | None = None,
        *,
        local_root: str | None = None,
    ) -> None:
        self.local_root = local_root
        self.store = store
        self.bulk_store = store if bulk_store is None else bulk_store
        self.display = display
        self.part_size = part_size
        self.concurrency = concurrency

    @classmethod
    def from_settings(cls, settings: SnapshotSettings) -> Target:
        part_size = settings.part_size_mib * 1024 * 1024
        url = urlsplit(settings.target)
        if url.scheme == "file":
            from obstore.store import LocalStore

            try:
                store = LocalStore(url.path, mkdir=True)
            except Exception as exc:
                raise StorageError(
                    f"snapshot.target {settings.target}: cannot use it: {describe_error(exc)}"
                ) from None
            return cls(store, settings.target, part_size, settings.concurrency, local_root=url.path)
        store, bulk = _s3_stores(settings)
        return cls(store, settings.target, part_size, settings.concurrency, bulk)

    def _restrict(self, key: str, *, finished: bool) -> None:
        """A local target's directories 0700 and objects 0600, whatever the umask: set on
        descriptors opened without following links (obstore creates them with the umask's
        modes). Before an upload the key's directories are made 0700 so that obstore's
        staging file is never readable by others; after it, the object becomes 0600."""
        if self.local_root is None:
            return
        *dirs, name = key.split("/")
        try:
            with contextlib.ExitStack() as stack:
                dir_fd = stack.enter_context(open_directory(self.local_root))
                shown = self.local_root.rstrip("/")
                for part in dirs:
                    shown += "/" + part
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o700, dir_fd=dir_fd)
                    dir_fd = stack.enter_context(_subdirectory(part, dir_fd, shown))
                    os.fchmod(dir_fd, 0o700)
                if finished:
                    fd = open_nofollow(name, os.O_RDONLY, dir_fd=dir_fd, display=f"{shown}/{name}")
                    try:
                        os.fchmod(fd, 0o600)
                    finally:
                        os.close(fd)
        except UnsafePathError as exc:
            raise StorageError(f"{self.display}: {exc.message}") from None
        except OSError as exc:
            raise StorageError(f"{self.display}: {key}: {exc.strerror or exc}") from None

    def _fail(self, action: str, key: str, exc: BaseException) -> StorageError:
        return StorageError(f"{self.display}: {action} {key}: {describe_error(exc)}")

    def put_stream(
        self, key: str, chunks: Iterable[bytes], *, concurrency: int | None = None
    ) -> None:
        """Upload everything ``chunks`` yields; an exception from it aborts the upload.
        ``concurrency``: parts in flight for this upload [default: snapshot.concurrency]."""
        import obstore

        self._restrict(key, finished=False)
        try:
            obstore.put(
                self.bulk_store,
                key,
                chunks,
                use_multipart=True,
                chunk_size=self.part_size,
                max_concurrency=concurrency or self.concurrency,
            )
        except _errors() as exc:
            failed = self._fail("uploading", key, exc)
            if re.search(r"DELETE \S*uploadId=", str(exc)):
                failed = StorageError(
                    failed.message + "; the abort of the multipart upload failed too, so an "
                    "incomplete upload may remain: give the bucket an "
                    "AbortIncompleteMultipartUpload lifecycle rule"
                )
            raise failed from None
        self._restrict(key, finished=True)

    def put_small(self, key: str, data: bytes) -> None:
        import obstore

        self._restrict(key, finished=False)
        try:
            obstore.put(self.store, key, data, use_multipart=False)
        except _errors() as exc:
            raise self._fail("writing", key, exc) from None
        self._restrict(key, finished=True)

    def get_bytes(self, key: str) -> bytes:
        import obstore

        try:
            return bytes(obstore.get(self.store, key).bytes())
        except _errors() as exc:
            raise self._fail("reading", key, exc) from None

    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object's bytes in chunks, never the whole object in memory."""
        import obstore

        try:
            result = obstore.get(self.store, key)
            for chunk in result.stream(min_chunk_size=chunk_size):
                yield bytes(chunk)
        except _errors() as exc:
            raise self._fail("reading", key, exc) from None

    def list_objects(self, prefix: str | None = None) -> list[ObjectInfo]:
        import obstore

        found: list[ObjectInfo] = []
        try:
            for batch in obstore.list(self.store, prefix, chunk_size=1000):
                for meta in batch:
                    found.append(
                        ObjectInfo(str(meta["path"]), int(meta["size"]), meta["last_modified"])
                    )
        except _errors() as exc:
            raise self._fail("listing", prefix or "/", exc) from None
        return found

    def delete(self, keys: list[str]) -> None:
        import obstore

        if not keys:
            return
        try:
            obstore.delete(self.store, keys)
        except _errors() as exc:
            raise self._fail("deleting", keys[0], exc) from None


def missing_credentials(key_id: str | None, secret: str | None) -> list[str]:
    """The key settings that gave nothing."""
    return [
        name
        for name, value in (
            ("snapshot.s3.access_key_id_file", key_id),
            ("snapshot.s3.secret_access_key_file", secret),
        )
        if not value
    ]


def _errors() -> tuple[type[BaseException], ...]:
    """What obstore raises: its own errors, and builtin ones for a missing object
    (FileNotFoundError) or a key it cannot parse (ValueError, e.g. '..')."""
    from obstore.exceptions import BaseError

    return (BaseError, OSError, ValueError)


@contextlib.contextmanager
def _subdirectory(name: str, dir_fd: int, shown: str) -> Iterator[int]:
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd
        )
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(
                f"{shown}: not a plain directory (a link?); refusing it"
            ) from None
        raise
    try:
        yield fd
    finally:
        os.close(fd)


def _s3_stores(settings: SnapshotSettings) -> tuple[Any, Any]:
    """The fully signed store, and the one snapshot data goes through."""
    from obstore.store import S3Store

    from agent.config.credentials import read_credential

    s3 = settings.s3
    url = urlsplit(settings.target)
    prefix = url.path.strip("/") or None
    key_id = read_credential(
        "s3-access-key-id", s3.access_key_id_file, "snapshot.s3.access_key_id_file"
    )
    secret = read_credential(
        "s3-secret-access-key", s3.secret_access_key_file, "snapshot.s3.secret_access_key_file"
    )
    config: S3Config = {
        "region": s3.region,
        "virtual_hosted_style_request": not s3.path_style,
    }
    if s3.endpoint:
        config["endpoint"] = s3.endpoint
    missing = missing_credentials(key_id, secret)
    if key_id and secret:
        config["access_key_id"] = key_id
        config["secret_access_key"] = secret
    elif not s3.ambient_credentials:
        # Without this, obstore would try the environment, ~/.aws and the instance-metadata
        # address in turn, and report a failed PUT instead of the missing setting.
        raise ConfigError(
            [
                f"snapshot.target {settings.target}: no S3 credentials: set "
                + " and ".join(missing)
                + " (or the LoadCredential ids s3-access-key-id / s3-secret-access-key), or "
                "snapshot.s3.ambient_credentials = true to use the environment or the "
                "instance's role"
            ]
        )
    retry: RetryConfig = {
        "max_retries": s3.max_retries,
        "retry_timeout": timedelta(seconds=s3.retry_timeout_seconds),
        "backoff": {
            "init_backoff": timedelta(milliseconds=500),
            "max_backoff": timedelta(seconds=15),
        },
    }
    client: ClientConfig = {"allow_http": s3.allow_http, "connect_timeout": timedelta(seconds=10)}
    bulk_config = config.copy()
    if not s3.sign_payload:
        bulk_config["unsigned_payload"] = True
    if s3.checksum != "none":
        bulk_config["checksum_algorithm"] = s3.checksum

    def build(c: S3Config) -> S3Store:
        return S3Store(
            url.netloc, prefix=prefix, config=c, client_options=client, retry_config=retry
        )

    try:
        signed, bulk = build(config), build(bulk_config)
    except Exception as exc:
        raise StorageError(
            f"snapshot.target {settings.target}: bad S3 settings: {describe_error(exc)}"
        ) from None
    return signed, bulk
