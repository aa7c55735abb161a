"""Send one migration file and its block to the server: in one transaction, or one
statement at a time with recorded progress when PostgreSQL refuses a transaction
block. A server error becomes a MigrationFailed placed at the file's line.

Called by `execute` under the advisory lock; never prints.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from chainops.errors import (
    ChainopsError,
    CheckFailed,
    Interrupted,
    MigrationFailed,
    MigrationFileError,
    one_line,
    server_error,
)
from chainops.events import Applied
from chainops.model import (
    Attempt,
    Block,
    Directives,
    MigrationFile,
    Mode,
    Outcome,
    Script,
    Status,
)
from chainops.store import failure, parts
from chainops.store.connection import Conn, is_idle, session_reset
from chainops.store.recorder import Recorder

if TYPE_CHECKING:  # pglast loads only for a file that needs parsing
    from chainops.source.statements import Statement

_IDLE = psycopg.pq.TransactionStatus.IDLE
_OPEN = (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR)
_ONE_MESSAGE_LIMIT = 1 << 20  # bytes; a bigger file is sent as a message of its own
# Every file but a run's last commits without waiting for its WAL flush; the last
# one's flush covers them all (WAL is written in order). Atomicity is unchanged: a
# server crash mid-run can lose only a suffix of whole files with their blocks.
_DEFER_FLUSH = b"SET LOCAL synchronous_commit = off;\n"


def progress_hash(texts: Sequence[str]) -> str:
    """Identify the statements in place, so --resume continues the same file."""
    return hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()


class Applier(Recorder):
    """Applies files on one connection on behalf of one user and host."""

    def __init__(
        self,
        conn: Conn,
        schema: str,
        user: str,
        host: str,
        lock_timeout: str,
        statement_timeout: str,
        mark: str | None = None,
        scope: str | None = None,
    ) -> None:
        """`mark`: the environment to record with the run's first block, if the
        ledger's marker says otherwise; `scope`: the one schema fingerprinted."""
        super().__init__(conn, schema, user, host, mark, scope)
        self.lock_timeout, self.statement_timeout = lock_timeout, statement_timeout
        self._default_timeouts = self._timeouts(Directives(), "LOCAL")
        self._reset = session_reset(conn)

    def _timeouts(self, directives: Directives, scope: str) -> bytes:
        """SET statements for the run's timeouts, or a file's own directives."""
        lock = directives.lock_timeout or self.lock_timeout
        statement = directives.statement_timeout or self.statement_timeout
        query = "SET {scope} lock_timeout = {}; SET {scope} statement_timeout = {};\n"
        return (
            sql.SQL(query)
            .format(sql.Literal(lock), sql.Literal(statement), scope=sql.SQL(scope))
            .as_bytes(self.conn)
        )

    def apply_in_transaction(
        self,
        file: MigrationFile,
        blocks: Sequence[Block],
        directives: Directives,
        seal: bool,
        parts_of: Sequence[Statement] = (),
        verify: tuple[Script, Sequence[Statement]] | None = None,
    ) -> Applied:
        """Send the file and its block in one transaction: both commit or neither.

        With `seal` (a run's last file) the block also seals the fingerprint of the
        schema the file leaves, read in its transaction from a reset session so that
        nothing the file set changes how the catalog reads. `parts_of`: the file's
        statements, sent one by one (a file with COPY … FROM stdin data); `verify`:
        its verify script, run after it in the same transaction.
        """
        started = datetime.now(timezone.utc)
        self.next_height = len(blocks) + 1
        row = self._row(file, started, Mode.TRANSACTION, None)
        prefix = (
            self._default_timeouts
            if directives == Directives()
            else self._timeouts(directives, "LOCAL")
        ) + (b"" if seal else _DEFER_FLUSH)
        t0 = time.perf_counter()
        # Two round trips: the file in its own message inside BEGIN, so that nothing
        # it leaves open (a quote, a comment) can reach the ledger SQL; then its
        # block and COMMIT. Both commit together or not at all.
        where = parts.Where()
        opening = b"BEGIN;" + prefix
        try:
            if (
                parts_of
                or directives.checks
                or verify
                or len(file.data) > (_ONE_MESSAGE_LIMIT)
            ):
                # A big file travels alone: joining it to the rest would copy it.
                self.conn.execute(opening)
                self._check(file, directives, where)
                if parts_of:
                    parts.send_all(self.conn, file.text, parts_of, where)
                else:
                    where.base = 0
                    self.conn.execute(file.data)
            else:
                where.base = -len(opening)
                self.conn.execute(opening + file.data)
            where.base = None  # an error from here on is not in the file
            if verify is not None:
                parts.run_verify(self.conn, verify[0].text, verify[1])
            sealed, snapshot = None, None
            if seal:
                self.conn.execute(b"RESET ALL; SET SESSION AUTHORIZATION DEFAULT")
                sealed, snapshot = self.fingerprint()
            if self.conn.info.encoding != "utf-8":  # the file changed it; the ledger
                self.conn.execute(b"SET LOCAL client_encoding = 'UTF8'")  # SQL is UTF-8
            block = self._block(file, blocks, started, Mode.TRANSACTION, sealed)
            outcome = Outcome.of_block(block.mode)  # a revert block's: reverted
            record = self._writer.write(row, status=Status.COMPLETED, block=block,
                outcome=outcome, schema_snapshot=snapshot)  # fmt: skip
            self._send_block(record + b"\nCOMMIT;" + self._reset)
        except KeyboardInterrupt:
            self._rollback_open_transaction()
            raise self._interrupted(file, transactional=True) from None
        except failure.VerifyFailure as failed:
            self._rollback_open_transaction()
            script = verify[0].path if verify else ""
            error, recorded = failed.errors(file, script, self.conn.broken)
            if not self.conn.broken:
                self._record_failure(
                    file, started, t0, Mode.TRANSACTION, recorded, 0, None, ()
                )
            raise error from failed.error
        except ChainopsError:  # the fingerprint could not be read: nothing commits
            self._rollback_open_transaction()
            raise
        except psycopg.Error as err:
            self._rollback_open_transaction()
            raise self._failed(
                file, started, t0, err, Mode.TRANSACTION, 0, None, where.base,
                prefix=None if parts_of else prefix, placed=where.placed,
            ) from err  # fmt: skip
        ms = round((time.perf_counter() - t0) * 1000)
        return Applied(file, replace(block, duration_ms=ms), ms)

    def apply_statements(
        self,
        file: MigrationFile,
        blocks: Sequence[Block],
        stmts: Sequence[Statement],
        attempt: Attempt | None,
        directives: Directives,
        seal: bool,
    ) -> Applied:
        """Run the statements one by one in autocommit, recording progress after
        each, from where `attempt` stopped; the block is written after the last,
        sealing the schema's fingerprint when `seal`."""
        texts = [s.text for s in stmts]
        start = attempt.statements_done if attempt else 0
        if start and attempt and attempt.progress_hash != progress_hash(texts[:start]):
            raise MigrationFileError(
                f"{file.path}: its first {start} statements changed since they were "
                "applied; restore them, --resume continues only the same file"
            )
        started = datetime.now(timezone.utc)
        mode = Mode.NO_TRANSACTION
        if directives.checks and not start:  # before anything runs, in autocommit
            where = parts.Where()
            try:
                self._check(file, directives, where)
            except psycopg.Error as err:
                raise self._failed(
                    file, started, time.perf_counter(), err, mode, 0, None,
                    where.base, placed=where.placed,
                ) from err  # fmt: skip
        try:
            self.conn.execute(
                self._writer.write(
                    self._row(file, started, mode, 0),
                    status=Status.RUNNING,
                    statements_done=start,
                    statements_total=len(texts),
                    progress_hash=progress_hash(texts[:start]),
                    history=False,
                )
            )
            self.conn.execute(self._timeouts(directives, "SESSION"))
        except KeyboardInterrupt:
            raise self._interrupted(file) from None
        t0 = time.perf_counter()
        committed, where = start, parts.Where()
        try:
            for i in range(start, len(texts)):
                try:
                    parts.send_one(self.conn, file.text, stmts[i], where)
                    # Inside a file's own BEGIN ... COMMIT this commits with it.
                    self._record_progress(file, i + 1, texts)
                except KeyboardInterrupt:
                    self._rollback_open_transaction()
                    raise self._interrupted(file) from None
                except psycopg.Error as err:
                    self._rollback_open_transaction()
                    raise self._failed(
                        file,
                        started,
                        t0,
                        err,
                        mode,
                        committed,
                        len(texts),
                        stmts[i].offset,
                        texts[:committed],
                        placed=where.placed,
                    ) from err
                if self.conn.info.transaction_status == _IDLE:
                    committed = i + 1
            if self.conn.info.transaction_status != _IDLE:
                self._rollback_open_transaction()
                raise MigrationFileError(
                    f"{file.path} opens a transaction it never commits; "
                    "add COMMIT at the end"
                )
        finally:
            if not self.conn.broken and self.conn.info.transaction_status == _IDLE:
                self.conn.execute(self._reset)
        ms = round((time.perf_counter() - t0) * 1000)
        try:
            sealed, snapshot = self.fingerprint() if seal else (None, None)
            block = self._block(file, blocks, started, mode, sealed)
            block = replace(block, duration_ms=ms)
            self._send_block(
                self._writer.write(
                    self._row(file, started, mode, ms),
                    status=Status.COMPLETED,
                    block=block,
                    statements_done=len(texts),
                    statements_total=len(texts),
                    schema_snapshot=snapshot,
                )
                + b"\nCOMMIT;",
                begin=True,
            )
        except KeyboardInterrupt:
            raise self._interrupted(file) from None
        except psycopg.Error as err:
            self._rollback_open_transaction()
            raise failure.ledger_write_failed(err, file) from err
        return Applied(file, block, ms)

    def _check(
        self, file: MigrationFile, directives: Directives, where: parts.Where
    ) -> None:
        """Refuse the file if one of its `chainops:check` preconditions is not true."""
        check = parts.first_failing_check(self.conn, directives.checks, where)
        if check is not None:
            raise CheckFailed(
                f"{file.path}:{check.line}: check failed: {one_line(check.query)}; "
                f"{file.path} was not applied, make the check hold and run inv "
                "migrate again"
            )

    def _interrupted(
        self, file: MigrationFile, *, transactional: bool = False
    ) -> Interrupted:
        return failure.interrupted(self.conn, self.schema, file, transactional)

    def _record_progress(
        self, file: MigrationFile, done: int, texts: list[str]
    ) -> None:
        progress = self._writer.progress(file.number, done, progress_hash(texts[:done]))
        try:
            self.conn.execute(progress)
        except psycopg.Error as err:  # the statement ran: the ledger is what failed
            self._rollback_open_transaction()
            raise failure.ledger_write_failed(err, file) from err

    def _rollback_open_transaction(self) -> None:
        # Not while a command is still in progress (an interrupt can leave one):
        # ROLLBACK would fail and hide the interrupt; the server rolls back on close.
        if not self.conn.broken and self.conn.info.transaction_status in _OPEN:
            self.conn.execute("ROLLBACK")

    def _failed(
        self,
        file: MigrationFile,
        started: datetime,
        t0: float,
        err: psycopg.Error,
        mode: str,
        done: int,
        total: int | None,
        base: int | None = 0,
        done_texts: Sequence[str] = (),
        prefix: bytes | None = None,
        placed: tuple[int, int] | None = None,
    ) -> ChainopsError:
        """Record the failed attempt outside the chain and build the user's error.

        A transactional file's failure without a position is placed only now, by
        `failure.place_by_statement`: the happy path never splits the file.
        """
        if base is None:  # the ledger write failed, not the file
            return failure.ledger_write_failed(err, file)
        diag = err.diag
        message = diag.message_primary or str(err).strip().splitlines()[0]
        line, column = placed or failure.locate_error(
            file.text, diag.statement_position, base, mode
        )
        if line is None and base is not None and prefix is not None:
            placed = None
            if is_idle(self.conn):  # rolled back, and the connection still open
                placed = failure.place_by_statement(
                    self.conn, file, prefix, diag.sqlstate
                )
            line, column = placed or (None, None)
        hint = failure.hint_for(diag.sqlstate, diag.message_hint)
        error = MigrationFailed(
            file.path,
            message,
            line=line,
            column=column,
            sqlstate=diag.sqlstate,
            hint=hint,
            detail=diag.message_detail,
            advice=failure.advice(mode, done, self.conn.broken),
        )
        if not self.conn.broken:
            try:
                self._record_failure(file, started, t0, mode, error, done, total,
                                     done_texts)  # fmt: skip
            except psycopg.Error as record_err:  # the ledger itself is gone or guarded
                return failure.ledger_write_failed(record_err, file)
        return error

    def _record_failure(
        self,
        file: MigrationFile,
        started: datetime,
        t0: float,
        mode: str,
        error: MigrationFailed,
        done: int,
        total: int | None,
        done_texts: Sequence[str],
    ) -> None:
        """The failed attempt: a ledger row outside the chain, and a history row.

        It keeps what the user was told: line and column, SQLSTATE, detail, hint.
        """
        ms = round((time.perf_counter() - t0) * 1000)
        where = f" at line {error.line}:{error.column or 1}" if error.line else ""
        text = server_error(
            f"{error.server_message}{where}", error.sqlstate, error.detail, error.hint
        )
        self.conn.execute(
            self._writer.write(
                self._row(file, started, mode, ms),
                status=Status.FAILED,
                error=text,
                statements_done=done,
                statements_total=total,
                progress_hash=progress_hash(done_texts) if total else None,
            )
        )
