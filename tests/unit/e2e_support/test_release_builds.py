"""The release table behind build-deb --release and the e2e suite's RAGOPS_E2E_RELEASE, and
what the build root takes of the host's pip configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.buildroot import local_paths, pip_passthrough
from tests.e2e.container import ContainerError, deb_suffix, recipe_digest, release_python


def test_each_release_has_its_version_suffix_and_python() -> None:
    assert (deb_suffix("bookworm"), release_python("bookworm")) == ("~deb12u1", "3.11")
    assert (deb_suffix("trixie"), release_python("trixie")) == ("~deb13u1", "3.13")


def test_an_unknown_release_names_the_known_ones() -> None:
    with pytest.raises(ContainerError, match=r"'sid'.*\['bookworm', 'trixie'\]"):
        deb_suffix("sid")


def test_the_releases_rootfs_recipes_differ() -> None:
    assert recipe_digest("bookworm") != recipe_digest("trixie")


def test_local_paths_are_the_existing_file_urls_and_absolute_paths(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    index = tmp_path / "simple"
    index.mkdir()
    values = [f"file://{index} https://index.test/simple", str(wheels), "/nonexistent/x"]
    assert local_paths(values) == [index, wheels]


def test_pip_passthrough_keeps_pip_variables_config_and_their_local_paths(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("torch<=2\n", encoding="utf-8")
    config = tmp_path / "pip.conf"
    index = tmp_path / "pypi" / "simple"
    index.mkdir(parents=True)
    config.write_text(
        f"[global]\nconstraint = {constraints}\nextra-index-url = file://{index}\n",
        encoding="utf-8",
    )
    env = {"PIP_CONFIG_FILE": str(config), "PIP_FIND_LINKS": str(tmp_path), "HOME": "/root"}
    binds, passed = pip_passthrough(env)
    assert passed == {"PIP_CONFIG_FILE": str(config), "PIP_FIND_LINKS": str(tmp_path)}
    assert config in binds and constraints in binds and tmp_path in binds
    # A local index is bound with the directory beside it that its pages link into.
    assert index.parent in binds and index not in binds
