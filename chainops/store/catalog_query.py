"""What a fleet reads from a database: tenant schemas, or the targets a catalog
table lists."""

from __future__ import annotations

from chainops.config import describe_database
from chainops.store.connection import session


def rows(conninfo: str, query: str) -> list[tuple[str, ...]]:
    """`query`'s rows, every value as text, in order."""
    with session(conninfo, describe_database(conninfo), "fleet", "public") as conn:
        found = conn.execute(query.encode()).fetchall()
    return [tuple(str(value) for value in row) for row in found]
