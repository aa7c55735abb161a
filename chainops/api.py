"""One function per user action; the public surface of chainops.

Front ends build Settings, call one of these and render the result with `report`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from chainops import chain, ledger, lockfile, runner
from chainops.chain import Block, Finding
from chainops.config import Settings, describe_database
from chainops.errors import ConfigError, DriftError, MigrationFileError
from chainops.files import MigrationFile, discover, write_template


@dataclass(frozen=True)
class EmbeddedStarted:
    """Event: chainops started the project-local PostgreSQL server."""

    data_dir: str
    version: str


@dataclass(frozen=True)
class BackedUp:
    """Event: a backup was written before applying."""

    path: str
    restore: str


@dataclass(frozen=True)
class LockStale:
    """Event: the files differ from chain.lock; outside production they apply anyway."""

    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class SchemaFileWritten:
    """Event: migrations/schema.sql was rewritten (or could not be)."""

    path: str
    error: str | None = None


Event = runner.Event | EmbeddedStarted | BackedUp | SchemaFileWritten | LockStale
OnEvent = Callable[[Event], None]


@dataclass(frozen=True)
class Database:
    conninfo: str
    description: str  # host:port/dbname, never a password


def resolve_database(settings: Settings, on_event: OnEvent | None = None) -> Database:
    """DATABASE_URL, libpq's PG* variables, or the project-local embedded server."""
    if settings.database_url:
        url = settings.database_url
        return Database(url, describe_database(url))
    if settings.uses_libpq_env:
        return Database("", describe_database(""))
    if settings.is_production:
        raise ConfigError(
            "DATABASE_URL is not set; production never falls back to the embedded "
            "database, so set DATABASE_URL"
        )
    from chainops import server

    embedded = server.ensure_running(settings.project_root)
    if embedded.started and on_event is not None:
        rel = (
            embedded.data_dir.relative_to(settings.project_root)
            if (embedded.data_dir.is_relative_to(settings.project_root))
            else embedded.data_dir
        )
        on_event(EmbeddedStarted(str(rel), embedded.version))
    return Database(embedded.conninfo, f"embedded PostgreSQL {embedded.version}")


def _embedded_only(settings: Settings, action: str) -> None:
    if settings.database_url or settings.uses_libpq_env:
        raise ConfigError(
            f"DATABASE_URL is set, so there is no embedded server to {action}; "
            "unset DATABASE_URL to use the embedded PostgreSQL"
        )
    if settings.is_production:
        raise ConfigError(
            "CHAINOPS_ENV is production, which never uses the embedded server; "
            "set DATABASE_URL"
        )


def db_start(settings: Settings, on_event: OnEvent | None = None) -> Database:
    """Start the project-local embedded PostgreSQL (a no-op when it runs)."""
    _embedded_only(settings, "start")
    return resolve_database(settings, on_event)


def db_stop(settings: Settings) -> bool:
    """Stop the embedded PostgreSQL; False when it was not running."""
    _embedded_only(settings, "stop")
    from chainops import server

    return server.stop(settings.project_root)


def db_url(settings: Settings) -> str:
    """A connection URL for psql or the app, starting the embedded server if needed."""
    _embedded_only(settings, "describe")
    return db_start(settings).conninfo


@contextmanager
def _connected(
    settings: Settings, purpose: str, on_event: OnEvent | None
) -> Iterator[tuple[ledger.Conn, Database]]:
    import psycopg

    from chainops import db

    database = resolve_database(settings, on_event)
    conn = db.connect(database.conninfo, purpose)
    try:
        yield conn, database
    except psycopg.OperationalError as err:
        if not conn.broken:
            raise
        # Lost between migrations (a failure inside one is reported by the applier).
        raise db.connection_lost(database.description, purpose, err) from err
    finally:
        conn.close()


def load_files(settings: Settings) -> list[MigrationFile]:
    """Discover the migration files, refusing bad ones before any database work."""
    return discover(settings.migrations_dir)


def _read_lock(settings: Settings) -> lockfile.Lock | None:
    """Read chain.lock from the migrations folder; None when there is none."""
    try:
        data = (settings.migrations_dir / lockfile.LOCK_NAME).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise MigrationFileError(
            f"{lockfile.LOCK_NAME} cannot be read ({err.strerror}); check its "
            "permissions"
        ) from err
    return lockfile.parse(data.decode("utf-8", "replace"))


def _write_lock(settings: Settings, lock: lockfile.Lock) -> None:
    path = settings.migrations_dir / lockfile.LOCK_NAME
    temporary = path.with_name(f".{lockfile.LOCK_NAME}.tmp")  # hidden: never a file
    temporary.write_text(lockfile.render(lock), encoding="utf-8", newline="\n")
    temporary.replace(path)  # atomic: a reader sees the old lock or the new one


