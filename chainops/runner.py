"""Orchestration: lock, read, verify, pick pending, then apply each file with its block.

Each transactional migration commits in one transaction with its ledger rows, so
both are written or neither is. Returns results and reports progress through a
callback; never prints.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import psycopg

from chainops import chain, db, ledger
from chainops.applier import Applied, Applier
from chainops.chain import Finding
from chainops.config import Settings
from chainops.errors import (
    AppliedFileChanged,
    AppliedFileMissing,
    ConfigError,
    DriftError,
    LedgerTampered,
    OutOfOrder,
    PartiallyApplied,
    Refused,
    SchemaDrift,
)
from chainops.files import MigrationFile

if TYPE_CHECKING:
    from chainops.drift import Drift

Conn = ledger.Conn


@dataclass(frozen=True)
class Waiting:
    """Event: another run holds the ledger lock."""

    holder: db.LockHolder | None


@dataclass(frozen=True)
class OutOfOrderAllowed:
    """Event: a file below the folder's highest applied number is applied anyway."""

    file: MigrationFile
    applied_path: str


@dataclass(frozen=True)
class DriftFound:
    """Event: the live schema differs from the head block's fingerprint."""

    drift: Drift
    accepted: bool


Event = Applied | Waiting | OutOfOrderAllowed | DriftFound


@dataclass(frozen=True)
class Options:
    """How `apply` behaves; the defaults are what `inv migrate` does."""

    allow_out_of_order: bool = False
    resume: bool = False
    dry_run: bool = False
    accept_drift: bool = False


@dataclass(frozen=True)
class Planned:
    """A pending file and how it would be applied (dry run)."""

    file: MigrationFile
    transactional: bool
    reason: str | None
    statements: int | None  # None when a large file was not split


@dataclass(frozen=True)
class ApplyResult:
    applied: tuple[Applied, ...]
    head: str
    height: int
    planned: tuple[Planned, ...] = ()


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


