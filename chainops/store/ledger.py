"""Everything about the `blockchain_migrations` tables; all ledger SQL lives here:
a table of blocks (one per applied file), an append-only history of every attempt,
and a metadata table carrying the ledger's own format version."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from chainops.errors import ConfigError
from chainops.model import (
    FORMAT_VERSION,
    LEDGER_TABLES,
    Attempt,
    Block,
    HistoryRow,
    LedgerSnapshot,
    Status,
)
from chainops.store.connection import Conn, is_idle

if TYPE_CHECKING:
    from chainops.digest import Identity

TABLES = LEDGER_TABLES
TABLE, HISTORY, META = TABLES


def names(schema: str) -> dict[str, sql.Composable]:
    return {
        "schema": sql.Identifier(schema),
        "ledger": sql.Identifier(schema, TABLE),
        "history": sql.Identifier(schema, HISTORY),
        "meta": sql.Identifier(schema, META),
    }


# Times are read as text in UTC, so neither the database's DateStyle nor its TimeZone
# changes what chainops reads (a DMY DateStyle would otherwise break the parse).
_UTC = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
_GUARDS = """
SELECT c.relname, c.relkind, c.relrowsecurity, array(
    SELECT 'rule ' || quote_ident(r.rulename) FROM pg_rewrite r WHERE r.ev_class = c.oid
    UNION ALL
    SELECT 'trigger ' || quote_ident(t.tgname) FROM pg_trigger t
    WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT 'policy ' || quote_ident(p.polname) FROM pg_policy p
    WHERE p.polrelid = c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = {schema_name} AND c.relname = ANY({tables})
"""
_ROWS = (
    "SELECT key, value FROM {meta} ORDER BY key;"
    " SELECT height, migration_number, path, hash, hash_algorithm, "
    + _UTC.format("executed_at")
    + ", applied_by, client_host, mode, previous_hash, block_hash, execution_time_ms,"
    " status, error_message, statements_done, statements_total, progress_hash,"
    " schema_hash, details, filename, block_format, sealed_schema"
    " FROM {ledger} ORDER BY height NULLS LAST, id;"
    " SELECT migration_number, path, hash, outcome, applied_by, client_host, "
    + _UTC.format("started_at")
    + " FROM {history} WHERE outcome <> 'failed' ORDER BY id"
)


_time = datetime.fromisoformat  # "+00:00": aware, in UTC; no wrapper call per row


def read_snapshot(conn: Conn, schema: str, tries: int = 3) -> LedgerSnapshot:
    """Read the ledger tables whole, and what guards them, in one round trip. A
    ledger missing in part reads as the tables that remain, for verify to judge;
    one that another run created meanwhile is read again."""
    guards = sql.SQL(_GUARDS).format(
        schema_name=sql.Literal(schema), tables=sql.Literal(list(TABLES))
    )
    rows = sql.SQL(_ROWS).format(**names(schema))
    # One snapshot for all four reads: another run committing a block between
    # them would otherwise show its history row without its block.
    own = is_idle(conn)
    parts = [guards, sql.SQL(";"), rows]
    if own:
        parts = [sql.SQL(_CONSISTENT), *parts, sql.SQL("; COMMIT")]
    try:
        cursor = conn.execute(sql.Composed(parts))
        if own:
            cursor.nextset()  # past BEGIN
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        _roll_back(conn)
        found = _partial(conn.execute(guards).fetchall())
        if found.tables == frozenset(TABLES) and tries > 1:
            return read_snapshot(conn, schema, tries - 1)  # created just now
        return found
    except psycopg.errors.UndefinedColumn:  # an older format: upgrade before reading
        _roll_back(conn)
        version = _read_version(conn, schema)
        if version >= FORMAT_VERSION:
            raise  # not a shape chainops ever wrote
        meta: tuple[tuple[str, str], ...] = (("format_version", str(version)),)
        return LedgerSnapshot(
            True, meta=meta, tables=frozenset(TABLES), shape_version=version
        )
    tables, guarded = _guards(cursor.fetchall())
    if tables != frozenset(TABLES) and tries > 1:
        # The tables' names resolve with the newest catalog, but the transaction's
        # snapshot predates them: another run created the ledger just now.
        return read_snapshot(conn, schema, tries - 1)
    cursor.nextset()
    meta = tuple((str(k), str(v)) for k, v in cursor.fetchall())
    newer = next((v for k, v in meta if k == "format_version"), "")
    if newer.isdigit() and int(newer) > FORMAT_VERSION:
        raise ConfigError(
            f"the ledger has format {newer}, newer than this chainops understands "
            f"({FORMAT_VERSION}); upgrade chainops"
        )
    cursor.nextset()
    blocks, attempts = _rows(cursor.fetchall())
    cursor.nextset()
    history = tuple(
        HistoryRow(
            int(str(n)), str(p), str(h), str(o), str(by), str(host), _time(str(at))
        )
        for n, p, h, o, by, host, at in cursor.fetchall()  # one call, not one a row
    )
    return LedgerSnapshot(True, blocks, attempts, history, meta, tables, guarded)


_CONSISTENT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"


def _roll_back(conn: Conn) -> None:
    """End the read's own transaction, which the failed statement aborted."""
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
        conn.execute("ROLLBACK")


def _guards(rows: list[tuple[object, ...]]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The ledger tables present, and every rule, trigger and policy on them."""
    tables: set[str] = set()
    guards: list[str] = []
    for name, kind, row_security, found in rows:
        tables.add(str(name))
        if kind != "r":
            guards.append(f"{name} is not a table (relkind {kind})")
        if row_security:
            guards.append(f"row level security on {name}")
        guards += [f"{item} on {name}" for item in found]  # type: ignore[attr-defined]
    return frozenset(tables), tuple(guards)


def _partial(rows: list[tuple[object, ...]]) -> LedgerSnapshot:
    tables, guards = _guards(rows)
    return LedgerSnapshot(bool(tables), tables=tables, guards=guards)


def _rows(rows: list[tuple[Any, ...]]) -> tuple[tuple[Block, ...], tuple[Attempt, ...]]:
    blocks: list[Block] = []
    attempts: list[Attempt] = []
    # The columns' SQL types already give the Python types the records declare.
    for row in rows:
        (height, number, path, digest, algorithm, at, by, host, mode, prev,
         bhash, ms, status, error, done, total, progress, fingerprint,
         details, filename, block_format, sealed) = row  # fmt: skip
        if status == Status.COMPLETED:
            blocks.append(
                Block(
                    height=height,
                    number=number,
                    path=path,
                    content_hash=digest,
                    hash_algorithm=algorithm,
                    applied_at=_time(at),
                    applied_by=by,
                    client_host=host,
                    mode=mode,
                    previous_hash=prev,
                    block_hash=bhash,
                    duration_ms=ms,
                    schema_hash=fingerprint,
                    block_format=block_format,
                    sealed_schema=sealed,
                    details=details,
                    stored_filename=filename,
                    error_message=error,
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
                    attempted_at=_time(at),
                )
            )
    return tuple(blocks), tuple(attempts)


def _read_version(conn: Conn, schema: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT value FROM {} WHERE key = 'format_version'").format(
            sql.Identifier(schema, META)
        )
    ).fetchone()
    return int(str(row[0])) if row else 1


_ATTEMPT_INDEX = """
CREATE UNIQUE INDEX IF NOT EXISTS blockchain_migrations_attempt_number
ON {ledger} (migration_number) WHERE status <> 'completed';"""  # attempts: 1 per number
# Each entry upgrades the ledger from that format to the next; blocks are never
# reinterpreted, only columns added (or, 3 to 4, a number let repeat among blocks).
_UPGRADES = {
    1: "ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS schema_hash char(64),"
    " ADD COLUMN IF NOT EXISTS schema_snapshot bytea,"
    " ADD COLUMN IF NOT EXISTS details text",
    # Blocks written from now on seal the fingerprint; the older ones keep format 1.
    2: "ALTER TABLE {ledger} ADD COLUMN IF NOT EXISTS block_format smallint"
    " NOT NULL DEFAULT 1, ADD COLUMN IF NOT EXISTS sealed_schema char(64)",
    3: "ALTER TABLE {ledger} DROP CONSTRAINT IF EXISTS"
    " blockchain_migrations_migration_number_key; " + _ATTEMPT_INDEX,
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
    migration_number integer NOT NULL,
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
    block_format smallint NOT NULL DEFAULT 1,
    sealed_schema char(64),
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


def create(conn: Conn, schema: str, scope: str | None = None) -> None:
    """Create the ledger tables (call under the advisory lock); `scope`, the one
    schema a tenant's fingerprint covers, is recorded with them."""
    tables = names(schema)
    # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
    # exists, which a least-privilege migrator lacks (docs/grants.sql).
    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    if found.fetchone() is None:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(tables["schema"]))
    version = sql.Literal(str(FORMAT_VERSION))
    conn.execute(sql.SQL(_CREATE + _ATTEMPT_INDEX).format(version=version, **tables))
    if scope is not None:
        conn.execute(
            sql.SQL(
                "INSERT INTO {meta} (key, value) VALUES ('fingerprint_scope', {scope})"
                " ON CONFLICT (key) DO NOTHING"
            ).format(scope=sql.Literal(scope), **tables)
        )


def record_schema(
    conn: Conn, schema: str, height: int, schema_hash: str, snapshot: bytes
) -> None:
    """Store the schema fingerprint of a block that sealed none (its run stopped
    early), beside its hash: the drift reference until the next run seals one."""
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


def mark_environment(schema: str, environment: str) -> sql.Composed:
    """SQL that records which environment migrates this database; production is
    never downgraded. Sent with a block, so only a ledger that holds one is marked.
    Like Rails' ar_internal_metadata: destructive commands trust the database's own
    marker over whatever the local configuration claims."""
    return sql.SQL(
        "INSERT INTO {meta} AS m (key, value) VALUES ('environment', {env})"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        " WHERE m.value <> 'production' AND m.value <> EXCLUDED.value;"
    ).format(meta=sql.Identifier(schema, META), env=sql.Literal(environment))


def session_user(conn: Conn) -> str:
    row = conn.execute("SELECT session_user").fetchone()
    return str(row[0]) if row else "?"


_IDENTITY = (
    "SELECT current_database(), CASE WHEN has_function_privilege("
    "'pg_catalog.pg_control_system()', 'EXECUTE') THEN"
    " (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) END"
)


def read_identity(conn: Conn, schema: str) -> Identity:
    """The database and cluster a digest of this ledger speaks for."""
    from chainops.digest import Identity  # off the no-op path, which reads no digest

    row = conn.execute(_IDENTITY).fetchone()
    database, system = row if row else ("?", None)
    return Identity(str(database), schema, None if system is None else str(system))


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
