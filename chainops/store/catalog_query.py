"""What a fleet reads from a database: tenant schemas, or the targets a catalog
table lists."""

from __future__ import annotations

from chainops.config import describe_database
from chainops.store.connection import session


def rows(conninfo: str, query: str) -> list[tuple[str, ...]]:
    """`query`'s rows, every value as text (NULL as ""), in order."""
    with session(conninfo, describe_database(conninfo), "fleet", "public") as conn:
        found = conn.execute(query.encode()).fetchall()
    return [tuple("" if v is None else str(v) for v in row) for row in found]
