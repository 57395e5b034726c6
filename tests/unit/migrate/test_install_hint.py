from __future__ import annotations

from pathlib import Path

from agent.migrate.sources.base import DEB_PREFIX, install_hint

CHECKOUT_VENV = Path(__file__).resolve().parents[3] / ".venv"


def test_a_checkout_venv_is_told_to_install_the_extra_from_the_checkout() -> None:
    hint = install_hint("faiss", prefix=str(CHECKOUT_VENV))
    assert hint.endswith(".venv/bin/pip install -e '.[faiss]'")
    assert "'ragops[" not in hint  # ragops is not on a package index


def test_the_deb_is_never_told_to_pip_install_into_its_own_environment() -> None:
    hint = install_hint("milvus", prefix=DEB_PREFIX)
    assert hint.startswith("the .deb does not ship it")
    assert "pip install -e '.[milvus]'" in hint
    assert DEB_PREFIX not in hint
