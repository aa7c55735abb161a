"""What a failed or interrupted migration leaves behind, in the user's words: the
file's line and column, the hint, and what to do next.
"""

from __future__ import annotations

import psycopg

from chainops.errors import (
    ROLLED_BACK,
    ChainopsError,
    Interrupted,
    LedgerTampered,
    MigrationFailed,
)
from chainops.model import MigrationFile, Mode, Status
from chainops.source.files import locate
from chainops.store import ledger
from chainops.store.connection import Conn
from chainops.store.writer import READ_BACK_FAILED

_LOCK_NOT_AVAILABLE = "55P03"
_UNDEFINED_TABLE = "42P01"
_IDLE = psycopg.pq.TransactionStatus.IDLE


def locate_error(
    text: str, statement_position: str | None, base: int | None, mode: str
) -> tuple[int | None, int | None]:
    """The 1-based line and column of a server error in the file, if it can be placed.

    `base` is the file's offset in what was sent (negative when a prefix went
    first), or None when the error came from the ledger write, not the file.
    """
    if base is None:
        return None, None
    if statement_position:
        position = base + int(statement_position) - 1
        if 0 <= position < len(text):
            return locate(text, position)
        return None, None
    if mode != Mode.TRANSACTION:  # statement by statement: `base` is its start
        return locate(text, base)
    return None, None


def ledger_write_failed(err: psycopg.Error, file: MigrationFile) -> ChainopsError:
    """The error for a file whose block could not be written or read back.

    The file ran; its block did not land. A vanished table or a swallowed write is
    tampering (the file or someone else dropped the table, or added a rule,
    trigger or policy to it); anything else is a failure of the file's run.
    """
    if err.sqlstate == READ_BACK_FAILED:
        return LedgerTampered(
            f"the ledger: the block for {file.path} was not stored as written (a "
            "rule, trigger or policy on blockchain_migrations swallowed or changed "
            "it); the file's transaction was rolled back, remove what guards the "
            "ledger and run migrate again"
        )
    if err.sqlstate == _UNDEFINED_TABLE:
        return LedgerTampered(
            f"the ledger: a ledger table disappeared while {file.path} was applied "
            "(the file committed and dropped or renamed it); what the file did up "
            "to that point is in place and unrecorded, restore the ledger from a "
            "backup"
        )
    message = err.diag.message_primary or str(err).strip()
    return MigrationFailed(
        file.path,
        f"recording its block failed: {message}",
        sqlstate=err.sqlstate,
        advice=advice(Mode.TRANSACTION, 0, broken=False),
    )


def place_by_statement(
    conn: Conn, file: MigrationFile, prefix: bytes, sqlstate: str | None
) -> tuple[int, int] | None:
    """Where in the file a transactional failure without a position happened.

    The server does not say which statement of a multi-statement message failed, so
    only after a failure the file is split and sent again one statement at a time in
    a transaction that is always rolled back; the statement that fails with the same
    SQLSTATE is the one. None when the file cannot be split or the error moved.
    """
    from chainops.source import statements  # pglast, only after a failure

    try:
        found = statements.plan_migration(file.text, file.path).statements
    except ChainopsError:
        return None
    if len(found) <= 1:
        return (found[0].line, found[0].column) if found else None
    conn.execute(b"BEGIN;" + prefix)
    try:
        for statement in found:
            try:
                conn.execute(statement.text.encode("utf-8"))
            except psycopg.Error as err:
                if err.diag.sqlstate != sqlstate:
                    return None
                position = err.diag.statement_position
                offset = statement.offset + (int(position) - 1 if position else 0)
                return locate(file.text, offset)
    finally:
        if not conn.broken and conn.info.transaction_status != _IDLE:
            conn.execute("ROLLBACK")
    return None


class VerifyFailure(Exception):  # noqa: N818 - caught inside store, never shown
    """A verify script returned false or failed; `error` is the server's, if any."""

    def __init__(
        self, line: int, column: int, message: str, error: psycopg.Error | None
    ) -> None:
        super().__init__(message)
        self.line, self.column, self.message, self.error = line, column, message, error

    def errors(
        self, file: MigrationFile, script: str, broken: bool
    ) -> tuple[MigrationFailed, MigrationFailed]:
        """The user's error, placed in the script, and the failed attempt's, which
        names the script since the ledger row is the migration's."""
        diag = self.error.diag if self.error is not None else None
        fields = {
            "line": self.line,
            "column": self.column,
            "sqlstate": diag.sqlstate if diag else None,
            "hint": hint_for(diag.sqlstate, diag.message_hint) if diag else None,
            "detail": diag.message_detail if diag else None,
            "advice": advice(Mode.TRANSACTION, 0, broken)
            if broken
            else f"{file.path} was rolled back; fix it or its verify script and run "
            "inv migrate again",
        }
        return (
            MigrationFailed(script, self.message, **fields),  # type: ignore[arg-type]
            MigrationFailed(
                file.path,
                f"verify script {script}: {self.message}",
                **fields,  # type: ignore[arg-type]
            ),
        )


def hint_for(sqlstate: str | None, hint: str | None) -> str | None:
    """The server's hint, or chainops' own where it knows better."""
    if sqlstate == _LOCK_NOT_AVAILABLE:
        return (
            "another session holds a lock this migration needs; retry when it is "
            "idle, or allow a longer wait with a line "
            "'-- chainops:lock-timeout=30s' in the file"
        )
    return hint


def advice(mode: str, done: int, broken: bool) -> str:
    """What to do after a failure, by what is in place."""
    if broken:
        return (
            "the connection was lost and the server rolled back the open "
            "transaction; run inv migrate again"
        )
    if mode == Mode.TRANSACTION:
        return ROLLED_BACK
    if done:
        return (
            f"statements 1-{done} are in place; fix the cause and run "
            f"inv migrate --resume to continue at statement {done + 1}"
        )
    return "no statement is in place; fix the file and run inv migrate again"


def interrupted(
    conn: Conn, schema: str, file: MigrationFile, transactional: bool
) -> Interrupted:
    """Say what an interrupt left behind as the ledger records it.

    The server may have committed just before the cancel arrived, so the ledger,
    not the moment of the signal, tells what is in place.
    """
    try:
        found = ledger.read_progress(conn, schema, file.number)
    except (psycopg.Error, KeyboardInterrupt):
        return Interrupted(
            f"interrupted while applying {file.path}; what is in place could not "
            "be read back, run inv migrate.status to see"
        )
    if found is None or (transactional and found[0] != Status.COMPLETED):
        return Interrupted(
            f"interrupted while applying {file.path}; it was rolled back"
        )
    status, done = found
    if status == Status.COMPLETED:
        return Interrupted(
            f"interrupted just after {file.path} was applied; "
            "run inv migrate again to apply the rest"
        )
    in_place = f"statements 1-{done} are" if done else "nothing is"
    return Interrupted(
        f"interrupted while applying {file.path}; {in_place} in place, "
        "run inv migrate --resume to continue"
    )
