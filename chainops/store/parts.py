"""Send a file in parts inside its transaction: its preconditions first, statements
one at a time, the data of `COPY … FROM stdin` through psycopg's COPY support; and
say where in the file a failure lies. Never commits or rolls back: the caller owns
the transaction.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from chainops.errors import one_line
from chainops.model import Check
from chainops.source.files import locate
from chainops.store.connection import Conn
from chainops.store.failure import VerifyFailure

if TYPE_CHECKING:  # pglast loads only for a file that needs parsing
    from chainops.source.statements import Statement

# The server's context for a bad data row: `COPY t, line 3, column b: "x"`.
_COPY_LINE = re.compile(r"\bCOPY [^,\n]+, line ([0-9]+)")


@dataclass
class Where:
    """What was being sent when the server failed, for placing the error.

    `base`: its offset in the file's text (None once the file is done, so an error
    is the ledger's); `placed`: the (line, column) when known without a position.
    """

    base: int | None = 0
    placed: tuple[int, int] | None = None


def has_copy(statements: Sequence[Statement]) -> bool:
    """Whether any statement is a COPY … FROM stdin with data to send."""
    return any(statement.copy is not None for statement in statements)


def send_all(
    conn: Conn, text: str, statements: Sequence[Statement], where: Where
) -> None:
    """Send every statement in order, each COPY with its data."""
    for statement in statements:
        send_one(conn, text, statement, where)


def send_one(conn: Conn, text: str, statement: Statement, where: Where) -> None:
    """Send one statement; a failure without a server position is placed at its
    start, or for a bad data row at that row's line."""
    where.base, where.placed = statement.offset, None
    try:
        if statement.copy is None:
            conn.execute(statement.text.encode("utf-8"))
            return
        data = text[statement.copy.data_start : statement.copy.data_end]
        with conn.cursor().copy(statement.text.encode("utf-8")) as copy:
            copy.write(data.encode("utf-8"))
    except psycopg.Error as err:
        if not err.diag.statement_position:
            where.placed = (statement.line, statement.column)
            row = _COPY_LINE.search(err.diag.context or "")
            if row is not None and statement.copy is not None:
                first = statement.line + statement.text.count("\n") + 1
                where.placed = (first + int(row.group(1)) - 1, 1)
        raise


_IDLE = psycopg.pq.TransactionStatus.IDLE
_OPEN = (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)


@contextmanager
def read_only(conn: Conn) -> Iterator[None]:
    """Nothing run inside can write: checks and verify scripts only look.

    Outside a transaction, a READ ONLY transaction of its own; inside the file's, a
    read-only savepoint rolled back after, so the file's transaction can write again.
    A check or verify script is not part of a block's hash as a change would be, so
    it must never make one.
    """
    nested = conn.info.transaction_status != _IDLE
    conn.execute(
        b"SAVEPOINT chainops_read_only; SET LOCAL transaction_read_only = on"
        if nested
        else b"BEGIN READ ONLY"
    )
    try:
        yield
    finally:  # not while a command is still in progress: an interrupt left it
        if not conn.broken and conn.info.transaction_status in _OPEN:
            conn.execute(
                b"ROLLBACK TO SAVEPOINT chainops_read_only;"
                b" RELEASE SAVEPOINT chainops_read_only"
                if nested
                else b"ROLLBACK"
            )


def first_failing_check(
    conn: Conn, checks: Sequence[Check], where: Where
) -> Check | None:
    """Evaluate each precondition in order, read-only; the first whose first value
    is not true (false, NULL or no row at all), or None when all hold."""
    with read_only(conn):
        return _first_failing(conn, checks, where)


def _first_failing(conn: Conn, checks: Sequence[Check], where: Where) -> Check | None:
    for check in checks:
        where.base, where.placed = check.offset, None
        try:
            cursor = conn.execute(check.query.encode("utf-8"))
            row = cursor.fetchone() if cursor.description else None
        except psycopg.Error as err:
            if not err.diag.statement_position:
                where.placed = (check.line, 1)
            raise
        if row is None or row[0] is not True:
            return check
    return None


def run_verify(conn: Conn, text: str, statements: Sequence[Statement]) -> None:
    """Run a verify script's statements, read-only; raise VerifyFailure at the first
    that fails (a write included) or returns a row whose first value is false."""
    with read_only(conn):
        _run_verify(conn, text, statements)


def _run_verify(conn: Conn, text: str, statements: Sequence[Statement]) -> None:
    for statement in statements:
        try:
            cursor = conn.execute(statement.text.encode("utf-8"))
            rows = cursor.fetchall() if cursor.description else []
        except psycopg.Error as err:
            position = err.diag.statement_position
            line, column = (statement.line, statement.column)
            if position:
                line, column = locate(text, statement.offset + int(position) - 1)
            message = err.diag.message_primary or str(err).strip()
            raise VerifyFailure(line, column, message, err) from err
        if any(row and row[0] is False for row in rows):
            query = one_line(statement.text)
            query = query if len(query) <= 80 else query[:77] + "..."
            raise VerifyFailure(
                statement.line, statement.column, f"returned false: {query}", None
            )
