"""One function per user verb; the public surface of chainops.

Front ends build Settings, resolve the target database once with `target`, call one
of these and render the result with `report`. Every verb that reads or writes a
database takes a Target, so one caller can drive many databases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from chainops import plan
from chainops import verify as verifier
from chainops.config import Settings, describe_database
from chainops.errors import ChainopsError, ConfigError, DriftError, MigrationFileError
from chainops.events import (
    BackedUp,
    EmbeddedStarted,
    Event,
    LockStale,
    SchemaFileWritten,
)
from chainops.model import (
    GENESIS,
    Finding,
    FindingKind,
    MigrationFile,
    Options,
    Target,
)
from chainops.results import (
    ApplyResult,
    Created,
    LockReport,
    StatusReport,
    VerifyReport,
)
from chainops.source import lockfile
from chainops.source.files import discover
from chainops.store import connection, ledger
from chainops.store.connection import Conn

OnEvent = Callable[[Event], None]
SCHEMA_FILE = "schema.sql"


def ignore_events(_event: Event) -> None:
    """The default `on_event`: a caller that shows nothing."""


def open_session(where: Target, purpose: str) -> AbstractContextManager[Conn]:
    """A connection to the target for one verb; server refusals become one line."""
    return connection.session(
        where.conninfo, where.description, purpose, where.settings.ledger_schema
    )


def target(settings: Settings, on_event: OnEvent = ignore_events) -> Target:
    """DATABASE_URL, libpq's PG* variables, or the project-local embedded server."""
    if settings.database_url:
        url = settings.database_url
        return Target(settings, url, describe_database(url))
    if settings.uses_libpq_env:
        return Target(settings, "", describe_database(""))
    if settings.is_production:
        raise ConfigError(
            "DATABASE_URL is not set; production never falls back to the embedded "
            "database, so set DATABASE_URL"
        )
    from chainops.store import server

    embedded = server.ensure_running(settings.project_root)
    if embedded.started:
        root = settings.project_root
        data_dir = embedded.data_dir
        shown = (
            data_dir.relative_to(root) if data_dir.is_relative_to(root) else data_dir
        )
        on_event(EmbeddedStarted(str(shown), embedded.version))
    return Target(
        settings, embedded.conninfo, f"embedded PostgreSQL {embedded.version}"
    )


def load_files(settings: Settings) -> list[MigrationFile]:
    """Discover the migration files, refusing bad ones before any database work."""
    return discover(settings.migrations_dir)


def check_lock(
    settings: Settings, files: Sequence[MigrationFile], on_event: OnEvent
) -> None:
    """Production applies only locked files; elsewhere a stale lock is a warning
    (given to `on_event`)."""
    try:
        lock = lockfile.read_lock(settings.migrations_dir)
    except MigrationFileError as err:
        if settings.is_production:
            raise
        findings = [Finding(FindingKind.LOCK, lockfile.LOCK_NAME, str(err))]
    else:
        production = settings.is_production
        findings = (
            verifier.verify_lock(lock, files, created_ok=not production) if lock else []
        )
    if findings and settings.is_production:
        raise lockfile.mismatch(findings)
    if findings:
        on_event(LockStale(tuple(findings)))


def apply(
    where: Target,
    *,
    allow_out_of_order: bool = False,
    resume: bool = False,
    dry_run: bool = False,
    backup: bool | None = None,
    accept_drift: bool = False,
    on_event: OnEvent = ignore_events,
    files: Sequence[MigrationFile] | None = None,
) -> ApplyResult:
    """Verify the chain and apply every pending migration.

    `backup` defaults to on in production: a pg_dump before anything is applied.
    `files` applies a snapshot the caller has read and checked (the watcher) instead
    of the folder as it is now; chain.lock is still compared with the folder.
    """
    from chainops import execute  # and the store's write side: not for status, verify

    settings = where.settings
    found = load_files(settings)
    warnings: list[Event] = []
    check_lock(settings, found, warnings.append)  # production refuses here
    options = Options(allow_out_of_order, resume, dry_run, accept_drift)
    want_backup = settings.is_production if backup is None else backup
    with open_session(where, "migrate") as conn:

        def before_apply(pending: Sequence[MigrationFile]) -> None:
            if want_backup:
                _backup(conn, where, pending[0], on_event)

        result = execute.migrate(
            conn,
            settings,
            found if files is None else files,
            options,
            on_event,
            before_apply,
            # A stale lock is worth a warning only once the chain verified: an
            # edited applied file is then told once, as the refusal.
            verified=partial(_emit_all, warnings, on_event),
        )
    schema_file = settings.migrations_dir / SCHEMA_FILE
    if (
        result.applied
        and settings.environment == "development"
        and schema_file.exists()
    ):
        _refresh_schema_file(where, on_event)
    return result


