"""Connections and the run-wide advisory lock.

Turns psycopg's connection failures into chainops errors that name host, port and
database but never the password.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from chainops.config import describe_database, password_of, redact
from chainops.errors import CannotConnect, LockTimeout

POLL_SECONDS = 0.1
_IDLE = psycopg.pq.TransactionStatus.IDLE

# Notice a dead peer in bounded time (about a minute) instead of hanging forever.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def connect(
    conninfo: str, purpose: str = "migrate"
) -> psycopg.Connection[tuple[object, ...]]:
    """Open an autocommit connection; each migration opens its own transaction."""
    app = f"chainops {purpose} {socket.gethostname()}:{os.getpid()}"[:63]
    try:
        conn = psycopg.connect(
            conninfo,
            autocommit=True,
            application_name=app,
            connect_timeout=int(os.environ.get("PGCONNECT_TIMEOUT", "10")),
            **_KEEPALIVES,  # type: ignore[arg-type]
        )
    except psycopg.ProgrammingError as err:  # malformed conninfo
        raise CannotConnect(
            f"DATABASE_URL is not a valid connection string ({_clean(err, conninfo)}); "
            "use postgresql://user:password@host:port/dbname"
        ) from err
    except psycopg.OperationalError as err:
        raise CannotConnect(
            f"cannot connect to {describe_database(conninfo)}: "
            f"{_clean(err, conninfo)}; "
            "check DATABASE_URL in the environment or .env"
        ) from err
    if conn.info.server_version >= 140000:
        # A killed migrator's backend would otherwise run its statement to the end
        # and hold the ledger lock meanwhile; let the server notice a vanished client.
        conn.execute("SET client_connection_check_interval = '1s'")
    return conn


def connection_lost(where: str, purpose: str, err: Exception) -> CannotConnect:
    """The error for a connection that broke mid-command, outside any migration."""
    return CannotConnect(
        f"the connection to {where} was lost ({_clean(err, '')}); each migration "
        f"commits with its block, run {purpose} again to continue"
    )


def _clean(err: Exception, conninfo: str) -> str:
    """The last meaningful line of a libpq error, with any password removed."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    text = lines[-1] if lines else type(err).__name__
    text = text.removeprefix("FATAL:").strip()
    return redact(text, password_of(conninfo)).rstrip(".")


def lock_key(dbname: str, schema: str, table: str) -> int:
    """A stable signed 64-bit advisory-lock key for one ledger in one database."""
    digest = hashlib.sha256(f"chainops\0{dbname}\0{schema}\0{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class LockHolder:
    pid: int
    application_name: str
    since: datetime | None


def find_holder(
    conn: psycopg.Connection[tuple[object, ...]], key: int
) -> LockHolder | None:
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = conn.execute(
        "SELECT a.pid, a.application_name, a.backend_start"
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
        int(str(pid)), str(app or "?"), since if isinstance(since, datetime) else None
    )


def acquire_lock(
    conn: psycopg.Connection[tuple[object, ...]],
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


def release_lock(conn: psycopg.Connection[tuple[object, ...]], key: int) -> None:
    """Release the run's lock, unless an interrupt left a command in progress.

    Then the query would fail and hide the interrupt; closing the connection, as
    every caller does next, releases the session lock anyway.
    """
    if not conn.closed and conn.info.transaction_status == _IDLE:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def create_database(admin: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin: psycopg.Connection[tuple[object, ...]], name: str) -> None:
    admin.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )
