"""What the verbs return: applied and planned migrations, status, verification and
chain.lock reports. Frozen records, read by report and the front ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from chainops.events import Applied
from chainops.model import Block, Finding, MigrationFile, State


@dataclass(frozen=True)
class Planned:
    """A pending file and how it would be applied (dry run)."""

    file: MigrationFile
    transactional: bool
    reason: str | None
    statements: int | None  # None when a large file was not split


@dataclass(frozen=True)
class ApplyResult:
    applied: tuple[Applied, ...]
    head: str
    height: int
    planned: tuple[Planned, ...] = ()
    drift_blocks: int = 0  # blocks of accepted drift, which are not migrations

    @property
    def migrations(self) -> int:
        """Migrations in the chain: its blocks, less those of accepted drift."""
        return self.height - self.drift_blocks


@dataclass(frozen=True)
class Entry:
    """One line of status: a file, a block, or both."""

    number: int
    path: str
    state: State
    applied_at: datetime | None = None
    block: Block | None = None
    error: str | None = None


@dataclass(frozen=True)
class StatusReport:
    entries: tuple[Entry, ...]
    findings: tuple[Finding, ...]
    head: str
    height: int

    def count(self, *states: State) -> int:
        return sum(1 for e in self.entries if e.state in states)

    @property
    def waiting(self) -> tuple[Entry, ...]:
        """Entries not in place: all but applied ones and removed repeatable files."""
        done = (State.APPLIED, State.REMOVED)
        return tuple(e for e in self.entries if e.state not in done)


@dataclass(frozen=True)
class VerifyReport:
    findings: tuple[Finding, ...]
    head: str
    height: int
    files: int
    lock_head: str | None = None  # None without a chain.lock
    files_only: bool = False

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class Created:
    path: Path  # the new file
    lock_head: str
    locked: int  # files in chain.lock
    lock_created: bool  # there was no chain.lock: the new one locks every file


@dataclass(frozen=True)
class LockChanges:
    """How a new chain.lock differs from the previous one, by path."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]


@dataclass(frozen=True)
class LockReport:
    head: str
    files: int
    previous: str  # missing, unreadable (e.g. merge conflict markers) or read
    changes: LockChanges
