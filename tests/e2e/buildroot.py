"""A Debian release's build root: the e2e rootfs of that release plus the .deb's build
dependencies, cached as a tarball, in which one command runs under systemd-nspawn (not
booted, on the host's network: pip fetches the venv's wheels through the host's own pip
configuration, which is bound in read-only). scripts/build-deb uses it for a release other
than the host's. See docs/packaging.md.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tests.e2e.container import (
    Cgroup,
    ContainerError,
    cached_tarball,
    check_release,
    default_cache_dir,
    recipe_digest,
    rootfs_tarball,
    run_host,
)

# build-essential: trixie's dpkg-checkbuilddeps requires it (build-essential:native).
BUILD_PACKAGES = ("build-essential", "debhelper", "dpkg-dev", "python3-venv")
# pip's configuration files (system, XDG, user), as pip reads them as root.
PIP_CONFIGS = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "/root/.config/pip/pip.conf")
# Settings whose values may name local files or directories the build then needs.
PIP_PATH_KEYS = ("index-url", "extra-index-url", "find-links", "constraint", "cert")
# A local index's pages link to files beside it (root/simple/ -> root/files/): its parent
# directory is bound.
PIP_INDEX_KEYS = ("index-url", "extra-index-url")


def buildroot_tarball(release: str, cache_dir: Path | None = None) -> Path:
    """The cached build root of ``release``, made from its e2e rootfs when absent."""
    check_release(release)
    cache_dir = cache_dir or default_cache_dir()
    base = rootfs_tarball(cache_dir, release)
    recipe = "\n".join([recipe_digest(release), *BUILD_PACKAGES])
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:10]

    def make(root: Path) -> None:
        root.mkdir()
        run_host(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-xpf", str(base)])
        install = "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
        install += " ".join(BUILD_PACKAGES) + " >/dev/null && apt-get clean"
        run_unbooted(root, ["sh", "-ec", install], env={"DEBIAN_FRONTEND": "noninteractive"})

    return cached_tarball(cache_dir / f"buildroot-{release}-{digest}.tar", make)


def local_paths(values: Iterable[str]) -> list[Path]:
    """The existing local files and directories among pip setting values (``file://`` URLs
    and absolute paths, several to a value when space-separated)."""
    found: list[Path] = []
    for value in values:
        for item in value.split():
            path = item.removeprefix("file://")
            if path.startswith("/") and Path(path).exists() and Path(path) not in found:
                found.append(Path(path))
    return found


def pip_passthrough(environ: Mapping[str, str]) -> tuple[list[Path], dict[str, str]]:
    """What the build needs of the host's pip setup: the files to bind (config files and
    the local paths they or PIP_* variables name) and the PIP_* variables to set."""
    env = {k: v for k, v in environ.items() if k.startswith("PIP_")}
    configs = [Path(p) for p in PIP_CONFIGS if Path(p).is_file()]
    if env.get("PIP_CONFIG_FILE") and Path(env["PIP_CONFIG_FILE"]).is_file():
        configs.append(Path(env["PIP_CONFIG_FILE"]))
    settings = [(k.removeprefix("PIP_").lower().replace("_", "-"), v) for k, v in env.items()]
    for config in configs:
        parser = configparser.ConfigParser(interpolation=None)
        parser.read(config, encoding="utf-8")
        for section in parser.sections():
            settings += [(k, parser[section][k]) for k in PIP_PATH_KEYS if k in parser[section]]
    paths = local_paths(v for k, v in settings if k in PIP_PATH_KEYS and k not in PIP_INDEX_KEYS)
    paths += [p.parent for p in local_paths(v for k, v in settings if k in PIP_INDEX_KEYS)]
    binds: list[Path] = []
    for path in [*configs, *paths]:
        if path not in binds:
            binds.append(path)
    return binds, env


def run_unbooted(
    root: Path,
    argv: Sequence[str],
    *,
    binds: Sequence[tuple[Path, str]] = (),
    binds_ro: Sequence[Path] = (),
    env: Mapping[str, str] | None = None,
) -> None:
    """Run ``argv`` in ``root`` (systemd-nspawn, not booted, the host's network), in a
    cgroup of its own that is removed afterwards. Raises ContainerError when it fails."""
    cgroup = Cgroup.create(f"ragops-build-{uuid.uuid4().hex[:8]}")
    nspawn = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--as-pid2"]
    nspawn += [f"--directory={root}", f"--machine=ragops-build-{os.getpid()}"]
    nspawn += [f"--bind={host}:{inside}" for host, inside in binds]
    nspawn += [f"--bind-ro={path}" for path in binds_ro]
    nspawn += [f"--setenv={key}={value}" for key, value in (env or {}).items()]
    script = f'for f in {cgroup.procs_files()}; do echo $$ > "$f"; done; exec "$@"'
    try:
        result = subprocess.run(["sh", "-c", script, "sh", *nspawn, *argv], check=False)
    finally:
        cgroup.remove()
    if result.returncode != 0:
        raise ContainerError(f"in {root}: {' '.join(argv)} exited {result.returncode}")


def build_in_container(release: str, work: Path) -> None:
    """dpkg-buildpackage of ``work``/ragops inside ``release``'s build root; the .debs and
    build.log land in ``work``."""
    from tests.e2e.container import extract_rootfs, remove_rootfs

    root = extract_rootfs(buildroot_tarball(release))
    try:
        binds_ro, env = pip_passthrough(os.environ)
        build = "cd /build/ragops && dpkg-buildpackage -b -us -uc >/build/build.log 2>&1"
        run_unbooted(root, ["sh", "-ec", build], binds=[(work, "/build")], binds_ro=binds_ro,
                     env=env)  # fmt: skip
    finally:
        remove_rootfs(root)
