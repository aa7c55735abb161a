"""Everything about the `blockchain_migrations` tables; all ledger SQL lives here.

The ledger is a table of blocks (one per applied file), an append-only history of
every attempt, and a metadata table carrying the ledger's own format version.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from chainops.chain import Block
from chainops.errors import ConfigError

TABLE = "blockchain_migrations"
HISTORY = "blockchain_migrations_history"
META = "blockchain_migrations_meta"
TABLES = (TABLE, HISTORY, META)
FORMAT_VERSION = 2

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(frozen=True)
class Attempt:
    """A ledger row that is not (yet) a block: a failed or interrupted migration."""

    number: int
    path: str
    content_hash: str
    status: str  # failed or running
    error_message: str | None
    statements_done: int
    statements_total: int | None
    progress_hash: str | None
    attempted_at: datetime


@dataclass(frozen=True)
class LedgerState:
    exists: bool
    blocks: tuple[Block, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    completed_in_history: int = 0  # a deleted newest block still shows up here
    environment: str | None = None  # the marker written by the runs that migrated it
    format_version: int = FORMAT_VERSION

    @property
    def needs_upgrade(self) -> bool:
        return self.exists and self.format_version < FORMAT_VERSION

    @property
    def head(self) -> Block | None:
        return self.blocks[-1] if self.blocks else None


def _names(schema: str) -> dict[str, sql.Composable]:
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


def read_state(conn: Conn, schema: str) -> LedgerState:
    """Read all rows in one round trip; a missing ledger reads as empty."""
    query = sql.SQL(_READ).format(**_names(schema))
    try:
        rows = conn.execute(query).fetchall()
    except psycopg.errors.UndefinedTable:
        return LedgerState(exists=False)
    except psycopg.errors.InvalidSchemaName:
        return LedgerState(exists=False)
    except psycopg.errors.UndefinedColumn:  # an older format: upgrade before reading
        version = _read_version(conn, schema)
        if version >= FORMAT_VERSION:
            raise  # not a shape chainops ever wrote
        return LedgerState(exists=True, format_version=version)
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
        if status == "completed":
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
    return LedgerState(
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
    names = _names(schema)
    with conn.transaction():
        for version in range(from_version, FORMAT_VERSION):
            conn.execute(sql.SQL(_UPGRADES[version]).format(**names))
        conn.execute(
            sql.SQL(
                "UPDATE {meta} SET value = {v} WHERE key = 'format_version'"
            ).format(v=sql.Literal(str(FORMAT_VERSION)), **names)
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
    names = _names(schema)
    # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema
    # exists, which a least-privilege migrator lacks (docs/grants.sql).
    found = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
    if found.fetchone() is None:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(names["schema"]))
    query = sql.SQL(_CREATE).format(version=sql.Literal(str(FORMAT_VERSION)), **names)
    conn.execute(query)


@dataclass(frozen=True)
class Row:
    """What one ledger write needs beyond the block itself."""

    number: int
    path: str
    content_hash: str
    hash_algorithm: str
    started_at: datetime
    duration_ms: int | None  # None: measured by the server, in the same transaction
    mode: str
    applied_by: str
    client_host: str
    version: str


# The transaction began when the message arrived (or at the BEGIN before the file).
_SERVER_DURATION = sql.SQL(
    "(extract(epoch FROM clock_timestamp() - transaction_timestamp()) * 1000)::integer"
)

_DELETE_ATTEMPT = (
    "DELETE FROM {ledger} WHERE migration_number = {number} AND status <> 'completed';"
)
_INSERT_ROW = (
    "INSERT INTO {ledger} (migration_number, filename, path, hash, hash_algorithm,"
    " executed_at, execution_time_ms, status, error_message, height, previous_hash,"
    " block_hash, mode, applied_by, client_host, chainops_version, statements_done,"
    " statements_total, progress_hash, details) VALUES ({number}, {filename}, {path},"
    " {hash}, {algorithm}, {at}, {ms}, {status}, {error}, {height}, {prev}, {bhash},"
    " {mode}, {by}, {host}, {version}, {done}, {total}, {progress}, {details});"
)
_INSERT_HISTORY = (
    "INSERT INTO {history} (migration_number, path, hash, started_at,"
    " execution_time_ms, outcome, error_message, applied_by, client_host,"
    " chainops_version) VALUES ({number}, {path}, {hash}, {at}, {ms}, {outcome},"
    " {error}, {by}, {host}, {version});"
)
_UPDATE_PROGRESS = (
    "UPDATE {ledger} SET statements_done = {done}, progress_hash = {progress}"
    " WHERE migration_number = {number} AND status = 'running';"
)


class _Template:
    """One ledger statement: its table names quoted once, its values slotted in."""

    def __init__(self, text: str, names: dict[str, sql.Composable], conn: Conn):
        self._static: list[bytes] = []  # the SQL between the value fields
        self._fields: list[str] = []
        pending = b""
        for literal, field, _, _ in string.Formatter().parse(text):
            pending += literal.encode()
            if field in names:
                pending += names[field].as_bytes(conn)
            elif field is not None:
                self._static.append(pending)
                self._fields.append(field)
                pending = b""
        self._static.append(pending)

    def render(self, values: dict[str, bytes]) -> bytes:
        out = [self._static[0]]
        for field, static in zip(self._fields, self._static[1:], strict=True):
            out += (values[field], static)
        return b"".join(out)


class Writer:
    """Composes the ledger writes of one run: SQL to send with a migration.

    Table names are quoted once (sql.Identifier) and every value by sql.Literal
    through one reused Transformer, which keeps the client's work per migration small.
    """

    def __init__(self, conn: Conn, schema: str) -> None:
        from psycopg.adapt import Transformer

        self._tx = Transformer(conn)
        names = _names(schema)
        self._delete = _Template(_DELETE_ATTEMPT, names, conn)
        self._insert = _Template(_INSERT_ROW, names, conn)
        self._history = _Template(_INSERT_HISTORY, names, conn)
        self._progress = _Template(_UPDATE_PROGRESS, names, conn)
        self._server_duration = _SERVER_DURATION.as_bytes(conn)

    def literal(self, value: object) -> bytes:
        return sql.Literal(value).as_bytes(self._tx)

    def write(
        self,
        row: Row,
        *,
        status: str,
        block: Block | None = None,
        error: str | None = None,
        statements_done: int | None = None,
        statements_total: int | None = None,
        progress_hash: str | None = None,
        history: bool = True,
        outcome: str | None = None,
        details: str | None = None,
    ) -> bytes:
        """SQL that replaces the row for `row.number` and logs the attempt.

        Returned rather than executed so the caller can send it in the same
        transaction as the migration itself. A `row.duration_ms` of
        None is measured by the server, from the start of the transaction.
        """
        q = self.literal
        values = {
            "number": q(row.number),
            "filename": q(row.path.rsplit("/", 1)[-1]),
            "path": q(row.path),
            "hash": q(row.content_hash),
            "algorithm": q(row.hash_algorithm),
            "at": q(block.applied_at if block else row.started_at),
            "ms": self._server_duration
            if row.duration_ms is None
            else q(row.duration_ms),
            "status": q(status),
            "outcome": q(outcome or status),
            "error": q(error),
            "height": q(block.height if block else None),
            "prev": q(block.previous_hash if block else None),
            "bhash": q(block.block_hash if block else None),
            "mode": q(row.mode),
            "by": q(row.applied_by),
            "host": q(row.client_host),
            "version": q(row.version),
            "done": q(statements_done),
            "total": q(statements_total),
            "progress": q(progress_hash),
            "details": q(details),
        }
        parts = [self._delete, self._insert] + ([self._history] if history else [])
        return b"\n".join(part.render(values) for part in parts)

    def progress(self, number: int, done: int, progress_hash: str) -> bytes:
        """Record how many statements of a non-transactional migration are in place."""
        q = self.literal
        values = {"number": q(number), "done": q(done), "progress": q(progress_hash)}
        return self._progress.render(values)


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
