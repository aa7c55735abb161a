"""Wipe a development database, guarded by the environment markers it keeps: the
marker of every ledger in it, whatever schema the local settings name.

The check and the drop happen under the ledger's advisory lock and in one
transaction, so the marker cannot change in between and nothing is half-dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg import sql

from chainops.config import Settings
from chainops.errors import Refused
from chainops.model import LedgerSnapshot
from chainops.store import ledger
from chainops.store.connection import Conn
from chainops.store.lock import ledger_lock

RESETTABLE = ("development", "test")

_USER_SCHEMAS = (
    "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
    " AND nspname <> 'information_schema' ORDER BY nspname"
)
_LEDGER_SCHEMAS = (
    "SELECT DISTINCT n.nspname FROM pg_class c JOIN pg_namespace n"
    " ON n.oid = c.relnamespace WHERE c.relname = ANY(%s) ORDER BY 1"
)
_HAS_TABLES = (
    "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n"
    " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm')"
    " AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema')"
)


def refuse_locally(settings: Settings) -> None:
    if settings.is_production:
        raise Refused(
            "CHAINOPS_ENV is production; inv db.reset-dev never runs in production, "
            "nothing was dropped"
        )


def check_markers(conn: Conn, where: str) -> None:
    """Refuse unless every ledger in the database says it is a development or test
    database: one ledger's marker does not speak for a schema another migrates."""
    schemas = [
        str(row[0])
        for row in conn.execute(_LEDGER_SCHEMAS, (list(ledger.TABLES),)).fetchall()
    ]
    if not schemas:
        row = conn.execute(_HAS_TABLES).fetchone()
        if row and row[0]:
            raise Refused(
                f"{where} has tables but no chainops ledger, so chainops did not "
                "build it; nothing was dropped"
            )
    for schema in schemas:
        _check_marker(ledger.read_snapshot(conn, schema), schema, where)


def _check_marker(state: LedgerSnapshot, schema: str, where: str) -> None:
    environment = state.environment
    if environment is not None and environment not in RESETTABLE:
        raise Refused(
            f"{where} is marked as a {environment} database (the ledger in schema "
            f"{schema}); inv db.reset-dev only resets development and test databases, "
            "nothing was dropped"
        )
    if environment is None and (state.blocks or state.history or state.guards):
        raise Refused(
            f"{where} has a ledger in schema {schema} that holds blocks but no "
            "environment marker, so it may not be a development database and its "
            "ledger was tampered with; nothing was dropped, run inv migrate.verify"
        )


def reset(
    conn: Conn,
    settings: Settings,
    where: str,
    confirm: Callable[[str], bool],
) -> list[str]:
    """Drop every user schema (the ledger's too) and recreate an empty `public`.

    Returns the dropped schemas. `confirm` sees the database's description and may
    decline, which refuses.
    """
    refuse_locally(settings)
    with ledger_lock(conn, settings.ledger_schema, settings.lock_timeout):
        check_markers(conn, where)
        if not confirm(where):
            raise Refused(f"reset of {where} cancelled; nothing was dropped")
        with conn.transaction():
            schemas = [str(r[0]) for r in conn.execute(_USER_SCHEMAS).fetchall()]
            for name in schemas:
                conn.execute(
                    sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name))
                )
            conn.execute("CREATE SCHEMA public")
            conn.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
            conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
            if conn.info.server_version < 150000:  # PostgreSQL 14's default
                conn.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        return schemas
