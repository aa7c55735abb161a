"""Orchestration: lock, read, verify, pick pending, then apply each file with its block.

Each transactional migration travels in one message together with its ledger rows,
so both commit or neither does. Returns results and reports progress through a
callback; never prints.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import psycopg

from chainops import __version__, chain, db, ledger
from chainops.chain import Block, Finding
from chainops.errors import (
    ROLLED_BACK,
    AppliedFileChanged,
    AppliedFileMissing,
    DriftError,
    Interrupted,
    LedgerTampered,
    MigrationFailed,
    MigrationFileError,
    OutOfOrder,
    PartiallyApplied,
)
from chainops.files import HASH_ALGORITHM, MigrationFile, locate

if TYPE_CHECKING:
    from chainops.statements import Statement

Conn = ledger.Conn


@dataclass(frozen=True)
class Applied:
    """Event and result: one migration became a block."""

    file: MigrationFile
    block: Block
    duration_ms: int


@dataclass(frozen=True)
class Waiting:
    """Event: another run holds the ledger lock."""

    holder: db.LockHolder | None


@dataclass(frozen=True)
class OutOfOrderAllowed:
    """Event: a file below the folder's highest applied number is applied anyway."""

    file: MigrationFile
    applied_path: str


Event = Applied | Waiting | OutOfOrderAllowed


@dataclass(frozen=True)
class ApplyResult:
    applied: tuple[Applied, ...]
    head: str
    height: int


def verify_state(
    state: ledger.LedgerState, files: Sequence[MigrationFile]
) -> list[Finding]:
    """Every problem with the chain and the applied files."""
    findings = chain.verify_links(state.blocks) + chain.verify_files(
        state.blocks, files
    )
    if state.completed_in_history > len(state.blocks):
        findings.append(
            Finding(
                "tampered",
                "",
                f"the ledger: the history records {state.completed_in_history} applied "
                f"migrations but the ledger holds {len(state.blocks)} blocks; "
                "a block was deleted, restore the ledger from a backup",
            )
        )
    return findings


def raise_findings(findings: Sequence[Finding]) -> None:
    """Raise the DriftError that names the first finding and carries them all."""
    if not findings:
        return
    first = findings[0]
    cls: type[DriftError] = {
        "changed": AppliedFileChanged,
        "missing": AppliedFileMissing,
        "renamed": AppliedFileMissing,
    }.get(first.kind, LedgerTampered)
    rest = len(findings) - 1
    more = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
    message = first.message
    if more:
        subject, _, advice = message.partition("; ")
        message = f"{subject}{more}; {advice}" if advice else message + more
    raise cls(message + "; nothing was applied", tuple(findings))


def _check_attempts(
    state: ledger.LedgerState, pending: Sequence[MigrationFile], resume: bool
) -> dict[int, ledger.Attempt]:
    """Refuse to re-run a non-transactional migration that stopped midway."""
    by_number = {a.number: a for a in state.attempts}
    partial: dict[int, ledger.Attempt] = {}
    for f in pending:
        attempt = by_number.get(f.number)
        if attempt is None or (
            attempt.status == "failed" and attempt.statements_done == 0
        ):
            continue
        partial[f.number] = attempt
        if resume:
            continue
        done, nxt = attempt.statements_done, attempt.statements_done + 1
        total = f" of {attempt.statements_total}" if attempt.statements_total else ""
        in_place = (
            f"statements 1-{done}{total} are in place"
            if done
            else "no statement is in place"
        )
        if attempt.status == "running":
            what = (
                f"statement {nxt} was running when the run stopped, check whether "
                "it took effect (an INVALID index means it did not: drop it)"
            )
        else:
            what = f"statement {nxt} failed: {attempt.error_message}"
        raise PartiallyApplied(
            f"{f.path} was applied only partly: {in_place} and {what}; fix the cause, "
            f"then run migrate --resume to continue at statement {nxt}"
        )
    return partial


