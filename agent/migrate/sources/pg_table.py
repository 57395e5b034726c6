"""A pgvector table (``psycopg`` 3) as a migration source: ``--from pgvector:postgresql://...``.

Rows are read in id order through a server-side cursor (``WHERE id > last ORDER BY id``), so
memory is bounded by the batch and a batch's cursor is its last id; the id column (integer or
UUID) becomes the point id, so Postgres rows and Qdrant points stay linked. The password is
read from a file (``--password-file``, or systemd's credential ``pgvector-password``), never
from the URL or the command line. The distance
is the opclass of a pgvector index on the column (``vector_cosine_ops`` ...), or ``--distance``.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydantic_core

from agent.config.credentials import read_credential
from agent.migrate.sources.base import (
    Cursor,
    JsonPoint,
    PointBatch,
    SourceError,
    pick_distance,
    point_id,
    require,
    vectors_config,
)

_OPCLASS_DISTANCE = {
    "vector_cosine_ops": "Cosine",
    "vector_ip_ops": "Dot",
    "vector_l2_ops": "Euclid",
    "vector_l1_ops": "Manhattan",
}
_ID_TYPES = ("smallint", "integer", "bigint", "uuid", "text", "character varying")


@dataclass(frozen=True)
class PgOptions:
    url: str
    table: str
    id_column: str = "id"
    vector_column: str = "embedding"
    payload_columns: tuple[str, ...] = ()  # empty: every other column
    password_file: Path | None = None
    distance: str | None = None
    name: str | None = None  # the target collection [default: the table's name]


class PgvectorSource:
    def __init__(self, options: PgOptions) -> None:
        psycopg = require("psycopg", "pgvector", "--from pgvector:")
        self.options = options
        self._sql = psycopg.sql
        parts = urlsplit(options.url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise SourceError(f"{options.url!r}: expected pgvector:postgresql://USER@HOST/DB")
        if parts.password:
            raise SourceError(
                "the pgvector URL holds a password, which would show in the process list; "
                "remove it and pass --password-file FILE"
            )
        self._where = f"{parts.hostname or 'localhost'}/{parts.path.lstrip('/')}"
        kwargs: dict[str, Any] = {"autocommit": False}
        password = read_credential(
            "pgvector-password",
            str(options.password_file) if options.password_file else None,
            "--password-file",
        )
        if password is not None:
            kwargs["password"] = password
        try:
            self.conn = psycopg.connect(options.url, **kwargs)
        except psycopg.Error as exc:
            raise SourceError(f"{self._where}: cannot connect: {_first_line(exc)}") from None
        self._errors = psycopg.Error
        self.name = options.name or options.table.split(".")[-1]
        self.table = self._sql.Identifier(*options.table.split("."))
        self._describe()

    @property
    def label(self) -> str:
        return f"pgvector:{self.options.url}#{self.options.table}"

    def _query(self, query: Any, params: Any = None) -> list[Any]:
        try:
            with self.conn.cursor() as cur:
                cur.execute(query, params)
                rows: list[Any] = cur.fetchall()
            self.conn.commit()
            return rows
        except self._errors as exc:
            self.conn.rollback()
            raise SourceError(f"{self._where}: {self.options.table}: {_first_line(exc)}") from None

    def _describe(self) -> None:
        opts = self.options
        regclass = self._query("SELECT to_regclass(%s)::oid", (opts.table,))[0][0]
        if regclass is None:
            raise SourceError(f"{self._where}: no table {opts.table!r}")
        columns = {
            name: (kind, typmod)
            for name, kind, typmod in self._query(
                "SELECT attname, format_type(atttypid, NULL), atttypmod FROM pg_attribute "
                "WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (regclass,),
            )
        }
        known = ", ".join(columns)
        for column in (opts.id_column, opts.vector_column, *opts.payload_columns):
            if column not in columns:
                raise SourceError(
                    f"{self._where}: table {opts.table!r} has no column {column!r} "
                    f"(columns: {known})"
                )
        if columns[opts.vector_column][0] != "vector":
            raise SourceError(
                f"{self._where}: column {opts.table}.{opts.vector_column} is "
                f"{columns[opts.vector_column][0]}, not a pgvector vector"
            )
        if columns[opts.id_column][0] not in _ID_TYPES:
            raise SourceError(
                f"{self._where}: id column {opts.id_column} is {columns[opts.id_column][0]}; "
                "Qdrant point ids are unsigned integers or UUIDs"
            )
        skip = {opts.id_column, opts.vector_column}
        self.payload_columns = list(opts.payload_columns) or [c for c in columns if c not in skip]
        dim = int(columns[opts.vector_column][1])
        if dim <= 0:
            query = self._sql.SQL("SELECT vector_dims({}) FROM {} LIMIT 1").format(
                self._sql.Identifier(opts.vector_column), self.table
            )
            found = self._query(query)
            if not found:
                raise SourceError(
                    f"{self._where}: {opts.table} is empty and its vector column "
                    "has no declared dimension"
                )
            dim = int(found[0][0])
        self.dim = dim
        opclasses = self._query(
            "SELECT DISTINCT o.opcname FROM pg_index i JOIN pg_opclass o ON o.oid = "
            "ANY(i.indclass) JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = "
            "ANY(i.indkey) WHERE i.indrelid = %s AND a.attname = %s",
            (regclass, opts.vector_column),
        )
        found_distances = {_OPCLASS_DISTANCE[o] for (o,) in opclasses if o in _OPCLASS_DISTANCE}
        known_distance = found_distances.pop() if len(found_distances) == 1 else None
        self.distance = pick_distance(
            known_distance,
            opts.distance,
            f"{self._where}: {opts.table}.{opts.vector_column}",
            "no single pgvector index (vector_cosine_ops, vector_ip_ops, vector_l2_ops) on it",
        )

    def names(self) -> list[str]:
        return [self.name]

    def _check(self, name: str) -> None:
        if name != self.name:
            raise SourceError(
                f"{self._where}: --table {self.options.table} is {self.name!r}, not {name!r}"
            )

    def config(self, name: str) -> dict[str, Any]:
        self._check(name)
        return vectors_config(self.dim, self.distance)

    def fingerprint(self, name: str) -> dict[str, int]:
        return {"rows": self.count(name)}

    def count(self, name: str) -> int:
        self._check(name)
        query = self._sql.SQL("SELECT count(*) FROM {}").format(self.table)
        return int(self._query(query)[0][0])

    def _select(self, tail: str) -> Any:
        sql = self._sql
        columns = [sql.Identifier(self.options.id_column)]
        columns.append(sql.SQL("{}::text").format(sql.Identifier(self.options.vector_column)))
        columns += [sql.Identifier(c) for c in self.payload_columns]
        # Only identifiers are formatted in, quoted by psycopg; values go as parameters.
        return sql.SQL("SELECT {columns} FROM {table} " + tail).format(  # noqa: S608
            columns=sql.SQL(", ").join(columns),
            table=self.table,
            id=sql.Identifier(self.options.id_column),
        )

    def batches(
        self, name: str, batch_size: int, after_rowid: Cursor = None
    ) -> Iterator[PointBatch]:
        self._check(name)
        if after_rowid is None:
            query, params = self._select("ORDER BY {id}"), None
        else:
            query, params = self._select("WHERE {id} > %s ORDER BY {id}"), (after_rowid,)
        try:
            # A named (server-side) cursor: Postgres holds the result, we fetch a batch.
            with self.conn.cursor(name="ragops_migrate") as cur:
                cur.itersize = batch_size
                cur.execute(query, params)
                while rows := cur.fetchmany(batch_size):
                    yield PointBatch(_cursor_of(rows[-1][0]), [self._point(r) for r in rows])
            self.conn.commit()
        except self._errors as exc:
            self.conn.rollback()
            raise SourceError(f"{self._where}: {self.options.table}: {_first_line(exc)}") from None

    def sample(self, name: str, size: int) -> list[JsonPoint]:
        self._check(name)
        if size <= 0:
            return []
        return [
            self._point(r) for r in self._query(self._select("ORDER BY random() LIMIT %s"), (size,))
        ]

    def _point(self, row: tuple[Any, ...]) -> JsonPoint:
        where = f"{self._where}: {self.options.table}.{self.options.id_column}"
        return {
            "id": point_id(row[0], where),
            # pgvector's text form is a JSON array; pydantic-core parses it in Rust, 3x the
            # stdlib's speed (a third of a 100k read was json.loads), to the same floats.
            "vector": pydantic_core.from_json(row[1]),
            "payload": {
                column: _json(value)
                for column, value in zip(self.payload_columns, row[2:], strict=True)
            },
        }

    def close(self) -> None:
        self.conn.close()


def _cursor_of(value: Any) -> int | str:
    return str(value) if isinstance(value, uuid.UUID) else value


def _json(value: Any) -> Any:  # noqa: PLR0911 (one return per Postgres type)
    """Postgres values -> JSON payload values (psycopg loads numeric as Decimal, etc.)."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
