"""A booted Debian systemd container (12 bookworm or 13 trixie) for end-to-end tests and
the demo, and an unbooted one that builds the .deb for a release other than the host's.

The host has no systemd as PID 1, so ``systemd-nspawn --register=no --keep-unit`` runs the
container in a cgroup this module makes for it (one per container, removed afterwards);
commands run inside with ``nsenter``. The root filesystem is debootstrapped once per release
and cached as a tarball. See docs/e2e.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
# The Debian releases the package is built and tested on: codename -> (VERSION_ID, the
# python3 the release ships, which the .deb's venv runs on).
RELEASES = {"bookworm": ("12", "3.11"), "trixie": ("13", "3.13")}
DEFAULT_RELEASE = "bookworm"
# What the tests and the .deb need inside; everything else stays out to keep the cache small.
ROOTFS_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    # A dependency of the ragops package: the container has no network to fetch it.
    # debootstrap resolves no virtual package: libpam-systemd is polkitd's logind.
    "polkitd",
    "libpam-systemd",
    "python3",
    # The real API (FastAPI under uvicorn) runs from a venv made inside the container.
    "python3-venv",
    "procps",
    "util-linux",
    "curl",
    "ca-certificates",
    # Debian's Prometheus and promtool: the metrics, rules and dashboard checks (issue 16).
    "prometheus",
)
# Units a throwaway container has no use for (no network, no consoles to log in on).
MASKED_UNITS = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "getty.target",
    "console-getty.service",
    "systemd-networkd-wait-online.service",
    # Started only by the test that scrapes the agent (tests/e2e/test_prometheus_e2e.py).
    "prometheus.service",
)
# Bump when the rootfs recipe changes so a stale cache is rebuilt.
ROOTFS_RECIPE = "3"
CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


class ContainerError(RuntimeError):
    """The container could not be built, booted, entered or stopped."""


def default_cache_dir() -> Path:
    explicit = os.environ.get("RAGOPS_E2E_CACHE")
    return Path(explicit) if explicit else REPO / ".cache" / "e2e"


def missing_prerequisites() -> list[str]:
    """What this machine lacks to boot containers; empty when everything is there."""
    missing: list[str] = []
    if os.geteuid() != 0:
        missing.append("root (debootstrap and systemd-nspawn need it)")
    for tool, package in (
        ("debootstrap", "debootstrap"),
        ("systemd-nspawn", "systemd-container"),
        ("nsenter", "util-linux"),
        ("tar", "tar"),
    ):
        if shutil.which(tool) is None:
            missing.append(f"{tool} (apt-get install {package})")
    if (
        not (CGROUP_ROOT / "systemd" / "cgroup.procs").exists()
        and not (CGROUP_ROOT / "cgroup.procs").exists()
    ):
        missing.append("a writable cgroup hierarchy at /sys/fs/cgroup")
    return missing


def parse_mirror(text: str) -> str | None:
    """The first Debian mirror URI in apt sources text (deb822 or one-line format)."""
    for raw in text.splitlines():
        line = raw.strip()
        match = re.match(r"URIs:\s*(\S+)", line, re.IGNORECASE)
        if match and "security" not in match.group(1):
            return match.group(1)
        match = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
        if match and "security" not in match.group(1) and "-" not in match.group(2):
            return match.group(1)
    return None


def apt_mirror(etc: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses (never a hard-coded host)."""
    files = sorted((etc / "sources.list.d").glob("*.sources"))
    files += [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in files:
        if path.is_file():
            mirror = parse_mirror(path.read_text(encoding="utf-8", errors="replace"))
            if mirror:
                return mirror
    raise ContainerError(f"no Debian mirror found in {etc}/sources.list(.d)")


def run_host(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), text=True, check=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def check_release(release: str) -> str:
    if release not in RELEASES:
        raise ContainerError(f"unknown Debian release {release!r}: use one of {sorted(RELEASES)}")
    return release


def release_python(release: str) -> str:
    """The python3 version ``release`` ships ("3.13" for trixie)."""
    return RELEASES[check_release(release)][1]


def deb_suffix(release: str) -> str:
    """What debian/rules appends to the binary version on ``release`` ("~deb13u1")."""
    return f"~deb{RELEASES[check_release(release)][0]}u1"


def build_rootfs(dest: Path, mirror: str, release: str = DEFAULT_RELEASE) -> None:
    """debootstrap ``release`` into ``dest`` and make it fit for booting under nspawn."""
    run_host(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=" + ",".join(ROOTFS_PACKAGES),
            check_release(release),
            str(dest),
            mirror,
        ],
        stdout=subprocess.DEVNULL,
    )
    (dest / "etc" / "hostname").write_text("ragops-e2e\n", encoding="utf-8")
    # An empty machine-id makes every boot a first boot with a fresh id.
    (dest / "etc" / "machine-id").write_text("", encoding="utf-8")
    (dest / "etc" / "apt" / "apt.conf.d" / "90ragops-e2e").write_text(
        'APT::Install-Recommends "false";\nDpkg::Use-Pty "false";\n', encoding="utf-8"
    )
    for unit in MASKED_UNITS:
        link = dest / "etc" / "systemd" / "system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    run_host(["chroot", str(dest), "apt-get", "clean"], stdout=subprocess.DEVNULL)