def _emit_all(events: Sequence[Event], on_event: OnEvent) -> None:
    for event in events:
        on_event(event)


def _refresh_schema_file(where: Target, on_event: OnEvent) -> None:
    """Keep schema.sql beside the migrations; a failure warns, the files are applied."""
    try:
        changed = db_schema(where)
    except ChainopsError as err:
        on_event(SchemaFileWritten(SCHEMA_FILE, str(err)))
        return
    if changed:
        on_event(SchemaFileWritten(SCHEMA_FILE))


def db_schema(where: Target) -> bool:
    """Write migrations/schema.sql (pg_dump --schema-only); True if it changed."""
    from chainops.store import dump

    settings = where.settings
    return dump.write_schema_file(
        where.conninfo, settings.migrations_dir / SCHEMA_FILE, settings.ledger_schema
    )


def _backup(conn: Conn, where: Target, first: MigrationFile, on_event: OnEvent) -> None:
    from chainops.store import dump

    settings = where.settings
    path = dump.create(
        where.conninfo,
        settings.project_root,
        conn.info.dbname,
        conn.info.server_version // 10000,
        str(first.number),
        settings.backup_keep,
    )
    shown = path.relative_to(settings.project_root)
    on_event(BackedUp(str(shown), dump.restore_command(shown)))


def baseline(
    where: Target, through: int, on_event: OnEvent = ignore_events
) -> ApplyResult:
    """Adopt an existing database: record blocks up to #`through`, running nothing."""
    from chainops import execute

    files = load_files(where.settings)
    with open_session(where, "baseline") as conn:
        return execute.baseline(conn, where.settings, files, through, on_event)


def reset_dev(
    where: Target,
    confirm: Callable[[str], bool],
    *,
    migrate: bool = False,
    on_event: OnEvent = ignore_events,
) -> tuple[list[str], ApplyResult | None]:
    """Wipe a development database (refused in production), optionally re-migrate."""
    from chainops.store import reset

    reset.refuse_locally(where.settings)
    with open_session(where, "reset") as conn:
        dropped = reset.reset(conn, where.settings, where.description, confirm)
    return dropped, (apply(where, on_event=on_event) if migrate else None)


def status(where: Target) -> StatusReport:
    """Every migration with its state, plus the chain head."""
    files = load_files(where.settings)
    with open_session(where, "status") as conn:
        snapshot = ledger.read_snapshot(conn, where.settings.ledger_schema)
    plan.refuse_old_format(snapshot)
    findings = verifier.verify(snapshot, files)
    return StatusReport(
        plan.entries(snapshot, files, findings),
        tuple(findings),
        snapshot.head,
        snapshot.height,
    )


def verify_files(settings: Settings) -> VerifyReport:
    """Check the files against chain.lock alone, offline (a pre-commit hook)."""
    files = load_files(settings)
    lock = lockfile.read_lock(settings.migrations_dir)
    if lock is None:
        raise ConfigError(
            f"the migrations folder has no {lockfile.LOCK_NAME}; run "
            "inv migrate.lock to create it, then commit it with the migrations"
        )
    problems = verifier.verify_lock(lock, files)
    return VerifyReport(
        tuple(problems), GENESIS, 0, len(files), lock.head, files_only=True
    )


