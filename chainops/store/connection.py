"""Connections, and the one translation of psycopg's errors into chainops errors.

Messages name host, port and database but never the password.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from chainops.config import describe_database, password_of, redact
from chainops.errors import (
    CannotConnect,
    ChainopsError,
    DatabaseAccessError,
    PermissionDenied,
    one_line,
)

Conn = psycopg.Connection[tuple[object, ...]]

# Notice a dead peer in bounded time (about a minute) instead of hanging forever.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


URL_ADVICE = "check DATABASE_URL in the environment or .env"
NOT_A_URL = "DATABASE_URL is not a valid connection string"


def connect(conninfo: str, purpose: str = "migrate") -> Conn:
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
            f"{NOT_A_URL} ({_clean(err, conninfo)}); "
            "use postgresql://user:password@host:port/dbname"
        ) from err
    except psycopg.OperationalError as err:
        raise CannotConnect(
            f"cannot connect to {describe_database(conninfo)}: "
            f"{_clean(err, conninfo)}; " + URL_ADVICE
        ) from err
    # Files may DEALLOCATE ALL; chainops prepares nothing that this could break.
    conn.prepare_threshold = None
    conn.execute(session_reset(conn))
    return conn


_RESET = (
    b"RESET ALL; SET SESSION AUTHORIZATION DEFAULT; DISCARD TEMP; DISCARD SEQUENCES;"
    b" DISCARD PLANS; DEALLOCATE ALL; CLOSE ALL; UNLISTEN *;"
)


def session_reset(conn: Conn) -> bytes:
    """SQL that puts the session back as a new connection has it, keeping the run's
    advisory lock (DISCARD ALL would drop it): every file starts from the same
    clean state, as under `psql -f`, whatever the file before it set."""
    if conn.info.server_version < 140000:
        return _RESET
    # A killed migrator's backend would otherwise run its statement to the end and
    # hold the ledger lock meanwhile; let the server notice a vanished client.
    return _RESET + b" SET client_connection_check_interval = '1s';"


def is_idle(conn: Conn) -> bool:
    """Open, and neither in a transaction nor in the middle of a command."""
    return (
        not conn.broken
        and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    )


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


def create_database(admin: Conn, name: str) -> None:
    admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(admin: Conn, name: str) -> None:
    admin.execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


# SQLSTATEs of refusals a user fixes with a grant or a setting, not a file.
_INSUFFICIENT_PRIVILEGE = "42501"
_READ_ONLY = "25006"


def translate(
    err: psycopg.Error, where: str, purpose: str, user: str, schema: str
) -> ChainopsError:
    """The one chainops error for a server refusal outside a migration.

    A migration's own failure is placed in its file by `store.session` instead.
    """
    sqlstate = err.sqlstate or ""
    message = one_line(err.diag.message_primary or str(err) or type(err).__name__)
    if sqlstate == _INSUFFICIENT_PRIVILEGE:
        return PermissionDenied(
            f"{where}: the role {user} lacks a privilege that {purpose} needs "
            f"({message}); grant it as the schema's owner, for example GRANT USAGE, "
            f"CREATE ON SCHEMA {schema} TO {user} (docs/grants.sql sets up every role)"
        )
    if sqlstate == _READ_ONLY:
        return PermissionDenied(
            f"{where} is read-only ({message}); {purpose} writes the ledger, so point "
            "DATABASE_URL at a writable primary, not a replica"
        )
    return DatabaseAccessError(
        f"{where}: the server refused {purpose}: {message}"
        + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
        + "; check the ledger tables and the role's grants (docs/grants.sql)"
    )


@contextmanager
def session(conninfo: str, where: str, purpose: str, schema: str) -> Iterator[Conn]:
    """A connection for one command; server refusals leave it as chainops errors.

    `schema` is the ledger schema, named in the advice for a missing privilege.
    """
    conn = connect(conninfo, purpose)
    try:
        yield conn
    except psycopg.Error as err:
        if conn.broken:
            raise connection_lost(where, purpose, err) from err
        raise translate(err, where, purpose, conn.info.user, schema) from err
    finally:
        conn.close()
