"""The run-wide advisory lock on one ledger, as a context manager.

migrate, baseline and reset take the same lock, so none of them runs beside another.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import psycopg

from chainops.errors import LockTimeout
from chainops.events import LockHolder
from chainops.store.connection import Conn
from chainops.store.ledger import TABLE

POLL_SECONDS = 0.1
_IDLE = psycopg.pq.TransactionStatus.IDLE


def lock_key(dbname: str, schema: str, table: str) -> int:
    """A stable signed 64-bit advisory-lock key for one ledger in one database."""
    digest = hashlib.sha256(f"chainops\0{dbname}\0{schema}\0{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def find_holder(conn: Conn, key: int) -> LockHolder | None:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        # Read as UTC text: the database's DateStyle must not change the parse.
        "SELECT a.pid, a.application_name,"
        " to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        " AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid"
        " AND l.database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())",
        (unsigned >> 32, unsigned & 0xFFFFFFFF),
    ).fetchone()
    if row is None:
        return None
    pid, app, since = row
    return LockHolder(
        int(str(pid)),
        str(app or "?"),
        datetime.fromisoformat(str(since)).replace(tzinfo=timezone.utc)
        if since
        else None,
    )


def ledger_holder(conn: Conn, schema: str) -> LockHolder | None:
    """Who holds the ledger's lock now, if anyone."""
    return find_holder(conn, lock_key(conn.info.dbname, schema, TABLE))


def acquire_lock(
    conn: Conn,
    key: int,
    timeout: float,
    on_wait: Callable[[LockHolder | None], None] | None = None,
) -> None:
    """Take the session advisory lock by polling.

    Never block in pg_advisory_lock: a blocked waiter holds a snapshot that makes
    another migrator's CREATE INDEX CONCURRENTLY wait for it, a deadlock.
    """
    deadline = time.monotonic() + timeout
    told = False
    while True:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
        if got and got[0]:
            return
        holder = find_holder(conn, key)
        if not told and on_wait is not None:
            on_wait(holder)
            told = True
        if time.monotonic() >= deadline:
            who = (
                f"pid {holder.pid} ({holder.application_name})"
                if holder
                else "another run"
            )
            raise LockTimeout(
                f"the ledger is locked by {who}; gave up after {timeout:g} s, wait "
                "for it to finish or raise the lock timeout (--lock-timeout, "
                "CHAINOPS_LOCK_TIMEOUT)"
            )
        time.sleep(POLL_SECONDS)


def release_lock(conn: Conn, key: int) -> None:
    """Release the run's lock, unless an interrupt left a command in progress.

    Then the query would fail and hide the interrupt; closing the connection, as
    every caller does next, releases the session lock anyway.
    """
    if not conn.closed and conn.info.transaction_status == _IDLE:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextmanager
def ledger_lock(
    conn: Conn,
    schema: str,
    timeout: float,
    on_wait: Callable[[LockHolder | None], None] | None = None,
) -> Iterator[None]:
    """Hold the advisory lock of the ledger in `schema` of this database."""
    key = lock_key(conn.info.dbname, schema, TABLE)
    acquire_lock(conn, key, timeout, on_wait)
    try:
        yield
    finally:
        if not conn.broken:
            release_lock(conn, key)