def recipe_digest(release: str = DEFAULT_RELEASE) -> str:
    """A short hash of what goes into the rootfs: branches that each bump ROOTFS_RECIPE
    to the same number with different packages never share one cached tarball."""

    recipe = "\n".join([release, ROOTFS_RECIPE, *ROOTFS_PACKAGES, "--", *MASKED_UNITS])
    return hashlib.sha256(recipe.encode()).hexdigest()[:10]


def cached_tarball(tarball: Path, make_root: Callable[[Path], None]) -> Path:
    """``tarball`` if cached, else made now: ``make_root`` fills a fresh directory, which is
    packed (numeric owners, xattrs) and renamed into place only when complete."""
    if tarball.is_file():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
    try:
        root = work / "root"
        make_root(root)
        partial = work / "rootfs.tar"
        run_host(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf", str(partial), "."])
        partial.rename(tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tarball


def rootfs_tarball(cache_dir: Path | None = None, release: str = DEFAULT_RELEASE) -> Path:
    """The cached rootfs tarball of ``release``, debootstrapping it first when absent."""
    check_release(release)
    cache_dir = cache_dir or default_cache_dir()
    name = f"rootfs-{release}-r{ROOTFS_RECIPE}-{recipe_digest(release)}.tar"
    return cached_tarball(cache_dir / name, lambda root: build_rootfs(root, apt_mirror(), release))


def extract_rootfs(tarball: Path, parent: Path | None = None) -> Path:
    """Unpack the tarball into a fresh directory (under /var/tmp by default)."""
    dest = Path(tempfile.mkdtemp(prefix="ragops-e2e-", dir=parent or "/var/tmp")) / "root"
    dest.mkdir()
    run_host(["tar", "--numeric-owner", "--xattrs", "-C", str(dest), "-xpf", str(tarball)])
    return dest


def remove_rootfs(root: Path) -> None:
    shutil.rmtree(root.parent, ignore_errors=True)


@dataclass
class Cgroup:
    """One fresh cgroup per container, in every hierarchy systemd uses (v1 name=systemd,
    the unified v2 one, or a pure v2 root), so nspawn's leftovers are ours to remove."""

    name: str
    paths: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, name: str) -> Cgroup:
        roots = [CGROUP_ROOT / "systemd", CGROUP_ROOT / "unified"]
        if (CGROUP_ROOT / "cgroup.procs").exists():
            roots = [CGROUP_ROOT]
        cgroup = cls(name)
        for root in roots:
            if (root / "cgroup.procs").exists():
                path = root / name
                path.mkdir(exist_ok=True)
                cgroup.paths.append(path)
        if not cgroup.paths:
            raise ContainerError("no cgroup hierarchy to put the container in")
        return cgroup

    def procs_files(self) -> str:
        return " ".join(shlex.quote(str(p / "cgroup.procs")) for p in self.paths)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths:
            if not path.exists():
                continue
            for procs in path.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    found.update(int(x) for x in procs.read_text().split())
        return found

    def kill_all(self) -> None:
        for _ in range(50):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        raise ContainerError(f"processes survive in cgroup {self.name}: {sorted(self.pids())}")

    def remove(self) -> None:
        self.kill_all()
        for path in self.paths:
            if not path.exists():
                continue
            # Children first: nspawn and the container's systemd make nested groups.
            for sub in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if sub.is_dir():
                    with contextlib.suppress(OSError):
                        sub.rmdir()
            with contextlib.suppress(OSError):
                path.rmdir()


def ns_pid(pid: int) -> int | None:
    """The innermost PID namespace's number for ``pid`` (1 for a container's init)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^NSpid:\s*(.+)$", status, re.MULTILINE)
    return int(match.group(1).split()[-1]) if match else None


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        current = todo.pop()
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{current}/task/{current}/children").read_text().split():
                out.append(int(child))
                todo.append(int(child))
    return out


class Container:
    """A booted container. Create with :meth:`boot`; stop with :meth:`stop`."""

    def __init__(self, root: Path, *, volatile: bool, name: str | None = None) -> None:
        self.root = root
        self.volatile = volatile
        self.name = name or f"ragops-e2e-{uuid.uuid4().hex[:8]}"
        self.log_path = root.parent / f"{self.name}.console.log"
        self.cgroup: Cgroup | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.leader = 0
        self.boot_seconds = 0.0

    @classmethod
    def boot(cls, root: Path, *, volatile: bool = True, name: str | None = None) -> Container:
        container = cls(root, volatile=volatile, name=name)
        container.start()
        return container

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self.process is not None:
            raise ContainerError(f"{self.name} is already running")
        started = time.monotonic()
        self.cgroup = Cgroup.create(self.name)
        nspawn = [
            "systemd-nspawn",
            "--quiet",
            "--register=no",
            "--keep-unit",
            "--boot",
            f"--volatile={'overlay' if self.volatile else 'no'}",
            f"--directory={self.root}",
            f"--machine={self.name}",
            # Its own network namespace: only loopback, so the stack's ports never meet
            # the host's (or another test run's) and no traffic leaves the container.
            "--private-network",
            "--console=read-only",
        ]
        # Join the fresh cgroup before exec, so nspawn and everything below it live there.
        script = f'for f in {self.cgroup.procs_files()}; do echo $$ > "$f"; done; exec "$@"'
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["sh", "-c", script, "sh", *nspawn],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self.leader = self.wait_leader(started + BOOT_TIMEOUT)
            self.wait_running(started + BOOT_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - started

    def wait_leader(self, deadline: float) -> int:
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited early:\n{self.console_tail()}")
            for pid in descendants(self.process.pid):
                if ns_pid(pid) == 1:
                    return pid
            time.sleep(0.05)
        raise ContainerError(f"no container init appeared:\n{self.console_tail()}")

    def wait_running(self, deadline: float) -> None:
        state = ""
        while time.monotonic() < deadline:
            result = self.run("systemctl", "is-system-running", check=False)
            state = result.stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.1)
        failed = self.run("systemctl", "--failed", "--no-legend", check=False).stdout
        raise ContainerError(
            f"{self.name} did not finish booting (state {state!r}); failed units:\n{failed}"
        )

    def stop(self) -> None:
        """Shut the container down (SIGTERM makes nspawn halt it), then clean up."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(5)
            self.process = None
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None
        self.leader = 0

    def restart(self) -> None:
        """Power the container off and boot it again on the same root filesystem.
        Only meaningful for ``volatile=False``: an overlay's changes die with it."""
        self.stop()
        self.start()

    # -- inside ----------------------------------------------------------------------------

    def command(self, *argv: str) -> list[str]:
        """The host argv that runs ``argv`` inside the container, with a clean environment."""
        if not self.leader:
            raise ContainerError(f"{self.name} is not running")
        return [
            "nsenter",
            f"--target={self.leader}",
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--cgroup",
            "--root",
            "--wd",
            "env",
            "-i",
            f"PATH={CONTAINER_PATH}",
            "LANG=C.UTF-8",
            "HOME=/root",
            "TERM=dumb",
            "SYSTEMD_PAGER=",
            "SYSTEMD_COLORS=0",
            *argv,
        ]

    def run(
        self,
        *argv: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 300.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside; raise ContainerError with its output when it fails and
        ``check`` is set."""
        result = subprocess.run(
            self.command(*argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ContainerError(
                f"in {self.name}: {shlex.join(argv)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def sh(self, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("sh", "-ec", script, check=check)

    def copy_in(self, src: Path | str, dst: str) -> None:
        """Copy a host file or directory to the absolute path ``dst`` inside."""
        src = Path(src)
        if not dst.startswith("/"):
            raise ValueError(f"container path must be absolute: {dst}")
        pack = subprocess.run(
            ["tar", "-C", str(src.parent), "-cf", "-", src.name],
            capture_output=True,
            check=True,
        )
        parent = str(Path(dst).parent)
        unpack = f'mkdir -p {shlex.quote(parent)} && tmp=$(mktemp -d) && tar -C "$tmp" -xf - '
        unpack += f'&& rm -rf {shlex.quote(dst)} && mv "$tmp"/* {shlex.quote(dst)} '
        unpack += '&& rmdir "$tmp"'
        result = subprocess.run(
            self.command("sh", "-ec", unpack), input=pack.stdout, capture_output=True, check=False
        )
        if result.returncode != 0:
            raise ContainerError(f"copy_in {src} -> {dst} failed: {result.stderr.decode()}")

    def write_file(self, dst: str, text: str, mode: int = 0o644) -> None:
        self.run(
            "sh",
            "-ec",
            f'mkdir -p "$(dirname "$1")"; cat > "$1"; chmod {mode:o} "$1"',
            "sh",
            dst,
            input=text,
        )

    def read_file(self, path: str) -> str:
        return self.run("cat", path).stdout

    def install_deb(self, deb: Path) -> subprocess.CompletedProcess[str]:
        """``apt-get install ./<deb>`` inside (dependencies must already be in the rootfs:
        the container has no network)."""
        target = f"/tmp/{deb.name}"
        self.copy_in(deb, target)
        return self.run(
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            target,
        )

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show`` of ``unit`` as a dict (only ``properties`` when given)."""
        argv = ["systemctl", "show", unit]
        for prop in properties:
            argv += ["-p", prop]
        out = self.run(*argv).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no console log)"
        return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def booted(
    tarball: Path | None = None, *, volatile: bool = True, release: str = DEFAULT_RELEASE
) -> Iterator[Container]:
    """Extract a fresh rootfs (``release``'s unless ``tarball`` is given), boot it, and
    remove everything on exit."""
    root = extract_rootfs(tarball or rootfs_tarball(release=release))
    container: Container | None = None
    try:
        container = Container.boot(root, volatile=volatile)
        yield container
    finally:
        if container is not None:
            container.stop()
        remove_rootfs(root)
