"""One function per user action; the public surface of chainops.

Front ends build Settings, call one of these and render the result with `report`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from chainops import chain, ledger, runner
from chainops.chain import Block, Finding
from chainops.config import Settings, describe_database
from chainops.errors import ConfigError, DriftError
from chainops.files import MigrationFile, discover


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


Event = runner.Event | EmbeddedStarted | BackedUp
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
    from chainops import db

    database = resolve_database(settings, on_event)
    conn = db.connect(database.conninfo, purpose)
    try:
        yield conn, database
    finally:
        conn.close()


def load_files(settings: Settings) -> list[MigrationFile]:
    """Discover the migration files, refusing bad ones before any database work."""
    return discover(settings.migrations_dir)


def apply(
    settings: Settings,
    *,
    allow_out_of_order: bool = False,
    resume: bool = False,
    dry_run: bool = False,
    backup: bool | None = None,
    on_event: OnEvent | None = None,
) -> runner.ApplyResult:
    """Verify the chain and apply every pending migration.

    `backup` defaults to on in production: a pg_dump before anything is applied.
    """
    files = load_files(settings)
    options = runner.Options(allow_out_of_order, resume, dry_run)
    with _connected(settings, "migrate", on_event) as (conn, database):
        want_backup = settings.is_production if backup is None else backup

        def before_apply(pending: Sequence[MigrationFile]) -> None:
            if want_backup:
                _backup(conn, database, settings, pending[0], on_event)

        return runner.apply(conn, settings, files, options, on_event, before_apply)


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
    findings = runner.verify_state(state, files)
    problems = {
        f.path: f.kind for f in findings if f.kind in ("changed", "missing", "renamed")
    }
    attempts = {a.number: a for a in state.attempts}
    entries: list[Entry] = []
    for block in state.blocks:
        kind = problems.get(block.path)
        entries.append(
            Entry(
                block.number,
                block.path,
                {"changed": "changed"}.get(
                    kind or "", "missing" if kind else "applied"
                ),
                block.applied_at,
                block,
            )
        )
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

    @property
    def ok(self) -> bool:
        return not self.findings


def verify(settings: Settings, on_event: OnEvent | None = None) -> VerifyReport:
    """Check every applied file and every chain link without applying anything."""
    files = load_files(settings)
    with _connected(settings, "verify", on_event) as (conn, _):
        state = ledger.read_state(conn, settings.ledger_schema)
    findings = runner.verify_state(state, files)
    return VerifyReport(
        tuple(findings), chain.head_hash(state.blocks), len(state.blocks), len(files)
    )


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
