"""The chain lock: every migration file's content hash and a head line, kept in git.

Pure: renders, parses and compares locks; the caller reads and writes chain.lock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chainops.chain import Block, Finding
from chainops.errors import DriftError, MigrationFileError, short
from chainops.files import HASH_ALGORITHM, MigrationFile, parse_name

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


def build(files: Iterable[MigrationFile]) -> Lock:
    """The lock that matches these files exactly."""
    return _lock(Entry(f.path, f.sha256) for f in files)


def with_file(lock: Lock, file: MigrationFile) -> Lock:
    """Add one file to a lock, leaving every other entry as it was."""
    kept = (e for e in lock.entries if e.path != file.path)
    return _lock([*kept, Entry(file.path, file.sha256)])


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


@dataclass(frozen=True)
class Changes:
    """How a new lock differs from the previous one, by path."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]


def compare(old: Lock, new: Lock) -> Changes:
    before, after = old.hashes(), new.hashes()
    return Changes(
        tuple(p for p in after if p not in before),
        tuple(p for p in before if p not in after),
        tuple(p for p in after if p in before and before[p] != after[p]),
    )


def verify_files(lock: Lock, files: Sequence[MigrationFile]) -> list[Finding]:
    """Files not in the lock, differing from it, or listed in it but missing."""
    locked = lock.hashes()
    findings: list[Finding] = []
    for f in files:
        expected = locked.get(f.path)
        if expected is None:
            findings.append(
                Finding(
                    "unlocked",
                    f.path,
                    f"{f.path} is not in {LOCK_NAME}; {RELOCK} to add it",
                )
            )
        elif expected != f.sha256:
            findings.append(
                Finding(
                    "lock",
                    f.path,
                    f"{f.path} differs from {LOCK_NAME} (locked {short(expected)}, "
                    f"now {short(f.sha256)}); if it was applied anywhere, restore it "
                    "from git and put the change in a new migration, otherwise "
                    f"{RELOCK}",
                    expected=expected,
                    current=f.sha256,
                )
            )
    present = {f.path for f in files}
    findings += [
        Finding(
            "lock",
            path,
            f"{LOCK_NAME} lists {path} but the file is missing; restore it from git, "
            f"or {RELOCK} if it was never applied",
            expected=digest,
        )
        for path, digest in locked.items()
        if path not in present
    ]
    return findings


def verify_ledger(
    lock: Lock, blocks: Iterable[Block], files: Sequence[MigrationFile], strict: bool
) -> list[Finding]:
    """Compare each block's content hash with the lock.

    A block that differs while the file still matches the lock means the ledger was
    rewritten (or the file was edited and locked again): always a finding. A block
    the lock does not know, or one newer than its stale entry, is only a finding
    when `strict` (production): in development the watcher applies files before
    they are locked.
    """
    locked = lock.hashes()
    current = {f.path: f.sha256 for f in files}
    findings: list[Finding] = []
    for b in blocks:
        if b.is_drift:  # records accepted schema drift, not a file
            continue
        where = f"the ledger: block {b.height} ({b.path})"
        expected = locked.get(b.path)
        if expected is None:
            if strict:
                findings.append(
                    Finding(
                        "unlocked",
                        b.path,
                        f"{where} is not in {LOCK_NAME}; a file was applied without "
                        f"being locked, {RELOCK} and commit it if it belongs",
                    )
                )
        elif expected != b.content_hash and current.get(b.path) == expected:
            findings.append(
                Finding(
                    "tampered",
                    b.path,
                    f"{where} records content {short(b.content_hash)} but the file "
                    f"and {LOCK_NAME} have {short(expected)}; the ledger was "
                    "rewritten (restore it from a backup), or the file was edited "
                    f"and locked again after it was applied (git log -p {LOCK_NAME} "
                    "tells which)",
                    expected=expected,
                    current=b.content_hash,
                )
            )
        elif expected != b.content_hash and strict:
            findings.append(
                Finding(
                    "lock",
                    b.path,
                    f"{where} records content {short(b.content_hash)} but "
                    f"{LOCK_NAME} has {short(expected)}; a version of the file that "
                    "was never locked was applied",
                    expected=expected,
                    current=b.content_hash,
                )
            )
    return findings


def mismatch(findings: Sequence[Finding]) -> LockMismatch:
    """The production refusal naming the first difference and carrying them all."""
    subject = findings[0].message.partition("; ")[0]
    rest = len(findings) - 1
    more = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
    return LockMismatch(
        f"{subject}{more}; production applies only files that match the committed "
        f"{LOCK_NAME} ({RELOCK} and commit), so nothing was applied",
        tuple(findings),
    )
