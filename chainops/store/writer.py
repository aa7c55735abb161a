"""The ledger's appends, composed as SQL to send with a migration in its transaction.

Table names are quoted once per run and every value by sql.Literal through one reused
Transformer, which keeps the client's work per migration small.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import datetime

from psycopg import sql

from chainops.model import BLOCK_FORMAT, Block
from chainops.store.connection import Conn
from chainops.store.ledger import names


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

# A repeatable file's attempts are numbered -height of the block they would have
# been: its block clears them by path. ({number} < 0 folds to false for the others.)
_DELETE_ATTEMPT = (
    "DELETE FROM {ledger} WHERE (migration_number = {number} OR ({number} < 0"
    " AND path = {path})) AND status <> 'completed';"
)
_INSERT_ROW = (
    "INSERT INTO {ledger} (migration_number, filename, path, hash, hash_algorithm,"
    " executed_at, execution_time_ms, status, error_message, height, previous_hash,"
    " block_hash, mode, applied_by, client_host, chainops_version, statements_done,"
    " statements_total, progress_hash, details, block_format, sealed_schema,"
    " schema_hash, schema_snapshot) VALUES ({number}, {filename}, {path},"
    " {hash}, {algorithm}, {at}, {ms}, {status}, {error}, {height}, {prev}, {bhash},"
    " {mode}, {by}, {host}, {version}, {done}, {total}, {progress}, {details},"
    " {format}, {sealed}, {sealed}, {snapshot});"
)
_INSERT_HISTORY = (
    "INSERT INTO {history} (migration_number, path, hash, started_at,"
    " execution_time_ms, outcome, error_message, applied_by, client_host,"
    " chainops_version) VALUES ({number}, {path}, {hash}, {at}, {ms}, {outcome},"
    " {error}, {by}, {host}, {version});"
)
# Read the block back in the same transaction: a rule, trigger or policy that
# swallows or rewrites the insert divides by zero here (SQLSTATE 22012) instead
# of letting the run report a block the ledger does not hold.
READ_BACK_FAILED = "22012"
_READ_BACK = (
    "SELECT 1 / count(*) FROM {ledger} WHERE height = {height}"
    " AND block_hash = {bhash} AND status = 'completed';"
)
_UPDATE_PROGRESS = (
    "UPDATE {ledger} SET statements_done = {done}, progress_hash = {progress}"
    " WHERE migration_number = {number} AND status = 'running';"
)


class _Template:
    """One ledger statement: its table names quoted once, its values slotted in."""

    def __init__(self, text: str, tables: dict[str, sql.Composable], conn: Conn):
        self._static: list[bytes] = []  # the SQL between the value fields
        self._fields: list[str] = []
        pending = b""
        for literal, field, _, _ in string.Formatter().parse(text):
            pending += literal.encode()
            if field in tables:
                pending += tables[field].as_bytes(conn)
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
        tables = names(schema)
        self._delete = _Template(_DELETE_ATTEMPT, tables, conn)
        self._insert = _Template(_INSERT_ROW, tables, conn)
        self._history = _Template(_INSERT_HISTORY, tables, conn)
        self._progress = _Template(_UPDATE_PROGRESS, tables, conn)
        self._read_back = _Template(_READ_BACK, tables, conn)
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
        schema_snapshot: bytes | None = None,
    ) -> bytes:
        """SQL that replaces the row for `row.number` and logs the attempt.

        Returned rather than executed so the caller can send it in the same
        transaction as the migration itself. A `row.duration_ms` of
        None is measured by the server, from the start of the transaction.
        `schema_snapshot` is the compressed schema a sealing block fingerprints.
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
            "format": q(block.block_format if block else BLOCK_FORMAT),
            "sealed": q(block.sealed_schema if block else None),
            "snapshot": q(schema_snapshot),
        }
        parts = [self._delete, self._insert] + ([self._history] if history else [])
        if block is not None:
            parts.append(self._read_back)
        return b"\n".join(part.render(values) for part in parts)

    def progress(self, number: int, done: int, progress_hash: str) -> bytes:
        """Record how many statements of a non-transactional migration are in place."""
        q = self.literal
        values = {"number": q(number), "done": q(done), "progress": q(progress_hash)}
        return self._progress.render(values)
