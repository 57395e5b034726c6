"""FAISS indexes of every kind into the Qdrant stand-in; LangChain docstores; bad input."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import faiss
import pytest

from agent.migrate.run import MigrateOptions, run_migration
from agent.migrate.sources.faiss_index import FaissSource
from agent.qdrant import QdrantClient
from tests.integration.migrate import source_builders as sb
from tests.integration.migrate.sources_cases import Cli, cli
from tests.integration.snapshot.snapshot_fixtures import QdrantStandin
from tests.paths import REPO

__all__ = ["cli"]
DIM, COUNT = 16, 700


def migrate(source: FaissSource, standin: QdrantStandin, tmp_path: Path, **kw: Any) -> Any:
    options = MigrateOptions(
        from_path=str(source.path),
        to_url=standin.url,
        collections=[],
        batch_size=64,
        state_dir=tmp_path / "state",
        sample_size=100,
        **kw,
    )
    with QdrantClient.connect(standin.url, standin.api_key, 60) as client:
        return run_migration(source, client, options)


@pytest.mark.parametrize("idmap", [False, True], ids=["bare", "idmap"])
@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_flat_hnsw_and_ivf_indexes_migrate_with_their_ids_payloads_and_metric(
    kind: str, idmap: bool, qdrant: QdrantStandin, tmp_path: Path
) -> None:
    path = sb.build_faiss(tmp_path / "i.faiss", COUNT, kind, idmap=idmap, dim=DIM)
    source = FaissSource(path, "docs", Path(f"{path}.jsonl"))
    try:
        report = migrate(source, qdrant, tmp_path)
    finally:
        source.close()
    assert report.ok, report.collections[0].problems
    assert report.collections[0].sampled == 100
    native = idmap or kind == "ivf"
    index_of = sb.index_of_idmap if native else int
    sb.assert_points_match(qdrant, "docs", COUNT, index_of, dim=DIM)
    distance = "Dot" if kind == "flat" else "Euclid"
    params = qdrant.call("GET", "/collections/docs")["config"]["params"]
    assert params["vectors"] == {"size": DIM, "distance": distance}


def langchain_store(path: Path, count: int) -> list[str]:
    from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings

    class Fixed(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            raise AssertionError("the test gives embeddings")

        def embed_query(self, text: str) -> list[float]:
            raise AssertionError("the test gives embeddings")

    texts = [f"text {i}" for i in range(count)]
    pairs = list(zip(texts, sb.vectors(0, count, DIM).tolist(), strict=True))
    store = FAISS.from_embeddings(pairs, Fixed(), metadatas=[sb.payload(i) for i in range(count)])
    store.save_local(str(path))
    return [store.index_to_docstore_id[i] for i in range(count)]


def test_a_langchain_directory_keeps_document_ids_and_payloads(cli: Cli, tmp_path: Path) -> None:
    ids = langchain_store(tmp_path / "lc", 300)
    proc = cli.run("migrate", "--from", f"faiss:{tmp_path / 'lc'}", "--collection", "kb")
    assert proc.returncode == 0, proc.stderr
    position = {doc_id: i for i, doc_id in enumerate(ids)}
    sb.assert_points_match(
        cli.standin,
        "kb",
        300,
        position.__getitem__,
        lambda i: {"page_content": f"text {i}", "metadata": sb.payload(i)},
        dim=DIM,
    )


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_index_pkl_is_refused_in_one_line_and_runs_nothing(
    cli: Cli, tmp_path: Path
) -> None:
    langchain_store(tmp_path / "lc", 20)
    marker = tmp_path / "pwned"
    (tmp_path / "lc" / "index.pkl").write_bytes(pickle.dumps((_Hostile(marker), {})))
    proc = cli.run("migrate", "--from", f"faiss:{tmp_path / 'lc'}")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "index.pkl: refused: not a plain LangChain docstore" in proc.stderr
    assert not marker.exists()
    assert cli.standin.client.get("/collections/lc").status_code == 404
    # The file really runs code when unpickled plainly: the refusal is what kept it out.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle,sys; pickle.load(open(sys.argv[1], 'rb'))",
            str(tmp_path / "lc" / "index.pkl"),
        ],
        check=True,
    )
    assert marker.exists()


def test_without_faiss_installed_it_says_what_to_install(cli: Cli, tmp_path: Path) -> None:
    path = sb.build_faiss(tmp_path / "i.faiss", 10, dim=DIM)
    code = (
        "import sys; sys.modules['faiss'] = None; from agent.cli import main; "
        "sys.argv[0] = 'ragops'; sys.exit(main())"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "--config",
            str(cli.config),
            "migrate",
            "--from",
            f"faiss:{path}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        "ragops: --from faiss: needs the faiss module; install it in the ragops checkout "
        "with: python3 -m venv .venv && .venv/bin/pip install -e '.[faiss]'\n"
    )


def test_a_metric_without_a_qdrant_distance_needs_distance(cli: Cli, tmp_path: Path) -> None:
    index = faiss.IndexFlat(DIM, faiss.METRIC_Linf)
    index.add(sb.vectors(0, 50, DIM))
    faiss.write_index(index, str(tmp_path / "linf.faiss"))
    proc = cli.run("migrate", "--from", f"faiss:{tmp_path / 'linf.faiss'}")
    assert proc.returncode == 1
    assert "linf.faiss: the distance cannot be known (metric type 3 has no Qdrant" in proc.stderr
    assert proc.stderr.strip().endswith("pass --distance")
    proc = cli.run("migrate", "--from", f"faiss:{tmp_path / 'linf.faiss'}", "--distance", "Euclid")
    assert proc.returncode == 0, proc.stderr
    assert cli.standin.count("linf") == 50


@pytest.mark.parametrize(
    "line,message",
    [
        ("{not json", "i.faiss.jsonl:2: not JSON"),
        ('{"id": 1}', 'i.faiss.jsonl:2: expected {"id": <faiss id>, "payload": {...}}'),
        ('{"id": -4, "payload": {}}', "key -4 is neither an unsigned integer nor a UUID"),
    ],
)
def test_a_bad_sidecar_line_is_named_in_one_line(
    cli: Cli, tmp_path: Path, line: str, message: str
) -> None:
    path = sb.build_faiss(tmp_path / "i.faiss", 10, dim=DIM)
    sidecar = Path(f"{path}.jsonl")
    lines = sidecar.read_text().splitlines()
    sidecar.write_text("\n".join([lines[0], line, *lines[2:]]) + "\n")
    proc = cli.run("migrate", "--from", f"faiss:{path}", "--payloads", str(sidecar))
    assert proc.returncode == 1
    assert message in proc.stderr and proc.stderr.count("\n") == 1
