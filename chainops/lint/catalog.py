"""Every lint rule as data: id, default severity, what it catches and the fix.

No parsing here: `lint.rules` finds the statements, this module names and explains
them, and docs/lint.md documents each id (a unit test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Rule:
    """One rule: its id, default severity, what it catches, and the fix."""

    id: str
    severity: Severity
    summary: str
    fix: str
    enabled: bool = True  # False: only when [tool.chainops.lint] enables it


@dataclass(frozen=True)
class LintFinding:
    """One rule firing on one statement, placed at the statement's line and column."""

    rule: str
    severity: Severity
    path: str  # relative to the migrations folder, or as given on the command line
    line: int
    column: int
    message: str
    fix: str
    lock: str | None = None  # the strongest lock the statement takes, if known
    suppressed: str | None = None  # the reason of a lint-ignore that covers it

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR and self.suppressed is None


E, W = Severity.ERROR, Severity.WARNING
_RULES = (
    Rule(
        "index-not-concurrent",
        E,
        "CREATE INDEX without CONCURRENTLY blocks writes to an existing table",
        "CREATE INDEX CONCURRENTLY, in a file of its own",
    ),
    Rule(
        "drop-index-not-concurrent",
        E,
        "DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on its table",
        "DROP INDEX CONCURRENTLY, in a file of its own",
    ),
    Rule(
        "concurrent-in-mixed-file",
        W,
        "a CONCURRENTLY statement makes chainops apply the whole file statement by "
        "statement, without a transaction",
        "move the CONCURRENTLY statement to a file of its own",
    ),
    Rule(
        "reindex-not-concurrent",
        E,
        "REINDEX without CONCURRENTLY blocks writes (and reads using the index)",
        "REINDEX ... CONCURRENTLY (PostgreSQL 12+), in a file of its own",
    ),
    Rule(
        "add-required-column",
        E,
        "ADD COLUMN ... NOT NULL without a default fails on a table with rows",
        "add the column with a non-volatile DEFAULT, or nullable, backfill, then "
        "SET NOT NULL",
    ),
    Rule(
        "volatile-default",
        E,
        "ADD COLUMN with a volatile default (or any default before PostgreSQL 11, "
        "an identity or a stored generated column) rewrites the table",
        "add the column without the default or with a constant one, set the default "
        "afterwards, backfill in batches",
    ),
    Rule(
        "column-type-rewrite",
        E,
        "ALTER COLUMN ... TYPE rewrites the table under ACCESS EXCLUSIVE",
        "add a new column, backfill it, switch the application, drop the old one "
        "(varchar(n) to text or a wider varchar needs no rewrite)",
    ),
    Rule(
        "set-not-null",
        E,
        "SET NOT NULL scans the table under ACCESS EXCLUSIVE",
        "first ADD CONSTRAINT ... CHECK (col IS NOT NULL) NOT VALID, then VALIDATE "
        "CONSTRAINT in a later file; SET NOT NULL then skips the scan (PostgreSQL 12+)",
    ),
    Rule(
        "constraint-not-valid",
        E,
        "ADD FOREIGN KEY or CHECK without NOT VALID scans the table while it "
        "blocks writes",
        "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later file",
    ),
    Rule(
        "unique-without-index",
        E,
        "ADD UNIQUE or PRIMARY KEY builds its index under ACCESS EXCLUSIVE",
        "CREATE UNIQUE INDEX CONCURRENTLY in one file, then ADD CONSTRAINT ... "
        "UNIQUE USING INDEX (or PRIMARY KEY USING INDEX) in the next",
    ),
    Rule(
        "validate-same-transaction",
        E,
        "VALIDATE CONSTRAINT in the same transaction as its NOT VALID add keeps the "
        "add's lock for the whole scan",
        "move VALIDATE CONSTRAINT to a later file",
    ),
    Rule(
        "drop-table",
        W,
        "DROP TABLE breaks application versions still running against it",
        "stop using the table in the application first; drop it in a later release",
    ),
    Rule(
        "drop-column",
        W,
        "DROP COLUMN breaks application versions that still read or write it",
        "stop using the column first; drop it in a later release",
    ),
    Rule(
        "drop-schema",
        W,
        "DROP SCHEMA drops everything in it",
        "drop the objects one by one, each once nothing uses it",
    ),
    Rule(
        "truncate",
        W,
        "TRUNCATE deletes every row under ACCESS EXCLUSIVE",
        "delete in batches with a WHERE, or keep the data",
    ),
    Rule(
        "rename-table",
        W,
        "renaming a table breaks application versions that use the old name",
        "create the new table (or a view under the old name) and migrate readers first",
    ),
    Rule(
        "rename-column",
        W,
        "renaming a column breaks application versions that use the old name",
        "add the new column, write both, backfill, switch reads, drop the old one",
    ),
    Rule(
        "drop-not-null",
        W,
        "DROP NOT NULL lets NULLs reach application versions that do not expect them",
        "make the application accept NULL before dropping the constraint",
    ),
    Rule(
        "create-without-if-not-exists",
        W,
        "CREATE without IF NOT EXISTS fails when the object is already there",
        "CREATE ... IF NOT EXISTS (only where re-running the file must be harmless)",
        enabled=False,
    ),
    Rule(
        "prefer-timestamptz",
        W,
        "timestamp without time zone stores wall-clock times without their zone",
        "use timestamptz",
    ),
    Rule(
        "prefer-bigint-pk",
        W,
        "an int or serial primary key runs out at 2,147,483,647",
        "use bigint GENERATED ALWAYS AS IDENTITY",
    ),
    Rule(
        "prefer-text",
        W,
        "varchar(n) needs a table-locking change to raise its limit",
        "use text, with a CHECK (length(col) <= n) if the limit matters",
    ),
    Rule(
        "ban-char",
        W,
        "char(n) pads with spaces and is no faster than text",
        "use text (or varchar without a length)",
    ),
    Rule(
        "dml-without-where",
        W,
        "UPDATE or DELETE without WHERE in a schema migration touches every row",
        "add a WHERE, or move the data change to a seed-data migration",
    ),
    Rule(
        "backfill-with-ddl",
        W,
        "a data backfill in the same transaction as DDL on its table holds the DDL's "
        "lock for the whole backfill",
        "put the backfill in a file of its own, in batches",
    ),
    Rule(
        "lock-table",
        W,
        "LOCK TABLE blocks every other session for the rest of the transaction",
        "let each statement take the lock it needs, and keep the file short",
    ),
    Rule(
        "transaction-control",
        W,
        "BEGIN, COMMIT or ROLLBACK in a file makes chainops apply it statement by "
        "statement, outside its own transaction",
        "remove them: chainops already applies each file in one transaction",
    ),
    Rule(
        "set-without-local",
        W,
        "SET without LOCAL outlives the file's transaction (chainops resets the "
        "session only after the file)",
        "SET LOCAL",
    ),
    Rule(
        "enum-value-used-same-file",
        E,
        "a value added with ALTER TYPE ... ADD VALUE cannot be used before its "
        "transaction commits",
        "use the new value in a later file",
    ),
    Rule(
        "large-table-lock",
        E,
        "a statement takes a lock that blocks writes on a large table in the "
        "connected database",
        "use the non-blocking form, or apply it when the table is idle and suppress "
        "this with a reason",
    ),
    Rule(
        "bad-lint-ignore",
        E,
        "a chainops:lint-ignore directive without a reason, or naming no known rule",
        "write -- chainops:lint-ignore=<rule> <why it is safe here>",
    ),
)
RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
