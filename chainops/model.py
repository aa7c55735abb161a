"""The frozen records and enums that cross modules: files, blocks, attempts, the
ledger snapshot, findings, planned steps, events and results. No I/O and no logic
beyond a property: every layer may import it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import NamedTuple

from chainops.config import Settings
from chainops.errors import more

GENESIS = "0" * 64
FORMAT_VERSION = 4  # of the ledger tables; store.ledger upgrades older ones
BLOCK_FORMAT = 2  # of the blocks chainops writes; 1 did not cover the fingerprint
# The ledger's tables: blocks and attempts, the append-only history, meta rows.
LEDGER_TABLES = (
    "blockchain_migrations",
    "blockchain_migrations_history",
    "blockchain_migrations_meta",
)


class Text(str, Enum):
    """An enum whose members are their own text, in comparisons, JSON and f-strings."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Mode(Text):
    """How a block came to be."""

    TRANSACTION = "transaction"
    NO_TRANSACTION = "no-transaction"
    BASELINE = "baseline"
    DRIFT = "drift"
    REPEATABLE = "repeatable"  # one version of an R-<name>.sql file
    REVERT = "revert"  # a down script undoing the newest block of its migration


class Status(Text):
    """A ledger row's status: a block, or an attempt that is not one (yet)."""

    COMPLETED = "completed"
    FAILED = "failed"
    RUNNING = "running"


class Outcome(Text):
    """What the history table records for an attempt."""

    COMPLETED = "completed"
    FAILED = "failed"
    BASELINED = "baselined"
    DRIFT_ACCEPTED = "drift-accepted"
    REVERTED = "reverted"  # a revert block: a down script applied

    @classmethod
    def of_block(cls, mode: str) -> Outcome:
        """The outcome the history records with a block of this mode."""
        if mode == Mode.BASELINE:
            return cls.BASELINED
        if mode == Mode.DRIFT:
            return cls.DRIFT_ACCEPTED
        if mode == Mode.REVERT:
            return cls.REVERTED
        return cls.COMPLETED


class FindingKind(Text):
    """What verification found wrong."""

    CHANGED = "changed"  # an applied file was edited
    MISSING = "missing"  # an applied file was deleted
    RENAMED = "renamed"  # an applied file has another name now
    TAMPERED = "tampered"  # a ledger row does not verify
    SCHEMA = "schema"  # the live schema differs from the recorded fingerprint
    LOCK = "lock"  # a file or block differs from chain.lock
    UNLOCKED = "unlocked"  # a file or block chain.lock does not list
    PARTIAL = "partial"  # a non-transactional file stopped midway

    @property
    def is_file(self) -> bool:
        """A problem with an applied file rather than with the ledger."""
        return self in (FindingKind.CHANGED, FindingKind.MISSING, FindingKind.RENAMED)


class State(Text):
    """One migration's line in status."""

    APPLIED = "applied"
    PENDING = "pending"
    FAILED = "failed"
    RUNNING = "running"
    CHANGED = "changed"
    MISSING = "missing"
    REMOVED = "removed"  # a repeatable file deleted; its objects stay
    REVERTED = "reverted"  # a block undone by a later revert block


@dataclass(frozen=True)
class Script:
    """A file beside a migration that is not one: its verify or down script."""

    path: str  # 001-schema/005-user-settings.verify.sql
    data: bytes  # normalised like a migration's
    sha256: str

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass(frozen=True)
class MigrationFile:
    """One migration file: where it is, its order key and its content."""

    category_index: int  # 1 for 001-schema
    category: str  # 001-schema
    index: int  # 5 for 005-user-settings.sql
    path: str  # 001-schema/005-user-settings.sql, relative to the migrations dir
    data: bytes  # normalised UTF-8 (no BOM, LF line ends): the exact SQL applied
    sha256: str
    verify_script: Script | None = None  # NNN-name.verify.sql, run after it
    down_script: Script | None = None  # NNN-name.down.sql, undoes it (revert)

    @property
    def text(self) -> str:
        """The SQL as text, decoded on each use, so a big file is held once."""
        return self.data.decode("utf-8")

    @property
    def number(self) -> int:
        """The display number, #1005 for 001-schema/005-x.sql (#1000 for the
        folder's repeatable files, whose blocks are numbered -height)."""
        return self.category_index * 1000 + self.index

    @property
    def is_repeatable(self) -> bool:
        """An R-<name>.sql file: applied again whenever its content changes."""
        return self.index == 0

    @property
    def key(self) -> tuple[int, int]:
        return (self.category_index, self.index)

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Block:
    """One completed row of the ledger: a link of the chain."""

    height: int
    number: int
    path: str
    content_hash: str
    hash_algorithm: str
    applied_at: datetime
    applied_by: str
    client_host: str
    mode: str  # a Mode; read back from the ledger as it is stored
    previous_hash: str
    block_hash: str
    duration_ms: int = 0
    # The schema fingerprint after this block: the drift reference. A run's newest
    # block seals it into its hash (`sealed_schema`); one whose run stopped early
    # has it stored beside the hash, and blocks of format 1 never sealed it.
    schema_hash: str | None = None
    block_format: int = BLOCK_FORMAT
    sealed_schema: str | None = None
    details: str | None = None  # a drift block's differences; hashed as its content
    # Stored beside the hashed fields; verify holds them to what chainops writes.
    stored_filename: str | None = None
    error_message: str | None = None

    @property
    def is_drift(self) -> bool:
        """A block that records accepted schema drift rather than a file."""
        return self.mode == Mode.DRIFT

    @property
    def is_repeatable(self) -> bool:
        """One version of a repeatable file, numbered -height like a drift block."""
        return self.mode == Mode.REPEATABLE

    @property
    def is_revert(self) -> bool:  # a down script applied, numbered -height
        return self.mode == Mode.REVERT

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Attempt:
    """A ledger row that is not (yet) a block: a failed or interrupted migration."""

    number: int
    path: str
    content_hash: str
    status: str  # a Status: failed or running
    error_message: str | None
    statements_done: int
    statements_total: int | None
    progress_hash: str | None
    attempted_at: datetime