def refuse_old_format(state: ledger.LedgerState) -> None:
    """Reading commands never write: an older ledger is upgraded by migrate."""
    if state.needs_upgrade:
        raise ConfigError(
            f"the ledger has format {state.format_version}, older than this chainops "
            f"({ledger.FORMAT_VERSION}); run inv migrate once to upgrade it"
        )


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
        if done and done == attempt.statements_total:
            raise PartiallyApplied(
                f"{f.path} has all {done} statements in place but the run stopped "
                "before recording its block; run migrate --resume to record it"
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


def _pending(
    state: ledger.LedgerState,
    files: Sequence[MigrationFile],
    options: Options,
    emit: Callable[[Event], None],
    *,
    final: bool = True,
    newer: frozenset[str] = frozenset(),
) -> tuple[list[MigrationFile], dict[int, ledger.Attempt]]:
    """Verify, then the files to apply in order; refuses out-of-order and partial.

    Not `final` (read without the lock): a 'running' row may be another migrator's
    live work, so attempts are judged, and events emitted, only under the lock.
    `newer`: paths of blocks another run appended while this one waited for the lock,
    whose files this run's list predates; they are not reported missing.
    """
    findings = verify_state(state, files)
    raise_findings(
        [f for f in findings if not (f.kind == "missing" and f.path in newer)]
    )
    pending = chain.find_pending(state.blocks, files)
    for file, applied_path in chain.find_out_of_order(state.blocks, pending):
        if not options.allow_out_of_order:
            raise OutOfOrder(file.path, applied_path)
        if final:
            emit(OutOfOrderAllowed(file, applied_path))
    if not final:
        return pending, {}
    return pending, _check_attempts(state, pending, options.resume)


def _plan(state: ledger.LedgerState, pending: Sequence[MigrationFile]) -> ApplyResult:
    from chainops import statements

    planned = []
    for file in pending:
        plan = statements.plan_migration(file.text, file.path)
        count = len(plan.statements) if plan.statements else None
        planned.append(Planned(file, plan.transactional, plan.reason, count))
    return ApplyResult(
        (), chain.head_hash(state.blocks), len(state.blocks), tuple(planned)
    )


def apply(
    conn: Conn,
    settings: Settings,
    files: Sequence[MigrationFile],
    options: Options = Options(),
    on_event: Callable[[Event], None] | None = None,
    before_apply: Callable[[Sequence[MigrationFile]], None] | None = None,
) -> ApplyResult:
    """Verify the chain, then apply every pending file in order, each atomically.

    `before_apply` runs under the lock once the pending files are known (backups).
    """
    emit = on_event or (lambda _event: None)
    schema = settings.ledger_schema
    state = ledger.read_state(conn, schema)
    if state.needs_upgrade and not options.dry_run:
        with _Locked(conn, settings, emit):
            state = ledger.read_state(conn, schema)
            if state.needs_upgrade:
                ledger.upgrade(conn, schema, state.format_version)
        state = ledger.read_state(conn, schema)
    refuse_old_format(state)
    pending, _ = _pending(state, files, options, emit, final=options.dry_run)
    if options.dry_run:
        return _plan(state, pending)  # reads only: no lock, no ledger created
    if not pending and not options.accept_drift:
        if state.exists and state.environment not in (
            settings.environment,
            "production",
        ):
            ledger.mark_environment(conn, schema, settings.environment)
        return ApplyResult((), chain.head_hash(state.blocks), len(state.blocks))

    from chainops import drift  # the schema catalog code, only when applying

    with _Locked(conn, settings, emit):
        if not state.exists:
            ledger.create(conn, schema)
        # Another run may have applied files while we waited for the lock, even
        # files saved after this run read the folder (or the watcher's snapshot).
        before = len(state.blocks)
        state = ledger.read_state(conn, schema)
        known = {f.path for f in files}
        newer = frozenset(b.path for b in state.blocks[before:] if b.path not in known)
        pending, partial = _pending(state, files, options, emit, newer=newer)
        if not pending and not options.accept_drift:
            return ApplyResult((), chain.head_hash(state.blocks), len(state.blocks))
        applier = _applier(conn, settings)
        blocks = list(state.blocks)
        found = drift.detect(conn, settings, state.blocks)
        if found is not None:
            _handle_drift(found, settings, options, emit)
            if options.accept_drift:
                blocks.append(applier.record_drift(blocks, found.changes))
        if pending and before_apply is not None:
            before_apply(pending)
        ledger.mark_environment(conn, schema, settings.environment)
        done: list[Applied] = []
        try:
            for file in pending:
                applied = applier.apply(file, blocks, partial.get(file.number))
                blocks.append(applied.block)
                done.append(applied)
                emit(applied)
        finally:
            # An interrupt can leave a command in progress: then leave the
            # connection alone, or its error would replace the real one.
            idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if len(blocks) > len(state.blocks) and not conn.broken and idle:
                drift.record(conn, settings, len(blocks))
        return ApplyResult(tuple(done), chain.head_hash(blocks), len(blocks))


def _handle_drift(
    found: Drift, settings: Settings, options: Options, emit: Callable[[Event], None]
) -> None:
    """Refuse to build on drift in production; elsewhere warn, or accept it."""
    if settings.is_production and not options.accept_drift:
        raise SchemaDrift(
            f"{found.message()}; undo the change, or record it with "
            "migrate --accept-drift; nothing was applied",
            tuple(found.findings()),
        )
    emit(DriftFound(found, options.accept_drift))


def baseline(
    conn: Conn,
    settings: Settings,
    files: Sequence[MigrationFile],
    through: int,
    on_event: Callable[[Event], None] | None = None,
) -> ApplyResult:
    """Record blocks for files up to #`through` without running them.

    For adopting a database whose schema already matches those migrations.
    """
    emit = on_event or (lambda _event: None)
    chosen = [f for f in files if f.number <= through]
    if not chosen:
        raise Refused(
            f"no migration is numbered #{through} or below; "
            "pass --through with the number of the last migration already in place"
        )
    from chainops import drift

    with _Locked(conn, settings, emit):
        ledger.create(conn, settings.ledger_schema)
        state = ledger.read_state(conn, settings.ledger_schema)
        if state.blocks or state.attempts:
            raise Refused(
                f"the ledger already holds {len(state.blocks)} blocks; baseline only "
                "adopts a database that chainops has never migrated"
            )
        ledger.mark_environment(conn, settings.ledger_schema, settings.environment)
        applier = _applier(conn, settings)
        blocks: list[chain.Block] = []
        done = []
        for file in chosen:
            blocks.append(applier.record_baseline(file, blocks))
            done.append(Applied(file, blocks[-1], 0))
            emit(done[-1])
        drift.record(conn, settings, len(blocks))
        return ApplyResult(tuple(done), chain.head_hash(blocks), len(blocks))


def _applier(conn: Conn, settings: Settings) -> Applier:
    return Applier(
        conn,
        settings.ledger_schema,
        ledger.session_user(conn),
        socket.gethostname(),
        settings.migration_lock_timeout,
        settings.statement_timeout,
    )


class _Locked:
    """The run-wide advisory lock as a context manager."""

    def __init__(self, conn: Conn, settings: Settings, emit: Callable[[Event], None]):
        self.conn, self.settings, self.emit = conn, settings, emit
        self.key = db.lock_key(conn.info.dbname, settings.ledger_schema, ledger.TABLE)

    def __enter__(self) -> None:
        db.acquire_lock(
            self.conn,
            self.key,
            self.settings.lock_timeout,
            lambda holder: self.emit(Waiting(holder)),
        )

    def __exit__(self, *exc: object) -> None:
        if not self.conn.broken:
            db.release_lock(self.conn, self.key)
