"""Milvus Lite's own cost of a read, for scripts/bench/migrate_sources_bench.py to time: open
the database, load the collection, page through it with the query iterator (all fields, the
page size ragops uses), keep nothing. No ragops code and no upsert: what is left of a
``ragops migrate --from milvus:`` peak RSS above this run's is ragops's.

    milvus_floor.py PATH.db COLLECTION
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow  # type: ignore[import-untyped]
from pymilvus import MilvusClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from agent.migrate.sources.milvus_db import PAGE_ROWS


def main() -> None:
    path, name = sys.argv[1:]
    # The same allocator choice as ragops's Milvus source, so the two compare.
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    client = MilvusClient(path)
    client.load_collection(name)
    iterator = client.query_iterator(name, batch_size=PAGE_ROWS, output_fields=["*"])
    rows = 0
    while page := iterator.next():
        rows += len(page)
    print(rows)


if __name__ == "__main__":
    main()
