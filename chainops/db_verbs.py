"""The `db` verbs: the embedded server's start, stop and URL, and restoring a backup.

Like `api`, one thin function per verb; `migrate` and its kin live there.
"""

from __future__ import annotations

from pathlib import Path

from chainops.api import OnEvent, ignore_events, open_session, target
from chainops.config import Settings
from chainops.errors import ConfigError, Refused
from chainops.events import Waiting
from chainops.model import Target
from chainops.store import ledger
from chainops.store.lock import ledger_lock


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


def db_start(settings: Settings, on_event: OnEvent = ignore_events) -> Target:
    """Start the project-local embedded PostgreSQL (a no-op when it runs)."""
    _embedded_only(settings, "start")
    return target(settings, on_event)


def db_stop(settings: Settings) -> bool:
    """Stop the embedded PostgreSQL; False when it was not running."""
    _embedded_only(settings, "stop")
    from chainops.store import server

    return server.stop(settings.project_root)


def db_url(settings: Settings) -> str:
    """A connection URL for psql or the app, starting the embedded server if needed."""
    _embedded_only(settings, "describe")
    return db_start(settings).conninfo


def db_restore(
    where: Target,
    backup: Path,
    *,
    confirmed: bool = False,
    on_event: OnEvent = ignore_events,
) -> None:
    """Restore a backup over the database under the ledger lock.

    Refused for a production database (by CHAINOPS_ENV or the database's own marker)
    unless `confirmed`.
    """
    from chainops.store import dump

    settings = where.settings
    if not backup.is_file():
        raise ConfigError(
            f"{backup} does not exist; pass a backup file, e.g. from .chainops/backups"
        )
    with (
        open_session(where, "restore") as conn,
        ledger_lock(
            conn,
            settings.ledger_schema,
            settings.lock_timeout,
            lambda holder: on_event(Waiting(holder)),
        ),
    ):
        marked = ledger.read_snapshot(conn, settings.ledger_schema).environment
        if not confirmed and "production" in (settings.environment, marked):
            raise Refused(
                f"{where.description} is a production database and restoring "
                "replaces its contents; pass --yes to confirm, nothing was restored"
            )
        major = conn.info.server_version // 10000
        dump.restore(where.conninfo, backup, major, where.description)
