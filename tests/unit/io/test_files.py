from __future__ import annotations

from pathlib import Path

import pytest

from agent.io.files import write_atomic


@pytest.mark.parametrize("durable", [True, False], ids=["fsync", "no-fsync"])
def test_write_atomic_replaces_the_whole_file_and_leaves_no_temporary(
    tmp_path: Path, durable: bool
) -> None:
    path = tmp_path / "state.json"
    path.write_text("old and longer than the new content\n")
    write_atomic(path, '{"new": 1}\n', mode=0o600, durable=durable)
    assert path.read_text() == '{"new": 1}\n'
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]
