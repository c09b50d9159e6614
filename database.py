"""The database interface: one method per `queries/<name>.sql`, on PostgreSQL or in memory."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from memdb import MemoryDatabase
    from pgdb import PostgresDatabase

    Database = MemoryDatabase | PostgresDatabase
else:
    # Both backends import this module, so the union exists for the type checker only.
    Database = object

QUERIES = Path(__file__).resolve().parent / "queries"
HEADER = re.compile(r"^-- name: (\w+) :(one|many|exec)\n")

Row = dict[str, Any]
Kind = Literal["one", "many", "exec"]


@dataclass(frozen=True)
class Query:
    name: str
    kind: Kind
    sql: str


def load_queries(folder: Path = QUERIES) -> dict[str, Query]:
    queries = {}
    for path in sorted(folder.glob("*.sql")):
        text = path.read_text()
        match = HEADER.match(text)
        if match is None or match.group(1) != path.stem:
            raise ValueError(f"{path}: line 1 must be `-- name: {path.stem} :one|:many|:exec`")
        queries[path.stem] = Query(path.stem, match.group(2), text)  # type: ignore[arg-type]
    return queries


class UniqueViolation(Exception):
    """A write would break a unique key (both backends raise this)."""


class ForeignKeyViolation(Exception):
    """A write names a row that does not exist (both backends raise this)."""


class Unavailable(Exception):
    """The database cannot be reached."""


async def open_database(url: str | None) -> Database:
    """PostgreSQL when a DATABASE_URL is given, else the in-memory twin."""
    if url:
        from pgdb import PostgresDatabase

        return await PostgresDatabase.connect(url)
    from memdb import MemoryDatabase

    return MemoryDatabase()
