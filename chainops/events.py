"""The events the library emits while it works, for the front ends to show; frozen
records, like those in `model`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chainops.model import Block, Drift, Finding, MigrationFile


@dataclass(frozen=True)
class Applied:
    """Event and result: one migration became a block."""

    file: MigrationFile
    block: Block
    duration_ms: int


@dataclass(frozen=True)
class LockHolder:
    pid: int
    application_name: str
    since: datetime | None


@dataclass(frozen=True)
class Waiting:
    """Event: another run holds the ledger lock."""

    holder: LockHolder | None


@dataclass(frozen=True)
class OutOfOrderAllowed:
    """Event: a file below the folder's highest applied number is applied anyway."""

    file: MigrationFile
    applied_path: str


@dataclass(frozen=True)
class DriftFound:
    """Event: the live schema differed from the head block's fingerprint, and the
    difference was recorded as a drift block."""

    drift: Drift
    block: Block


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


@dataclass(frozen=True)
class Linted:
    """Event: the pending files were linted before applying; `lines` are the
    findings as `file:line:col: severity rule message; fix` lines."""

    lines: tuple[str, ...]
    errors: int
    warnings: int


Event = (
    Applied
    | Waiting
    | OutOfOrderAllowed
    | DriftFound
    | EmbeddedStarted
    | BackedUp
    | LockStale
    | SchemaFileWritten
    | Linted
)


# --- results --------------------------------------------------------------------