class HistoryRow(NamedTuple):
    """One row of the append-only history that records a block being appended (a
    named tuple: 1,000 build in 0.4 ms, frozen dataclasses in 1.2 ms)."""

    number: int
    path: str
    content_hash: str
    outcome: str  # an Outcome
    applied_by: str
    client_host: str
    started_at: datetime


@dataclass(frozen=True)
class LedgerSnapshot:
    """Everything the ledger tables hold that verification and planning read:
    `tables`, those present; `guards`, rules, triggers, policies and row security on
    them, none of which chainops creates."""

    exists: bool
    blocks: tuple[Block, ...] = ()
    attempts: tuple[Attempt, ...] = ()
    history: tuple[HistoryRow, ...] = ()
    meta: tuple[tuple[str, str], ...] = ()
    tables: frozenset[str] = frozenset()
    guards: tuple[str, ...] = ()
    shape_version: int = FORMAT_VERSION  # the format its columns have

    def meta_value(self, key: str) -> str | None:
        return next((value for k, value in self.meta if k == key), None)

    @property
    def environment(self) -> str | None:
        """The marker written by the runs that migrated this database."""
        return self.meta_value("environment")

    @property
    def is_production(self) -> bool:
        """Production rules hold for this ledger whatever the local settings say."""
        return self.environment == "production"

    def fingerprint_scope(self, configured: str | None) -> str | None:
        """The one schema this ledger's fingerprint covers: a tenant's ledger says so
        itself, so single-database commands scope it as fleet mode does."""
        return configured or self.meta_value("fingerprint_scope")

    @property
    def format_version(self) -> int | None:
        value = self.meta_value("format_version")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def needs_upgrade(self) -> bool:  # older columns, or constraints (format 3)
        older = min(self.shape_version, self.format_version or FORMAT_VERSION)
        return self.exists and older < FORMAT_VERSION

    @property
    def head(self) -> str:
        return self.blocks[-1].block_hash if self.blocks else GENESIS

    @property
    def height(self) -> int:
        return len(self.blocks)


@dataclass(frozen=True)
class Finding:
    """One problem found by verification."""

    kind: FindingKind
    path: str
    message: str
    expected: str | None = None
    current: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FindingKind(self.kind))  # "changed" reads too


@dataclass(frozen=True)
class Drift:
    """What changed in the live schema since the head block's fingerprint."""

    block: Block  # the newest block that carries a fingerprint
    expected: str
    actual: str
    changes: tuple[str, ...]

    def message(self) -> str:
        head = self.changes[0] if self.changes else "the fingerprint differs"
        return (
            f"the database schema drifted since block {self.block.height} "
            f"({self.block.path}): {head}{more(len(self.changes) - 1, 'change')}"
        )

    def findings(self) -> list[Finding]:
        return [
            Finding(
                FindingKind.SCHEMA,
                "",
                line,
                expected=self.expected,
                current=self.actual,
            )
            for line in (self.changes or ("the fingerprint differs",))
        ]


@dataclass(frozen=True)
class Options:
    """How migrate behaves; the defaults are what `inv migrate` does."""

    allow_out_of_order: bool = False
    resume: bool = False
    dry_run: bool = False
    accept_drift: bool = False


# --- planned steps --------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A `-- chainops:check=<query>` line: a precondition, true before the file runs."""

    line: int
    offset: int  # where the query starts in the file's text
    query: str


@dataclass(frozen=True)
class Requirement:
    """A `-- chainops:requires=<number or path>` line: applied before this file."""

    line: int
    number: int | None  # requires=1003
    path: str | None  # requires=001-schema/003-x.sql

    @property
    def text(self) -> str:
        return f"#{self.number}" if self.number is not None else str(self.path)


@dataclass(frozen=True)
class Directives:
    """A file's `-- chainops:` options; None or empty where the file says nothing."""

    no_transaction_line: int | None = None
    lock_timeout: str | None = None
    statement_timeout: str | None = None
    checks: tuple[Check, ...] = ()
    requires: tuple[Requirement, ...] = ()


@dataclass(frozen=True)
class ApplyFile:
    """Apply a pending file; `attempt` is the partial run it resumes, if any."""

    file: MigrationFile
    attempt: Attempt | None = None
    directives: Directives = Directives()


@dataclass(frozen=True)
class Plan:
    """What migrate will do, decided from the ledger and the files alone."""

    steps: tuple[ApplyFile, ...]
    out_of_order: tuple[tuple[MigrationFile, str], ...] = ()  # (file, applied path)

    @property
    def files(self) -> tuple[MigrationFile, ...]:
        return tuple(step.file for step in self.steps)


@dataclass(frozen=True)
class Target:
    """One database resolved for a command, and the settings that apply to it."""

    settings: Settings
    conninfo: str  # "" when libpq's PG* variables name the database
    description: str  # host:port/dbname, never a password