def _check_lock(
    settings: Settings, files: Sequence[MigrationFile], on_event: OnEvent | None
) -> None:
    """Production applies only locked files; elsewhere a stale lock is a warning."""
    try:
        lock = _read_lock(settings)
    except MigrationFileError as err:
        if settings.is_production:
            raise
        findings = [Finding("lock", lockfile.LOCK_NAME, str(err))]
    else:
        findings = lockfile.verify_files(lock, files) if lock else []
    if findings and settings.is_production:
        raise lockfile.mismatch(findings)
    if findings and on_event is not None:
        on_event(LockStale(tuple(findings)))


def apply(
    settings: Settings,
    *,
    allow_out_of_order: bool = False,
    resume: bool = False,
    dry_run: bool = False,
    backup: bool | None = None,
    accept_drift: bool = False,
    on_event: OnEvent | None = None,
    files: Sequence[MigrationFile] | None = None,
) -> runner.ApplyResult:
    """Verify the chain and apply every pending migration.

    `backup` defaults to on in production: a pg_dump before anything is applied.
    `files` applies a snapshot the caller has read and checked (the watcher) instead
    of the folder as it is now; chain.lock is still compared with the folder.
    """
    found = load_files(settings)
    _check_lock(settings, found, on_event)
    files = found if files is None else files
    options = runner.Options(allow_out_of_order, resume, dry_run, accept_drift)
    with _connected(settings, "migrate", on_event) as (conn, database):
        want_backup = settings.is_production if backup is None else backup

        def before_apply(pending: Sequence[MigrationFile]) -> None:
            if want_backup:
                _backup(conn, database, settings, pending[0], on_event)

        result = runner.apply(conn, settings, files, options, on_event, before_apply)
    schema_file = settings.migrations_dir / SCHEMA_FILE
    if (
        result.applied
        and settings.environment == "development"
        and schema_file.exists()
    ):
        _refresh_schema_file(settings, database, on_event)
    return result


SCHEMA_FILE = "schema.sql"


def _refresh_schema_file(
    settings: Settings, database: Database, on_event: OnEvent | None
) -> None:
    """Keep schema.sql beside the migrations; a failure warns, the files are applied."""
    from chainops.errors import ChainopsError

    try:
        changed = db_schema(settings, database)
    except ChainopsError as err:
        if on_event is not None:
            on_event(SchemaFileWritten(SCHEMA_FILE, str(err)))
        return
    if changed and on_event is not None:
        on_event(SchemaFileWritten(SCHEMA_FILE))


def db_schema(settings: Settings, database: Database | None = None) -> bool:
    """Write migrations/schema.sql (pg_dump --schema-only); True if it changed."""
    from chainops import schema_dump

    target = database or resolve_database(settings)
    return schema_dump.write_schema_file(
        target.conninfo, settings.migrations_dir / SCHEMA_FILE, settings.ledger_schema
    )


def _backup(
    conn: ledger.Conn,
    database: Database,
    settings: Settings,
    first: MigrationFile,
    on_event: OnEvent | None,
) -> None:
    from chainops import backup

    path = backup.create(
        database.conninfo,
        settings.project_root,
        conn.info.dbname,
        conn.info.server_version // 10000,
        str(first.number),
        settings.backup_keep,
    )
    if on_event is not None:
        shown = path.relative_to(settings.project_root)
        on_event(BackedUp(str(shown), backup.restore_command(shown)))


def baseline(
    settings: Settings, through: int, on_event: OnEvent | None = None
) -> runner.ApplyResult:
    """Adopt an existing database: record blocks up to #`through`, running nothing."""
    files = load_files(settings)
    with _connected(settings, "baseline", on_event) as (conn, _):
        return runner.baseline(conn, settings, files, through, on_event)


def reset_dev(
    settings: Settings,
    confirm: Callable[[str], bool],
    *,
    migrate: bool = False,
    on_event: OnEvent | None = None,
) -> tuple[list[str], runner.ApplyResult | None]:
    """Wipe a development database (refused in production), optionally re-migrate."""
    from chainops import reset

    reset.refuse_locally(settings)
    with _connected(settings, "reset", on_event) as (conn, database):
        dropped = reset.reset(conn, settings, database.description, confirm)
    return dropped, (apply(settings, on_event=on_event) if migrate else None)


@dataclass(frozen=True)
class Entry:
    """One line of status: a file, a block, or both."""

    number: int
    path: str
    state: str  # applied, pending, failed, running, changed, missing
    applied_at: datetime | None = None
    block: Block | None = None
    error: str | None = None


@dataclass(frozen=True)
class StatusReport:
    entries: tuple[Entry, ...]
    findings: tuple[Finding, ...]
    head: str
    height: int

    def count(self, *states: str) -> int:
        return sum(1 for e in self.entries if e.state in states)