def verify(where: Target, digest_file: Path | None = None) -> VerifyReport:
    """Check every applied file, every chain link and the schema, applying nothing.

    With a chain.lock, the blocks are checked against it too (in production the
    files as well); with `digest_file`, the ledger must still hold every digest in it.
    """
    settings = where.settings
    files = load_files(settings)
    lock = lockfile.read_lock(settings.migrations_dir)
    from chainops import digest_files  # the key and log files: only with a digest

    digests = digest_files.read_log(digest_file) if digest_file else None
    with open_session(where, "verify") as conn:
        snapshot = ledger.read_snapshot(conn, settings.ledger_schema)
        plan.refuse_old_format(snapshot)
        from chainops.store import drift

        drifted = drift.detect(
            conn,
            settings.ledger_schema,
            snapshot.blocks,
            snapshot.fingerprint_scope(settings.fingerprint_scope),
        )
        anchor = None
        if digests is not None:  # digest and its identity query only when asked
            from chainops import digest

            identity = ledger.read_identity(conn, settings.ledger_schema)
            key = settings.digest_public_key or settings.digest_key
            anchor = digest.Anchor(tuple(digests), identity, digest_files.read_key(key))
    findings = verifier.verify(
        snapshot,
        files,
        lock=lock,
        strict=settings.is_production,
        drift=drifted,
        anchor=anchor,
        partial=True,
    )
    return VerifyReport(
        tuple(findings),
        snapshot.head,
        snapshot.height,
        len(files),
        lock.head if lock else None,
    )


def digest_line(where: Target) -> str:
    """A JSON digest of the ledger to keep outside the database (`verify --digest`).

    Signed when a digest key is configured. The ledger is verified first: a digest
    of a broken chain would vouch for it.
    """
    settings = where.settings
    files = load_files(settings)
    lock = lockfile.read_lock(settings.migrations_dir)
    from chainops import digest_files

    with open_session(where, "digest") as conn:
        snapshot = ledger.read_snapshot(conn, settings.ledger_schema)
        identity = ledger.read_identity(conn, settings.ledger_schema)
    plan.refuse_old_format(snapshot)
    verifier.raise_findings(verifier.verify(snapshot, files))
    from chainops import digest

    return digest.make(
        snapshot,
        identity,
        lock.head if lock else None,
        datetime.now(timezone.utc),
        digest_files.read_key(settings.digest_key),
    )


def create(settings: Settings, name: str, kind: str, description: str | None = None,
           repeatable: bool = False) -> Created:  # fmt: skip
    """Write the next migration of a type from the template and add it to chain.lock.

    Only the new file's entry is added: a stale lock stays stale for verify to see.
    """
    from chainops.source.template import write_template

    folder, now = settings.migrations_dir, datetime.now(timezone.utc)
    load_files(settings)  # refuse a broken folder before writing anything
    before = lockfile.read_lock(folder)
    path = write_template(folder, kind, name, description, now, repeatable)
    files = load_files(settings)
    rel = path.relative_to(folder).as_posix()
    new = next(f for f in files if f.path == rel)
    lock = lockfile.build(files) if before is None else lockfile.with_file(before, new)
    lockfile.write_lock(folder, lock)
    return Created(path, lock.head, len(lock.entries), before is None)


def lock(settings: Settings) -> LockReport:
    """Rewrite chain.lock from the migration files as they are now."""
    files = load_files(settings)
    try:
        before = lockfile.read_lock(settings.migrations_dir)
    except MigrationFileError:
        before, previous = None, "unreadable"
    else:
        previous = "missing" if before is None else "read"
    new = lockfile.build(files)
    lockfile.write_lock(settings.migrations_dir, new)
    changes = lockfile.compare(before or new, new)
    return LockReport(new.head, len(new.entries), previous, changes)


def check(where: Target) -> None:
    """Raise unless the database is fully migrated and the chain intact.

    For apps that start without `inv dev`: call it at start-up to refuse a stale schema.
    """
    report = status(where)
    verifier.raise_findings(report.findings)
    waiting = [e.path for e in report.waiting]
    if waiting:
        raise DriftError(
            f"{len(waiting)} migrations are not applied ({waiting[0]} first); "
            "run inv migrate"
        )
