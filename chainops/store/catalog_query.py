"""Names a fleet reads from a database: the tenant schemas a query lists."""

from __future__ import annotations

from chainops.config import describe_database
from chainops.store.connection import session


def schema_names(conninfo: str, query: str) -> list[str]:
    """The first column of `query`'s rows, as text, in order."""
    with session(conninfo, describe_database(conninfo), "fleet", "public") as conn:
        return [str(row[0]) for row in conn.execute(query.encode()).fetchall()]
