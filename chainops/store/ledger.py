"""Everything about the `blockchain_migrations` tables; all ledger SQL lives here.

The ledger is a table of blocks (one per applied file), an append-only history of
every attempt, and a metadata table carrying the ledger's own format version.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from chainops.errors import ConfigError
from chainops.model import FORMAT_VERSION, Attempt, Block, LedgerSnapshot, Status
from chainops.store.connection import Conn

TABLE = "blockchain_migrations"
HISTORY = "blockchain_migrations_history"
META = "blockchain_migrations_meta"
TABLES = (TABLE, HISTORY, META)


def names(schema: str) -> dict[str, sql.Composable]:
    return {
        "schema": sql.Identifier(schema),
        "ledger": sql.Identifier(schema, TABLE),
        "history": sql.Identifier(schema, HISTORY),
        "meta": sql.Identifier(schema, META),
    }


_COLUMNS = (
    "height, migration_number, path, hash, hash_algorithm, executed_at, applied_by,"
    " client_host, mode, previous_hash, block_hash, execution_time_ms, status,"
    " error_message, statements_done, statements_total, progress_hash, schema_hash"
)

_READ = (
    "SELECT m.value, (SELECT count(*) FROM {history} WHERE outcome = 'completed'),"
    " (SELECT value FROM {meta} WHERE key = 'environment'), "
    + ", ".join(f"l.{c.strip()}" for c in _COLUMNS.split(","))
    + " FROM {meta} m LEFT JOIN {ledger} l ON true"
    " WHERE m.key = 'format_version' ORDER BY l.height NULLS LAST, l.id"
)


def read_snapshot(conn: Conn, schema: str) -> LedgerSnapshot:
    """Read all rows in one round trip; a missing ledger reads as empty."""
    query = sql.SQL(_READ).format(**names(schema))
    try:
        rows = conn.execute(query).fetchall()
    except psycopg.errors.UndefinedTable:
        return LedgerSnapshot(exists=False)
    except psycopg.errors.InvalidSchemaName:
        return LedgerSnapshot(exists=False)
    except psycopg.errors.UndefinedColumn:  # an older format: upgrade before reading
        version = _read_version(conn, schema)
        if version >= FORMAT_VERSION:
            raise  # not a shape chainops ever wrote
        return LedgerSnapshot(exists=True, format_version=version)
    version = int(str(rows[0][0])) if rows else FORMAT_VERSION
    if version > FORMAT_VERSION:
        raise ConfigError(
            f"the ledger has format {version}, newer than this chainops understands "
            f"({FORMAT_VERSION}); upgrade chainops"
        )
    blocks: list[Block] = []
    attempts: list[Attempt] = []
    # The columns' SQL types already give the Python types the records declare.
    typed: list[tuple[Any, ...]] = rows
    for row in typed:
        (_, _, _, height, number, path, digest, algorithm, at, by, host, mode,
         prev, bhash, ms, status, error, done, total, progress,
         fingerprint) = row  # fmt: skip
        if number is None:
            continue
        if status == Status.COMPLETED:
            blocks.append(
                Block(
                    height=height,
                    number=number,
                    path=path,
                    content_hash=digest,
                    hash_algorithm=algorithm,
                    applied_at=at,
                    applied_by=by,
                    client_host=host,
                    mode=mode,
                    previous_hash=prev,
                    block_hash=bhash,
                    duration_ms=ms,
                    schema_hash=fingerprint,
                )
            )
        else:
            attempts.append(
                Attempt(
                    number=number,
                    path=path,
                    content_hash=digest,
                    status=status,
                    error_message=error,
                    statements_done=done or 0,
                    statements_total=total,
                    progress_hash=progress,
                    attempted_at=at,
                )
            )
    completed = int(str(rows[0][1])) if rows else 0
    environment = str(rows[0][2]) if rows and rows[0][2] is not None else None
    return LedgerSnapshot(
        True, tuple(blocks), tuple(attempts), completed, environment, version
    )


def _read_version(conn: Conn, schema: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT value FROM {} WHERE key = 'format_version'").format(
            sql.Identifier(schema, META)
        )
    ).fetchone()
    return int(str(row[0])) if row else 1


# Each entry upgrades the ledger from that format to the next; blocks are never
# reinterpreted, only new columns are added.
_UPGRADES = {
    1: "ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS schema_hash char(64),"
    " ADD COLUMN IF NOT EXISTS schema_snapshot bytea,"
    " ADD COLUMN IF NOT EXISTS details text",
}


def upgrade(conn: Conn, schema: str, from_version: int) -> None:
    """Bring an older ledger to FORMAT_VERSION (call under the advisory lock)."""
    tables = names(schema)
    with conn.transaction():
        for version in range(from_version, FORMAT_VERSION):
            conn.execute(sql.SQL(_UPGRADES[version]).format(**tables))
        conn.execute(
            sql.SQL(
                "UPDATE {meta} SET value = {v} WHERE key = 'format_version'"
            ).format(v=sql.Literal(str(FORMAT_VERSION)), **tables)
        )


_CREATE = """
CREATE TABLE IF NOT EXISTS {meta} (
    key text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE IF NOT EXISTS {ledger} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    migration_number integer NOT NULL UNIQUE,
    filename varchar(255) NOT NULL,
    path text NOT NULL,
    hash char(64) NOT NULL,
    hash_algorithm text NOT NULL,
    executed_at timestamptz NOT NULL,
    execution_time_ms integer NOT NULL DEFAULT 0,
    status varchar(20) NOT NULL CHECK (status IN ('completed', 'failed', 'running')),
    error_message text,
    height integer UNIQUE,
    previous_hash char(64),
    block_hash char(64) UNIQUE,
    mode text NOT NULL,
    applied_by text NOT NULL,
    client_host text NOT NULL,
    chainops_version text NOT NULL,
    statements_done integer,
    statements_total integer,
    progress_hash char(64),
    schema_hash char(64),
    schema_snapshot bytea,
    details text,
    CHECK ((status = 'completed') = (height IS NOT NULL AND block_hash IS NOT NULL
                                    AND previous_hash IS NOT NULL))
);
CREATE TABLE IF NOT EXISTS {history} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    migration_number integer NOT NULL,
    path text NOT NULL,
    hash char(64) NOT NULL,
    started_at timestamptz NOT NULL,
    execution_time_ms integer,
    outcome text NOT NULL,
    error_message text,
    applied_by text NOT NULL,
    client_host text NOT NULL,
    chainops_version text NOT NULL
);
INSERT INTO {meta} (key, value) VALUES ('format_version', {version})
ON CONFLICT (key) DO NOTHING;
"""


def create(conn: Conn, schema: str) -> None:
    """Create the ledger tables (call under the advisory lock)."""
    tables = names(schema)
    # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
    # exists, which a least-privilege migrator lacks (docs/grants.sql).
    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    if found.fetchone() is None:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(tables["schema"]))
    query = sql.SQL(_CREATE).format(version=sql.Literal(str(FORMAT_VERSION)), **tables)
    conn.execute(query)


def record_schema(
    conn: Conn, schema: str, height: int, schema_hash: str, snapshot: bytes
) -> None:
    """Store the schema fingerprint of the block at `height`, outside its hash."""
    # Literals, not %s parameters: a '%' in the schema name would read as one.
    conn.execute(
        sql.SQL(
            "UPDATE {ledger} SET schema_hash = {hash}, schema_snapshot = {snapshot}"
            " WHERE height = {height}"
        ).format(
            ledger=sql.Identifier(schema, TABLE),
            hash=sql.Literal(schema_hash),
            snapshot=sql.Literal(snapshot),
            height=sql.Literal(height),
        )
    )


def read_schema_snapshot(conn: Conn, schema: str, height: int) -> bytes | None:
    """The compressed snapshot stored with a block; read only to explain drift."""
    row = conn.execute(
        sql.SQL("SELECT schema_snapshot FROM {ledger} WHERE height = {height}").format(
            ledger=sql.Identifier(schema, TABLE), height=sql.Literal(height)
        )
    ).fetchone()
    blob = None if row is None else row[0]
    return bytes(blob) if isinstance(blob, (bytes, memoryview)) else None


def read_progress(conn: Conn, schema: str, number: int) -> tuple[str, int] | None:
    """The status and recorded statements of one migration's row, if it has one."""
    row = conn.execute(
        sql.SQL(
            "SELECT status, coalesce(statements_done, 0) FROM {ledger}"
            " WHERE migration_number = {number}"
        ).format(ledger=sql.Identifier(schema, TABLE), number=sql.Literal(number))
    ).fetchone()
    return None if row is None else (str(row[0]), int(str(row[1])))


def mark_environment(conn: Conn, schema: str, environment: str) -> None:
    """Record which environment migrates this database; production is never downgraded.

    Like Rails' ar_internal_metadata: destructive commands trust the database's own
    marker over whatever the local configuration claims.
    """
    conn.execute(
        sql.SQL(
            "INSERT INTO {meta} AS m (key, value) VALUES ('environment', {env})"
            " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            " WHERE m.value <> 'production' AND m.value <> EXCLUDED.value"
        ).format(meta=sql.Identifier(schema, META), env=sql.Literal(environment))
    )


def session_user(conn: Conn) -> str:
    row = conn.execute("SELECT session_user").fetchone()
    return str(row[0]) if row else "?"


_HAS_TABLES = (
    "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n"
    " ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
    " AND left(n.nspname, 3) <> 'pg_' AND n.nspname <> 'information_schema'"
    " AND NOT (n.nspname = %s AND c.relname = ANY(%s)))"
)


def has_user_tables(conn: Conn, schema: str) -> bool:
    """Whether the database holds a table or view besides the ledger's own."""
    row = conn.execute(_HAS_TABLES, (schema, list(TABLES))).fetchone()
    return bool(row and row[0])
