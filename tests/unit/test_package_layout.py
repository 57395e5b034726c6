"""The package's shape: few top-level modules, one-line package docstrings, small modules,
and no import cycle (each module imports alone, in a fresh interpreter)."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.paths import REPO

AGENT = REPO / "agent"
TOP_LEVEL = {"__init__.py", "cli.py", "errors.py", "qdrant.py"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(AGENT.rglob("*.py"))


def test_only_the_shared_modules_sit_directly_in_agent() -> None:
    assert {p.name for p in AGENT.glob("*.py")} == TOP_LEVEL


def test_every_subpackage_init_is_a_one_line_docstring() -> None:
    inits = sorted(AGENT.glob("*/__init__.py"))
    assert len(inits) >= 8
    for init in inits:
        tree = ast.parse(init.read_text())
        assert len(tree.body) == 1, f"{init}: only a docstring, no imports"
        doc = ast.get_docstring(tree)
        assert doc is not None and "\n" not in doc.strip(), f"{init}: a one-line docstring"


def test_no_module_is_over_400_lines() -> None:
    sizes = {str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in MODULES}
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}


def top_level_imports(path: Path) -> set[str]:
    """agent.* modules imported when ``path`` is imported (not in functions, not for typing)."""
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("agent")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agent"):
            found.add(node.module)
            # `from agent.daemon import resources` imports a module, not a name.
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_the_module_level_import_graph_has_no_cycle() -> None:
    names = {module_name(p): p for p in MODULES}
    graph = {name: top_level_imports(path) & set(names) for name, path in names.items()}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, nxt])
                if found:
                    return found
        state[node] = 2
        return []

    for name in sorted(graph):
        if name not in state:
            assert visit(name, [name]) == [], "import cycle"


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    def import_alone(name: str) -> tuple[str, int, str]:
        proc = subprocess.run(
            [sys.executable, "-c", f"import {name}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        return name, proc.returncode, " ".join(proc.stderr.strip().splitlines()[-1:])

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(import_alone, [module_name(p) for p in MODULES]))
    assert [r for r in results if r[1] != 0] == []
