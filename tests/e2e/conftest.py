"""Fixtures for the end-to-end suite: a booted Debian container and the ragops .deb.

The release is $RAGOPS_E2E_RELEASE (bookworm, the default, or trixie): its rootfs, and the
.deb built for it (dist/ragops_*~deb<N>u1_*.deb).

Under CI (CI=true) a missing prerequisite fails the run; elsewhere the suite skips and
says so at the end of the run.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.container import (
    DEFAULT_RELEASE,
    REPO,
    Container,
    check_release,
    deb_suffix,
    extract_rootfs,
    missing_prerequisites,
    remove_rootfs,
    rootfs_tarball,
)

# Read now: the repository's autouse fixture clears RAGOPS_* from every test's environment.
IN_CI = os.environ.get("CI", "").lower() == "true"
EXPLICIT_DEB = os.environ.get("RAGOPS_E2E_DEB")
RELEASE = check_release(os.environ.get("RAGOPS_E2E_RELEASE") or DEFAULT_RELEASE)
SKIPPED: list[str] = []
TIMINGS: dict[str, float] = {}


def require_prerequisites() -> None:
    missing = missing_prerequisites()
    if not missing:
        return
    reason = "e2e prerequisites missing: " + "; ".join(missing)
    if IN_CI:
        pytest.fail(reason + " (CI=true: the e2e suite must run)", pytrace=False)
    SKIPPED.append(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rootfs_tar() -> Path:
    """The cached rootfs tarball of RELEASE (debootstrapped on first use)."""
    require_prerequisites()
    started = time.monotonic()
    tarball = rootfs_tarball(release=RELEASE)
    TIMINGS["rootfs tarball (cached or debootstrap)"] = time.monotonic() - started
    return tarball


@pytest.fixture(scope="session")
def shared_rootfs(rootfs_tar: Path) -> Iterator[Path]:
    """One extracted rootfs, the read-only lower layer of every volatile container."""
    started = time.monotonic()
    root = extract_rootfs(rootfs_tar)
    TIMINGS["rootfs extraction"] = time.monotonic() - started
    yield root
    remove_rootfs(root)


def volatile_container(shared_rootfs: Path) -> Iterator[Container]:
    container = Container.boot(shared_rootfs, volatile=True)
    TIMINGS["boot (last volatile container)"] = container.boot_seconds
    try:
        yield container
    finally:
        container.stop()


@pytest.fixture
def fresh_container(shared_rootfs: Path) -> Iterator[Container]:
    """A throwaway container (--volatile=overlay): nothing it does outlives the test."""
    yield from volatile_container(shared_rootfs)


@pytest.fixture(scope="module")
def module_container(shared_rootfs: Path) -> Iterator[Container]:
    """One throwaway container shared by a test module."""
    yield from volatile_container(shared_rootfs)


@pytest.fixture(scope="module")
def persistent_container(rootfs_tar: Path) -> Iterator[Container]:
    """A container on its own copy of the rootfs (--volatile=no): survives restart()."""
    root = extract_rootfs(rootfs_tar)
    container = Container.boot(root, volatile=False)
    try:
        yield container
    finally:
        container.stop()
        remove_rootfs(root)


@pytest.fixture(scope="session")
def e2e_release() -> str:
    """The Debian release the suite boots (bookworm or trixie)."""
    return RELEASE


@pytest.fixture(scope="session")
def ragops_deb() -> Path:
    """$RAGOPS_E2E_DEB, else RELEASE's dist/ragops_*~deb<N>u1_*.deb, else built now with
    scripts/build-deb --release RELEASE."""
    require_prerequisites()
    if EXPLICIT_DEB:
        return Path(EXPLICIT_DEB)
    pattern = f"ragops_*{deb_suffix(RELEASE)}_*.deb"
    debs = sorted((REPO / "dist").glob(pattern), key=lambda p: p.stat().st_mtime)
    if debs:
        return debs[-1]
    started = time.monotonic()
    subprocess.run([str(REPO / "scripts" / "build-deb"), "--release", RELEASE], check=True)
    TIMINGS["build-deb"] = time.monotonic() - started
    return sorted((REPO / "dist").glob(pattern))[-1]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SKIPPED:
        terminalreporter.write_line("")
        terminalreporter.write_line(f"E2E SUITE SKIPPED: {SKIPPED[0]}", red=True, bold=True)
    if TIMINGS:
        terminalreporter.write_line("e2e timings:")
        for label, seconds in TIMINGS.items():
            terminalreporter.write_line(f"  {label}: {seconds:.2f} s")
