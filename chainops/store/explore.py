"""Read-only queries for the explorer: every history row (failed attempts too) and
the schema snapshots stored with blocks. Never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from chainops.store.connection import Conn
from chainops.store.ledger import HISTORY, TABLE

# Times as text in UTC, as store.ledger reads them: DateStyle and TimeZone never matter.
_UTC = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
_HISTORY = (
    "SELECT migration_number, path, hash, outcome, "
    + _UTC.format("started_at")
    + ", execution_time_ms, error_message, applied_by, client_host FROM {history}"
    " ORDER BY id"
)
_PROGRESS = (
    "SELECT migration_number, coalesce(statements_done, 0), statements_total"
    " FROM {ledger} WHERE status <> 'completed'"
)
_SNAPSHOT_HEIGHTS = (
    "SELECT height FROM {ledger} WHERE status = 'completed'"
    " AND schema_snapshot IS NOT NULL ORDER BY height"
)
_SNAPSHOTS = (
    "SELECT height, schema_snapshot FROM {ledger} WHERE status = 'completed'"
    " AND height = ANY({heights})"
)


@dataclass(frozen=True)
class HistoryEntry:
    """One row of the append-only history: an attempt and how it ended."""

    number: int
    path: str
    content_hash: str
    outcome: str  # an Outcome
    started_at: datetime
    duration_ms: int | None
    error: str | None
    applied_by: str
    client_host: str


def _exists(conn: Conn, schema: str, table: str) -> bool:
    name = sql.Identifier(schema, table).as_string(conn)
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def read_history(conn: Conn, schema: str) -> tuple[HistoryEntry, ...]:
    """Every history row in the order it was written; none before the ledger exists."""
    if not _exists(conn, schema, HISTORY):
        return ()
    query = sql.SQL(_HISTORY).format(history=sql.Identifier(schema, HISTORY))
    return tuple(
        HistoryEntry(
            int(str(n)),
            str(p),
            str(h),
            str(o),
            datetime.fromisoformat(str(at)),
            None if ms is None else int(str(ms)),
            None if err is None else str(err),
            str(by),
            str(host),
        )
        for n, p, h, o, at, ms, err, by, host in conn.execute(query)
    )


def read_progress(conn: Conn, schema: str) -> dict[int, tuple[int, int | None]]:
    """Statements done and in all of each failed or stopped attempt, by number."""
    if not _exists(conn, schema, TABLE):
        return {}
    query = sql.SQL(_PROGRESS).format(ledger=sql.Identifier(schema, TABLE))
    return {
        int(str(n)): (int(str(done)), None if total is None else int(str(total)))
        for n, done, total in conn.execute(query)
    }


def read_snapshot_heights(conn: Conn, schema: str) -> tuple[int, ...]:
    """The heights of the blocks that store a schema snapshot (each run's newest)."""
    if not _exists(conn, schema, TABLE):
        return ()
    query = sql.SQL(_SNAPSHOT_HEIGHTS).format(ledger=sql.Identifier(schema, TABLE))
    return tuple(int(str(row[0])) for row in conn.execute(query))


def read_snapshots(conn: Conn, schema: str, heights: list[int]) -> dict[int, bytes]:
    """The compressed snapshots stored with the blocks at `heights`."""
    query = sql.SQL(_SNAPSHOTS).format(
        ledger=sql.Identifier(schema, TABLE), heights=sql.Literal(heights)
    )
    rows = conn.execute(query).fetchall()
    return {int(str(h)): bytes(blob) for h, blob in rows}  # type: ignore[call-overload]
