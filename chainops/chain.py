"""Pure chain logic: canonical block bytes, block hashes, and findings.

Compares ledger blocks with migration files without any I/O, so every rule about
tampering, edits and ordering is testable from plain objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from chainops.errors import short
from chainops.files import MigrationFile, parse_name

GENESIS = "0" * 64
BLOCK_FORMAT = "chainops-block-v1"


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
    mode: str  # transaction, no-transaction or baseline
    previous_hash: str
    block_hash: str
    duration_ms: int = 0
    schema_hash: str | None = None  # fingerprint after this block; not hashed

    @property
    def is_drift(self) -> bool:
        """A block that records accepted schema drift rather than a file."""
        return self.mode == "drift"

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Finding:
    """One problem found by verification."""

    kind: str  # changed, missing, renamed, tampered
    path: str
    message: str
    expected: str | None = None
    current: str | None = None


def format_time(moment: datetime) -> str:
    """Canonical UTC timestamp with microseconds, as hashed and displayed."""
    if moment.tzinfo is None or moment.utcoffset():  # naive means local, as before
        moment = moment.astimezone(timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def canonical_bytes(
    *,
    height: int,
    previous_hash: str,
    number: int,
    path: str,
    content_hash: str,
    hash_algorithm: str,
    applied_at: datetime,
    applied_by: str,
    client_host: str,
    mode: str,
) -> bytes:
    """The exact bytes a block hash covers; documented in the README."""
    lines = [
        BLOCK_FORMAT,
        f"height={height}",
        f"previous={previous_hash}",
        f"number={number}",
        f"path={path}",
        f"content={hash_algorithm}:{content_hash}",
        f"applied_at={format_time(applied_at)}",
        f"applied_by={applied_by}",
        f"client_host={client_host}",
        f"mode={mode}",
    ]
    return "\n".join(lines).encode("utf-8")


def recompute(block: Block) -> str:
    """Recompute a block's hash from its fields."""
    return hashlib.sha256(
        canonical_bytes(
            height=block.height,
            previous_hash=block.previous_hash,
            number=block.number,
            path=block.path,
            content_hash=block.content_hash,
            hash_algorithm=block.hash_algorithm,
            applied_at=block.applied_at,
            applied_by=block.applied_by,
            client_host=block.client_host,
            mode=block.mode,
        )
    ).hexdigest()


def head_hash(blocks: Sequence[Block]) -> str:
    return blocks[-1].block_hash if blocks else GENESIS


def verify_links(blocks: Sequence[Block]) -> list[Finding]:
    """Check heights, links and hashes: altered, deleted, forged or reordered rows."""
    findings: list[Finding] = []
    previous = GENESIS
    seen: dict[int, str] = {}
    for expected_height, block in enumerate(blocks, start=1):
        where = f"block {block.height} ({block.path})"
        if block.height != expected_height:
            findings.append(
                Finding(
                    "tampered",
                    block.path,
                    f"the ledger: {where} should be block {expected_height}; "
                    "a block was deleted or inserted",
                )
            )
        if block.previous_hash != previous:
            findings.append(
                Finding(
                    "tampered",
                    block.path,
                    f"the ledger: {where} links to {short(block.previous_hash)} "
                    "but the "
                    f"block before it is {short(previous)}; a block was deleted, "
                    "inserted or reordered",
                    expected=previous,
                    current=block.previous_hash,
                )
            )
        actual = recompute(block)
        if actual != block.block_hash:
            findings.append(
                Finding(
                    "tampered",
                    block.path,
                    f"the ledger: {where} was altered; its hash does not recompute "
                    f"(stored {short(block.block_hash)}, recomputed {short(actual)})",
                    expected=actual,
                    current=block.block_hash,
                )
            )
        key = parse_name(*block.path.split("/", 1)) if "/" in block.path else None
        number = -block.height if block.is_drift else key and key[0] * 1000 + key[1]
        if number != block.number:
            findings.append(
                Finding(
                    "tampered",
                    block.path,
                    f"the ledger: {where} has number #{block.number}, which does not "
                    "match its file name",
                )
            )
        if block.number in seen:
            findings.append(
                Finding(
                    "tampered",
                    block.path,
                    f"the ledger: {where} repeats #{block.number}, already applied as "
                    f"{seen[block.number]}",
                )
            )
        seen[block.number] = block.path
        previous = block.block_hash
    return findings


def verify_files(
    blocks: Iterable[Block], files: Sequence[MigrationFile]
) -> list[Finding]:
    """Check that every applied file is present and unchanged."""
    by_path = {f.path: f for f in files}
    by_number = {f.number: f for f in files}
    findings: list[Finding] = []
    for block in blocks:
        if block.is_drift:
            continue
        current = by_path.get(block.path)
        if current is None:
            other = by_number.get(block.number)
            if other is not None and other.sha256 == block.content_hash:
                findings.append(
                    Finding(
                        "renamed",
                        block.path,
                        f"{block.path} was applied and is now named {other.path}; "
                        "rename it back (applied migrations are never renamed)",
                    )
                )
            else:
                findings.append(
                    Finding(
                        "missing",
                        block.path,
                        f"{block.path} was applied but is missing; restore it from git "
                        "(applied migrations are never deleted)",
                    )
                )
        elif current.sha256 != block.content_hash:
            findings.append(
                Finding(
                    "changed",
                    block.path,
                    f"{block.path} was edited after it was applied; restore it from "
                    "git and put the change in a new migration",
                    expected=block.content_hash,
                    current=current.sha256,
                )
            )
    return findings


def find_pending(
    blocks: Iterable[Block], files: Sequence[MigrationFile]
) -> list[MigrationFile]:
    """Files with no block, in (category, file) order."""
    applied = {b.number for b in blocks}
    return [f for f in files if f.number not in applied]


def find_out_of_order(
    blocks: Iterable[Block], pending: Sequence[MigrationFile]
) -> list[tuple[MigrationFile, str]]:
    """Pending files numbered below an applied file of their own folder."""
    highest: dict[int, tuple[int, str]] = {}
    for block in blocks:
        if block.is_drift:
            continue
        category, index = divmod(block.number, 1000)
        if index > highest.get(category, (0, ""))[0]:
            highest[category] = (index, block.path)
    return [
        (f, highest[f.category_index][1])
        for f in pending
        if f.index < highest.get(f.category_index, (0, ""))[0]
    ]