def status(settings: Settings, on_event: OnEvent | None = None) -> StatusReport:
    """Every migration with its state, plus the chain head."""
    files = load_files(settings)
    with _connected(settings, "status", on_event) as (conn, _):
        state = ledger.read_state(conn, settings.ledger_schema)
    runner.refuse_old_format(state)
    findings = runner.verify_state(state, files)
    file_state = {"changed": "changed", "missing": "missing", "renamed": "missing"}
    problems = {f.path: file_state[f.kind] for f in findings if f.kind in file_state}
    attempts = {a.number: a for a in state.attempts}
    entries = [
        Entry(b.number, b.path, problems.get(b.path, "applied"), b.applied_at, b)
        for b in state.blocks
    ]
    for file in chain.find_pending(state.blocks, files):
        attempt = attempts.get(file.number)
        if attempt is None:
            entries.append(Entry(file.number, file.path, "pending"))
        else:
            entries.append(
                Entry(
                    file.number,
                    file.path,
                    attempt.status,
                    attempt.attempted_at,
                    error=attempt.error_message,
                )
            )
    entries.sort(key=lambda e: (e.number, e.path))
    return StatusReport(
        tuple(entries),
        tuple(findings),
        chain.head_hash(state.blocks),
        len(state.blocks),
    )


@dataclass(frozen=True)
class VerifyReport:
    findings: tuple[Finding, ...]
    head: str
    height: int
    files: int
    lock_head: str | None = None  # None without a chain.lock
    files_only: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings


def verify(
    settings: Settings, on_event: OnEvent | None = None, *, files_only: bool = False
) -> VerifyReport:
    """Check every applied file and every chain link without applying anything.

    With a chain.lock, the blocks are checked against it too (in production the
    files as well); `files_only` checks just the files against the lock, offline.
    """
    files = load_files(settings)
    lock = _read_lock(settings)
    if files_only:
        if lock is None:
            raise ConfigError(
                f"the migrations folder has no {lockfile.LOCK_NAME}; run "
                "inv migrate.lock to create it, then commit it with the migrations"
            )
        problems = lockfile.verify_files(lock, files)
        return VerifyReport(
            tuple(problems), chain.GENESIS, 0, len(files), lock.head, True
        )
    with _connected(settings, "verify", on_event) as (conn, _):
        state = ledger.read_state(conn, settings.ledger_schema)
        runner.refuse_old_format(state)
        from chainops import drift

        drifted = drift.detect(conn, settings, state.blocks)
    findings = runner.verify_state(state, files)
    if drifted is not None:
        findings += drifted.findings()
    if lock is not None:
        strict = settings.is_production
        extra = lockfile.verify_ledger(lock, state.blocks, files, strict)
        if strict:
            extra = lockfile.verify_files(lock, files) + extra
        # The lock vouches for a file that matches it: report the block, not the file.
        vouched = {f.path for f in extra if f.kind == "tampered"}
        findings = [
            f for f in findings if f.kind != "changed" or f.path not in vouched
        ] + extra
    return VerifyReport(
        tuple(findings),
        chain.head_hash(state.blocks),
        len(state.blocks),
        len(files),
        lock.head if lock else None,
    )


@dataclass(frozen=True)
class Created:
    path: Path  # the new file
    lock_head: str
    locked: int  # files in chain.lock
    lock_created: bool  # there was no chain.lock: the new one locks every file


def create(
    settings: Settings, name: str, kind: str, description: str | None = None
) -> Created:
    """Write the next migration of a type from the template and add it to chain.lock.

    Only the new file's entry is added: a stale lock stays stale for verify to see.
    """
    load_files(settings)  # refuse a broken folder before writing anything
    before = _read_lock(settings)
    path = write_template(
        settings.migrations_dir, kind, name, description, datetime.now(timezone.utc)
    )
    files = load_files(settings)
    rel = path.relative_to(settings.migrations_dir).as_posix()
    new = next(f for f in files if f.path == rel)
    lock = lockfile.build(files) if before is None else lockfile.with_file(before, new)
    _write_lock(settings, lock)
    return Created(path, lock.head, len(lock.entries), before is None)


@dataclass(frozen=True)
class LockReport:
    head: str
    files: int
    previous: str  # missing, unreadable (e.g. merge conflict markers) or read
    changes: lockfile.Changes


def lock(settings: Settings) -> LockReport:
    """Rewrite chain.lock from the migration files as they are now."""
    files = load_files(settings)
    try:
        before = _read_lock(settings)
    except MigrationFileError:
        before, previous = None, "unreadable"
    else:
        previous = "missing" if before is None else "read"
    new = lockfile.build(files)
    _write_lock(settings, new)
    changes = lockfile.compare(before or new, new)
    return LockReport(new.head, len(new.entries), previous, changes)


def check(settings: Settings) -> None:
    """Raise unless the database is fully migrated and the chain intact.

    For apps that start without `inv dev`: call it at start-up to refuse a stale schema.
    """
    report = status(settings)
    runner.raise_findings(report.findings)
    waiting = [e.path for e in report.entries if e.state != "applied"]
    if waiting:
        raise DriftError(
            f"{len(waiting)} migrations are not applied ({waiting[0]} first); "
            "run inv migrate"
        )
