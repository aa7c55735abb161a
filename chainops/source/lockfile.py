"""The chain lock: every migration file's content hash and a head line, kept in git.

Renders, parses, compares, reads and writes chain.lock; what the lock proves about
files and blocks is checked in `verify`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chainops.errors import DriftError, MigrationFileError, with_more
from chainops.model import Finding, MigrationFile, Script
from chainops.results import LockChanges
from chainops.source.files import HASH_ALGORITHM, parse_name

LOCK_NAME = "chain.lock"
HEADER = "# chainops chain.lock v1"
HEAD_FORMAT = "chainops-lock-v1"
_COMMENT = (
    "# One line per migration file: its path and content hash. The head line hashes",
    "# them all, so two branches that each add a migration conflict on it in git.",
    "# To resolve: renumber one branch's new file if both took the same number, then",
    "# run `inv migrate.lock` and commit. Do not edit by hand.",
)
_HEX = re.compile(r"[0-9a-f]{64}")
_CONFLICT_MARKERS = ("<<<<<<<", "|||||||", "=======", ">>>>>>>")
RELOCK = "run inv migrate.lock"


class LockMismatch(DriftError):  # noqa: N818 - leaves name the condition
    """The migration files differ from chain.lock (refused in production)."""


@dataclass(frozen=True)
class Entry:
    """One locked migration file."""

    path: str
    content_hash: str

    @property
    def line(self) -> str:
        return f"{self.path} {HASH_ALGORITHM}:{self.content_hash}"


def _order(entry: Entry) -> tuple[int, int, str]:
    category, _, name = entry.path.partition("/")
    key = parse_name(category, name) or (0, 0)
    if key[1] == 0:  # a repeatable file: after the numbered files of its folder
        key = (key[0], 1000)
    return (*key, entry.path)


@dataclass(frozen=True)
class Lock:
    """The entries of chain.lock in (category, file) order."""

    entries: tuple[Entry, ...]

    @property
    def head(self) -> str:
        """SHA-256 of the format tag and the entry lines, joined by newlines."""
        lines = [HEAD_FORMAT, *(e.line for e in self.entries)]
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    def hashes(self) -> dict[str, str]:
        return {e.path: e.content_hash for e in self.entries}


def _lock(entries: Iterable[Entry]) -> Lock:
    return Lock(tuple(sorted(entries, key=_order)))


def locked_sources(files: Iterable[MigrationFile]) -> list[MigrationFile | Script]:
    """Everything the lock lists: each migration, then its verify and down scripts."""
    found: list[MigrationFile | Script] = []
    for file in files:
        found.append(file)
        found += [s for s in (file.verify_script, file.down_script) if s is not None]
    return found


def build(files: Iterable[MigrationFile]) -> Lock:
    """The lock that matches these files (and their verify scripts) exactly."""
    return _lock(Entry(f.path, f.sha256) for f in locked_sources(files))


def with_file(lock: Lock, file: MigrationFile) -> Lock:
    """Add one file to a lock, leaving every other entry as it was."""
    new = [Entry(f.path, f.sha256) for f in locked_sources([file])]
    kept = (e for e in lock.entries if e.path not in {n.path for n in new})
    return _lock([*kept, *new])


def render(lock: Lock) -> str:
    """The text of chain.lock; the head line comes last, right after the entries."""
    lines = [HEADER, *_COMMENT, *(e.line for e in lock.entries)]
    lines.append(f"head {lock.head} {len(lock.entries)}")
    return "\n".join(lines) + "\n"


def _bad(number: int, why: str) -> MigrationFileError:
    return MigrationFileError(f"{LOCK_NAME}:{number}: {why}")


def _parse_entry(line: str, number: int) -> Entry:
    parts = line.split()
    algorithm, colon, digest = parts[-1].partition(":")
    if len(parts) != 2 or not colon:
        raise _bad(number, f"is not 'path {HASH_ALGORITHM}:hash'; {RELOCK}")
    if algorithm != HASH_ALGORITHM:
        raise _bad(
            number,
            f"uses hash algorithm {algorithm}, which this chainops does not know; "
            "upgrade chainops",
        )
    category, _, name = parts[0].partition("/")
    if not _HEX.fullmatch(digest) or parse_name(category, name) is None:
        raise _bad(number, f"is not a migration path and its hash; {RELOCK}")
    return Entry(parts[0], digest)


def parse(text: str) -> Lock:
    """Read chain.lock, refusing conflict markers and a head that does not match."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[0].strip() != HEADER:
        found = lines[0].strip()
        if found.startswith(HEADER[:-1]):
            version = found.rsplit(" ", 1)[-1]
            raise _bad(1, f"has format {version}; upgrade chainops to read it")
        raise _bad(1, f"does not start with '{HEADER}'; {RELOCK} to rewrite it")
    entries: dict[str, Entry] = {}
    head: tuple[str, str] | None = None
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if line.startswith(_CONFLICT_MARKERS):
            raise _bad(
                number,
                "has git merge conflict markers; renumber one branch's new "
                f"migration if both took the same number, then {RELOCK}",
            )
        if not line or line.startswith("#"):
            continue
        if head is not None:
            raise _bad(number, f"follows the head line, which must be last; {RELOCK}")
        if line.startswith("head "):
            parts = line.split()
            head = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
            continue
        entry = _parse_entry(line, number)
        if entry.path in entries:
            raise _bad(number, f"lists {entry.path} twice; {RELOCK}")
        entries[entry.path] = entry
    lock = _lock(entries.values())
    if head is None:
        raise MigrationFileError(f"{LOCK_NAME} has no head line; {RELOCK}")
    if head != (lock.head, str(len(lock.entries))):
        raise MigrationFileError(
            f"{LOCK_NAME}: the head line does not match the {len(lock.entries)} "
            f"entries above it (edited by hand?); {RELOCK} to rewrite it"
        )
    return lock


def compare(old: Lock, new: Lock) -> LockChanges:
    before, after = old.hashes(), new.hashes()
    return LockChanges(
        tuple(p for p in after if p not in before),
        tuple(p for p in before if p not in after),
        tuple(p for p in after if p in before and before[p] != after[p]),
    )


def mismatch(findings: Sequence[Finding]) -> LockMismatch:
    """The production refusal naming the first difference and carrying them all."""
    subject = with_more(findings[0].message.partition("; ")[0], len(findings) - 1)
    return LockMismatch(
        f"{subject}; production applies only files that match the committed "
        f"{LOCK_NAME} ({RELOCK} and commit), so nothing was applied",
        tuple(findings),
    )


def read_lock(migrations_dir: Path) -> Lock | None:
    """Read chain.lock from the migrations folder; None when there is none."""
    try:
        data = (migrations_dir / LOCK_NAME).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise MigrationFileError(
            f"{LOCK_NAME} cannot be read ({err.strerror}); check its permissions"
        ) from err
    return parse(data.decode("utf-8", "replace"))


def write_lock(migrations_dir: Path, lock: Lock) -> None:
    path = migrations_dir / LOCK_NAME
    temporary = path.with_name(f".{LOCK_NAME}.tmp")  # hidden: never a migration
    temporary.write_text(render(lock), encoding="utf-8", newline="\n")
    temporary.replace(path)  # atomic: a reader sees the old lock or the new one
