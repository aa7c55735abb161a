"""Carry out migrate and baseline on one connection: lock, read, verify, plan, then
apply each planned step with its block, and fingerprint the schema afterwards.

Each transactional migration commits in one transaction with its ledger rows, so
both are written or neither is. Reports progress through events; never prints.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chainops import chain, plan, reverts, verify
from chainops.config import Settings
from chainops.errors import (
    LedgerTampered,
    LintFailed,
    LockHeld,
    MigrationFileError,
    PartiallyApplied,
    SchemaDrift,
    more,
)
from chainops.events import (
    Applied,
    DriftFound,
    Event,
    Linted,
    OutOfOrderAllowed,
    Waiting,
)
from chainops.model import (
    ApplyFile,
    Block,
    LedgerSnapshot,
    MigrationFile,
    Options,
    Script,
)
from chainops.results import ApplyResult
from chainops.source import scan
from chainops.store import ledger, parts
from chainops.store.connection import Conn, is_idle
from chainops.store.lock import ledger_holder, ledger_lock
from chainops.store.session import Applier

if TYPE_CHECKING:  # pglast loads only for a file that needs parsing
    from chainops.source.statements import Plan as Analysis
    from chainops.source.statements import Statement

Emit = Callable[[Event], None]
BeforeApply = Callable[[Sequence[MigrationFile]], None]


def migrate(
    conn: Conn,
    settings: Settings,
    files: Sequence[MigrationFile],
    options: Options,
    emit: Emit,
    before_apply: BeforeApply | None = None,
    verified: Callable[[], None] | None = None,
) -> ApplyResult:
    """Verify the chain, then apply every pending file in order, each atomically.

    `before_apply` runs under the lock once the pending files are known (backups);
    `verified` once the chain has verified, so warnings never precede its refusal.
    """
    schema = settings.ledger_schema
    snapshot = ledger.read_snapshot(conn, schema)
    if snapshot.needs_upgrade and not options.dry_run:
        with _locked(conn, settings, emit):
            snapshot = ledger.read_snapshot(conn, schema)
            if snapshot.needs_upgrade and snapshot.format_version is not None:
                ledger.upgrade(conn, schema, snapshot.format_version)
        snapshot = ledger.read_snapshot(conn, schema)
    plan.refuse_old_format(snapshot)
    verify.raise_findings(verify.verify(snapshot, files))
    if verified is not None:
        verified()
    # Without the lock a 'running' row may be another run's live work: attempts
    # are judged, and events emitted, only under the lock (or for a dry run).
    try:
        first = plan.plan_apply(snapshot, files, options, final=options.dry_run)
    except PartiallyApplied:
        if holder := ledger_holder(conn, schema):
            # A 'running' row under a held lock is another run's live work.
            raise LockHeld(
                f"the ledger is locked by pid {holder.pid} "
                f"({holder.application_name}), another run applying migrations; "
                "run the dry run again once it has finished"
            ) from None
        raise
    if first.steps:  # nothing pending: no parser, no lint
        production = settings.is_production or snapshot.is_production
        _lint(conn, settings, first.files, emit, production)
    if options.dry_run:  # reads only: no lock, no ledger created
        return ApplyResult(
            (), snapshot.head, snapshot.height, plan.describe(first), _drift(snapshot)
        )
    if not first.steps and not options.accept_drift:
        return ApplyResult((), snapshot.head, snapshot.height, (), _drift(snapshot))

    with _locked(conn, settings, emit):
        if not snapshot.exists:
            ledger.create(conn, schema, settings.fingerprint_scope)
        # Another run may have applied files while we waited for the lock, even
        # files saved after this run read the folder (or the watcher's snapshot).
        before = len(snapshot.blocks)
        snapshot = ledger.read_snapshot(conn, schema)
        known = {f.path for f in files}
        newer = frozenset(
            b.path for b in snapshot.blocks[before:] if b.path not in known
        )
        verify.raise_findings(verify.verify(snapshot, files, newer=newer))
        steps = plan.plan_apply(snapshot, files, options)
        for file, applied_path in steps.out_of_order:
            emit(OutOfOrderAllowed(file, applied_path))
        if not steps.steps and not options.accept_drift:
            return ApplyResult((), snapshot.head, snapshot.height, (), _drift(snapshot))
        return _apply(
            conn, settings, snapshot, steps.steps, options, emit, before_apply
        )


def _lint(
    conn: Conn,
    settings: Settings,
    pending: Sequence[MigrationFile],
    emit: Emit,
    production: bool,
) -> None:
    """Lint the pending files as one run; production (local settings or the
    ledger's own marker) refuses an error-level finding that no lint-ignore line in
    the file suppresses."""
    from chainops.lint import live, report

    # A file the parser refuses is left to the server, which places the error.
    sources = live.sources_of(pending)
    found = live.lint_files(conn, settings, sources, one_run=True, skip_unparsable=True)
    shown = found.shown
    if shown:
        lines = tuple(report.finding_line(f) for f in shown)
        emit(Linted(lines, found.errors, len(shown) - found.errors))
    if production and found.errors:
        first = next(f for f in shown if f.is_error)
        raise LintFailed(
            f"{first.path}:{first.line}:{first.column}: {first.rule} "
            f"{first.message}{more(found.errors - 1, 'lint error')}; production "
            "applies nothing a lint error flags: fix the file, or add -- "
            f"chainops:lint-ignore={first.rule} <reason> above the statement",
            shown,
        )


def _apply(
    conn: Conn,
    settings: Settings,
    snapshot: LedgerSnapshot,
    steps: Sequence[ApplyFile],
    options: Options,
    emit: Emit,
    before_apply: BeforeApply | None,
) -> ApplyResult:
    """Apply the planned files under the lock; fingerprint the schema afterwards."""
    from chainops.store import drift  # the catalog code, only when applying

    # Every file that needs parsing is parsed first: one it refuses (a psql
    # meta-command, a bad verify script) stops the run before drift is recorded
    # or any file is applied.
    prepared = [_prepare(step) for step in steps]
    applier = _applier(conn, settings, snapshot)
    scope = snapshot.fingerprint_scope(settings.fingerprint_scope)
    blocks = list(snapshot.blocks)
    # A file resumed midway changed the schema with the statements in place: that
    # difference is its own, not drift (verify says the same).
    resuming = any(step.attempt is not None for step in steps)
    found = (
        None
        if resuming
        else drift.detect(conn, settings.ledger_schema, snapshot.blocks, scope)
    )
    if found is not None:
        production = settings.is_production or snapshot.is_production
        plan.decide_drift(found, options, production)
        blocks.append(applier.record_drift(blocks, found.changes))
        emit(DriftFound(found, blocks[-1]))
    if steps and before_apply is not None:
        before_apply([step.file for step in steps])
    done: list[Applied] = []
    ledger_intact = True
    try:
        for i, ready in enumerate(prepared, 1):
            applied = apply_file(applier, ready, blocks, seal=i == len(steps))
            blocks.append(applied.block)
            done.append(applied)
            emit(applied)
    except LedgerTampered:
        ledger_intact = False  # nothing more to record in a ledger that failed
        raise
    finally:
        # An interrupt can leave a command in progress: then leave the
        # connection alone, or its error would replace the real one.
        # A run that stopped early leaves its newest block unsealed: store the
        # fingerprint beside it, the drift reference until the next run seals one.
        # (A file stopped midway needs none: drift waits until it is resumed.)
        added = len(blocks) > len(snapshot.blocks)
        unsealed = added and blocks[-1].sealed_schema is None
        if unsealed and ledger_intact and is_idle(conn):
            drift.record(conn, settings.ledger_schema, len(blocks), scope)
    drifts = sum(1 for block in blocks if block.is_drift)
    return ApplyResult(tuple(done), chain.head_hash(blocks), len(blocks), (), drifts)


def _drift(snapshot: LedgerSnapshot) -> int:
    return sum(1 for block in snapshot.blocks if block.is_drift)


@dataclass(frozen=True)
class _Prepared:
    """A planned file, parsed if it needs to be: None is plain SQL sent as it is."""

    step: ApplyFile
    analysis: Analysis | None = None
    verify: tuple[Script, Sequence[Statement]] | None = None


def _prepare(step: ApplyFile) -> _Prepared:
    """Parse only a file that may need to go one by one, or has a verify script."""
    file = step.file
    if file.verify_script is None and not scan.needs_parse(file.data):
        return _Prepared(step)
    from chainops.source import statements  # pglast, only for a file that needs it

    analysis = statements.plan_migration(file.text, file.path)
    if (file.is_repeatable or reverts.is_down(file)) and not analysis.transactional:
        kind, fix = (
            ("down script", "undo the migration in plain transactional SQL")
            if reverts.is_down(file)
            else ("repeatable file", "make it a numbered migration")
        )
        raise MigrationFileError(
            f"{file.path}: a {kind} is applied in one transaction, and this "
            f"one cannot be ({analysis.reason}); {fix}"
        )
    return _Prepared(step, analysis, _verify_script(file, analysis.transactional))


def apply_file(
    applier: Applier, ready: _Prepared, blocks: Sequence[Block], *, seal: bool
) -> Applied:
    """Send plain SQL as it is, a parsed file as its analysis says.
    `seal`: the run's last file, whose block seals the schema's fingerprint."""
    file, directives, analysis = ready.step.file, ready.step.directives, ready.analysis
    if analysis is None:
        return applier.apply_in_transaction(file, blocks, directives, seal)
    if analysis.transactional:
        # COPY … FROM stdin data goes through psycopg's COPY: statement by statement.
        copies = analysis.statements if parts.has_copy(analysis.statements) else ()
        return applier.apply_in_transaction(
            file, blocks, directives, seal, copies, ready.verify
        )
    return applier.apply_statements(
        file, blocks, analysis.statements, ready.step.attempt, directives, seal
    )


def _verify_script(
    file: MigrationFile, transactional: bool
) -> tuple[Script, Sequence[Statement]] | None:
    """The file's verify script split into statements, run after it in its
    transaction; refused beside a file that runs statement by statement."""
    script = file.verify_script
    if script is None:
        return None
    from chainops.source import statements

    if not transactional:
        raise MigrationFileError(
            f"{script.path}: a verify script runs in its migration's transaction, "
            f"and {file.path} runs statement by statement; delete the verify "
            "script, or make the migration transactional"
        )
    analysis = statements.plan_migration(script.text, script.path)
    if not analysis.transactional or parts.has_copy(analysis.statements):
        raise MigrationFileError(
            f"{script.path}: a verify script runs inside its migration's "
            f"transaction, so it cannot hold {analysis.reason or 'COPY data'}; "
            "remove that statement"
        )
    return script, analysis.statements


def baseline(
    conn: Conn,
    settings: Settings,
    files: Sequence[MigrationFile],
    through: int,
    emit: Emit,
) -> ApplyResult:
    """Record blocks for files up to #`through` without running them.

    For adopting a database whose schema already matches those migrations.
    """
    plan.plan_baseline(LedgerSnapshot(exists=False), files, through)
    with _locked(conn, settings, emit):
        # Refused before the ledger is made, so a refusal leaves nothing behind.
        plan.plan_baseline(
            ledger.read_snapshot(conn, settings.ledger_schema),
            files,
            through,
            has_tables=ledger.has_user_tables(conn, settings.ledger_schema),
        )
        ledger.create(conn, settings.ledger_schema)
        snapshot = ledger.read_snapshot(conn, settings.ledger_schema)
        chosen = plan.plan_baseline(snapshot, files, through)
        applier = _applier(conn, settings, snapshot)
        blocks: list[Block] = []
        done = []
        for i, file in enumerate(chosen, 1):
            blocks.append(applier.record_baseline(file, blocks, i == len(chosen)))
            done.append(Applied(file, blocks[-1], 0))
            emit(done[-1])
        return ApplyResult(tuple(done), chain.head_hash(blocks), len(blocks))


def revert(
    conn: Conn,
    settings: Settings,
    files: Sequence[MigrationFile],
    choose: Callable[[LedgerSnapshot], Sequence[tuple[Block, MigrationFile]]],
    emit: Emit,
) -> ApplyResult:
    """Under the lock, verify the chain, then apply the down scripts `choose` picks
    (it refuses what may not be reverted), each in its own transaction with its
    revert block; the last seals the schema's fingerprint."""
    from chainops.store import drift

    schema = settings.ledger_schema
    with _locked(conn, settings, emit):
        snapshot = ledger.read_snapshot(conn, schema)
        plan.refuse_old_format(snapshot)
        verify.raise_findings(verify.verify(snapshot, files))
        chosen = choose(snapshot)
        # Every down script parsed (and refused if it must be) before any runs.
        ready = [_prepare(ApplyFile(reverts.down_file(f))) for _, f in chosen]
        found = drift.detect(conn, schema, snapshot.blocks, settings.fingerprint_scope)
        if found is not None:
            raise SchemaDrift(
                f"{found.message()}; record it with inv migrate --accept-drift, "
                "then revert; nothing was reverted",
                tuple(found.findings()),
            )
        applier = _applier(conn, settings, snapshot)
        blocks, done = list(snapshot.blocks), []
        try:
            for i, step in enumerate(ready, 1):
                done.append(apply_file(applier, step, blocks, seal=i == len(ready)))
                blocks.append(done[-1].block)
                emit(done[-1])
        finally:
            if done and blocks[-1].sealed_schema is None and is_idle(conn):
                drift.record(conn, schema, len(blocks), settings.fingerprint_scope)
    return ApplyResult(tuple(done), chain.head_hash(blocks), len(blocks))


def _applier(conn: Conn, settings: Settings, snapshot: LedgerSnapshot) -> Applier:
    """Applies on behalf of this user and host; the run's first block marks the
    ledger with this environment when its marker says otherwise."""
    return Applier(
        conn,
        settings.ledger_schema,
        ledger.session_user(conn),
        socket.gethostname(),
        settings.migration_lock_timeout,
        settings.statement_timeout,
        mark=None
        if snapshot.environment == settings.environment
        else settings.environment,
        scope=snapshot.fingerprint_scope(settings.fingerprint_scope),
    )


def _locked(conn: Conn, settings: Settings, emit: Emit) -> AbstractContextManager[None]:
    """The run-wide advisory lock, telling who holds it while this run waits."""
    return ledger_lock(
        conn,
        settings.ledger_schema,
        settings.lock_timeout,
        lambda holder: emit(Waiting(holder)),
    )