def apply(
    conn: Conn,
    schema: str,
    files: Sequence[MigrationFile],
    *,
    lock_timeout: float,
    allow_out_of_order: bool = False,
    resume: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> ApplyResult:
    """Verify the chain, then apply every pending file in order, each atomically."""
    emit = on_event or (lambda _event: None)
    state = ledger.read_state(conn, schema)
    raise_findings(verify_state(state, files))
    if not chain.find_pending(state.blocks, files):
        return ApplyResult((), chain.head_hash(state.blocks), len(state.blocks))

    key = db.lock_key(conn.info.dbname, schema, ledger.TABLE)
    db.acquire_lock(conn, key, lock_timeout, lambda holder: emit(Waiting(holder)))
    try:
        if not state.exists:
            ledger.create(conn, schema)
        # Another run may have applied files while we waited for the lock.
        state = ledger.read_state(conn, schema)
        raise_findings(verify_state(state, files))
        pending = chain.find_pending(state.blocks, files)
        for file, applied_path in chain.find_out_of_order(state.blocks, pending):
            if not allow_out_of_order:
                raise OutOfOrder(file.path, applied_path)
            emit(OutOfOrderAllowed(file, applied_path))
        partial = _check_attempts(state, pending, resume)
        context = _Context(
            conn, schema, ledger.session_user(conn), socket.gethostname()
        )
        blocks = list(state.blocks)
        done: list[Applied] = []
        for file in pending:
            applied = context.apply_one(file, blocks, partial.get(file.number))
            blocks.append(applied.block)
            done.append(applied)
            emit(applied)
        return ApplyResult(tuple(done), chain.head_hash(blocks), len(blocks))
    finally:
        if not conn.broken:
            db.release_lock(conn, key)


def _progress_hash(texts: Sequence[str]) -> str:
    return hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()


@dataclass
class _Context:
    conn: Conn
    schema: str
    user: str
    host: str

    def _row(
        self, file: MigrationFile, started: datetime, mode: str, ms: int | None
    ) -> ledger.Row:
        return ledger.Row(
            number=file.number,
            path=file.path,
            content_hash=file.sha256,
            hash_algorithm=HASH_ALGORITHM,
            started_at=started,
            duration_ms=ms,
            mode=mode,
            applied_by=self.user,
            client_host=self.host,
            version=__version__,
        )

    def _block(
        self, file: MigrationFile, blocks: Sequence[Block], started: datetime, mode: str
    ) -> Block:
        block = Block(
            height=len(blocks) + 1,
            number=file.number,
            path=file.path,
            content_hash=file.sha256,
            hash_algorithm=HASH_ALGORITHM,
            applied_at=started,
            applied_by=self.user,
            client_host=self.host,
            mode=mode,
            previous_hash=chain.head_hash(blocks),
            block_hash="",
        )
        return replace(block, block_hash=chain.recompute(block))

    def apply_one(
        self,
        file: MigrationFile,
        blocks: Sequence[Block],
        attempt: ledger.Attempt | None,
    ) -> Applied:
        from chainops import statements  # pglast is needed only when applying

        plan = statements.plan_migration(file.text, file.path)
        if plan.transactional:
            return self._apply_in_transaction(file, blocks)
        return self._apply_statements(file, blocks, plan.statements, attempt)

    def _apply_in_transaction(
        self, file: MigrationFile, blocks: Sequence[Block]
    ) -> Applied:
        started = datetime.now(timezone.utc)
        block = self._block(file, blocks, started, "transaction")
        row = self._row(file, started, "transaction", None)
        record = ledger.write_sql(self.schema, row, status="completed", block=block)
        # One simple-protocol message: PostgreSQL runs it as one implicit transaction,
        # so the migration and its block commit together or not at all.
        message = file.text + "\n;\n" + record.as_string(self.conn)
        t0 = time.perf_counter()
        try:
            self.conn.execute(message.encode("utf-8"))
        except KeyboardInterrupt:
            raise Interrupted(
                f"interrupted while applying {file.path}; it was rolled back"
            ) from None
        except psycopg.Error as err:
            raise self._failed(file, started, t0, err, "transaction", 0, None) from err
        ms = round((time.perf_counter() - t0) * 1000)
        return Applied(file, replace(block, duration_ms=ms), ms)

    def _apply_statements(
        self,
        file: MigrationFile,
        blocks: Sequence[Block],
        stmts: Sequence[Statement],
        attempt: ledger.Attempt | None,
    ) -> Applied:
        texts = [s.text for s in stmts]
        start = attempt.statements_done if attempt else 0
        if attempt and attempt.progress_hash != _progress_hash(texts[:start]) and start:
            raise MigrationFileError(
                f"{file.path}: its first {start} statements changed since they were "
                "applied; restore them, --resume continues only the same file"
            )
        started = datetime.now(timezone.utc)
        mode = "no-transaction"
        row = self._row(file, started, mode, 0)
        self.conn.execute(
            ledger.write_sql(
                self.schema,
                row,
                status="running",
                statements_done=start,
                statements_total=len(texts),
                progress_hash=_progress_hash(texts[:start]),
                history=False,
            )
        )
        t0 = time.perf_counter()
        committed = start
        for i in range(start, len(texts)):
            try:
                self.conn.execute(texts[i].encode("utf-8"))
                # Inside a file's own BEGIN ... COMMIT this update commits with it.
                self.conn.execute(
                    ledger.update_progress_sql(
                        self.schema, file.number, i + 1, _progress_hash(texts[: i + 1])
                    )
                )
            except KeyboardInterrupt:
                self._rollback_open_transaction()
                raise Interrupted(
                    f"interrupted while applying {file.path}; statements 1-{committed} "
                    "are in place, run migrate --resume to continue"
                ) from None
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
                ) from err
            if self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
                committed = i + 1
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._rollback_open_transaction()
            raise MigrationFileError(
                f"{file.path} opens a transaction it never commits; "
                "add COMMIT at the end"
            )
        ms = round((time.perf_counter() - t0) * 1000)
        block = replace(self._block(file, blocks, started, mode), duration_ms=ms)
        self.conn.execute(
            ledger.write_sql(
                self.schema,
                self._row(file, started, mode, ms),
                status="completed",
                block=block,
                statements_done=len(texts),
                statements_total=len(texts),
            )
        )
        return Applied(file, block, ms)

    def _rollback_open_transaction(self) -> None:
        if not self.conn.broken and (
            self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
        ):
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
        base: int = 0,
        done_texts: Sequence[str] = (),
    ) -> MigrationFailed:
        """Record the failed attempt outside the chain and build the user's error."""
        diag = err.diag
        message = diag.message_primary or str(err).strip().splitlines()[0]
        line = column = None
        if diag.statement_position:
            position = base + int(diag.statement_position) - 1
            if position < len(file.text):
                line, column = locate(file.text, position)
        elif mode != "transaction":
            line, column = locate(file.text, base)
        if self.conn.broken:
            return MigrationFailed(
                file.path,
                message,
                line=line,
                column=column,
                sqlstate=diag.sqlstate,
                hint=diag.message_hint,
                advice="the connection was lost and the server rolled "
                "back the open transaction; run migrate again",
            )
        ms = round((time.perf_counter() - t0) * 1000)
        where = f" at line {line}" if line else ""
        error = f"{message}{where} (SQLSTATE {diag.sqlstate})"
        self.conn.execute(
            ledger.write_sql(
                self.schema,
                self._row(file, started, mode, ms),
                status="failed",
                error=error,
                statements_done=done,
                statements_total=total,
                progress_hash=_progress_hash(done_texts) if total else None,
            )
        )
        advice = ROLLED_BACK
        if mode != "transaction" and done:
            advice = (
                f"statements 1-{done} are in place; fix the cause and run "
                f"migrate --resume to continue at statement {done + 1}"
            )
        elif mode != "transaction":
            advice = "no statement is in place; fix the file and run migrate again"
        return MigrationFailed(
            file.path,
            message,
            line=line,
            column=column,
            sqlstate=diag.sqlstate,
            hint=diag.message_hint,
            advice=advice,
        )
