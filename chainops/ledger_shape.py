"""Pure: the ledger's own invariants. Its three tables are there with nothing guarding
them, its meta rows are well formed, its history agrees with its blocks both ways,
drift details recompute, and the columns beside each block hash hold what chainops
writes. `verify` calls this with the chain, file and lock checks.
"""

from __future__ import annotations

import hashlib

from chainops.config import ENVIRONMENTS
from chainops.errors import short
from chainops.model import (
    BLOCK_FORMAT,
    LEDGER_TABLES,
    Block,
    Finding,
    FindingKind,
    LedgerSnapshot,
    Outcome,
)


def _tampered(message: str, path: str = "") -> Finding:
    return Finding(FindingKind.TAMPERED, path, message)


_RESTORE = "restore the ledger from a backup"


def verify_ledger(snapshot: LedgerSnapshot) -> list[Finding]:
    """The ledger's own shape: its three tables, no guards on them, its meta rows,
    history that agrees with the blocks both ways, drift details that recompute."""
    if not snapshot.exists:
        return []
    missing = [t for t in LEDGER_TABLES if t not in snapshot.tables]
    if missing:
        present = ", ".join(sorted(snapshot.tables))
        return [
            _tampered(
                f"the ledger: {', '.join(missing)} is missing while {present} "
                f"remains; it was dropped or renamed, {_RESTORE}"
            )
        ]
    findings = [
        _tampered(
            f"the ledger: {guard} was not created by chainops and can hide or rewrite "
            f"ledger writes; remove it and verify again"
        )
        for guard in snapshot.guards
    ]
    if snapshot.format_version is None:
        findings.append(
            _tampered(
                f"the ledger: its format_version row is missing or altered; {_RESTORE}"
            )
        )
    if snapshot.blocks and snapshot.environment not in ENVIRONMENTS:
        findings.append(
            _tampered(
                "the ledger: its environment marker is missing or altered "
                f"({snapshot.environment or 'none'}) though it holds blocks; "
                f"{_RESTORE}"
            )
        )
    findings += _verify_stored_columns(snapshot) + _verify_fingerprints(snapshot)
    return findings + _verify_history(snapshot) + _verify_drift_details(snapshot)


def _verify_stored_columns(snapshot: LedgerSnapshot) -> list[Finding]:
    """The columns beside a block's hash hold what chainops writes: its file name,
    no error, and differences only on a drift block."""
    return [
        _tampered(
            f"the ledger: block {b.height} ({b.path}) has columns chainops never "
            f"writes for a block (file name, error or differences); {_RESTORE}",
            b.path,
        )
        for b in snapshot.blocks
        if b.error_message is not None
        or (b.details is not None and not b.is_drift)
        or (b.stored_filename is not None and b.stored_filename != b.filename)
    ]


def _verify_fingerprints(snapshot: LedgerSnapshot) -> list[Finding]:
    """Block formats only move forward, and a sealed fingerprint is the one stored as
    the drift reference: rewriting either one breaks the block's hash or this."""
    findings: list[Finding] = []
    newest = 1
    for b in snapshot.blocks:
        if not 1 <= b.block_format <= BLOCK_FORMAT or b.block_format < newest:
            problem = f"claims block format {b.block_format}"
        elif b.sealed_schema is not None and (
            b.block_format < 2 or b.schema_hash != b.sealed_schema
        ):
            problem = "has a stored fingerprint other than the one its hash seals"
        else:
            newest = b.block_format
            continue
        findings.append(
            _tampered(
                f"the ledger: block {b.height} ({b.path}) {problem}; {_RESTORE}",
                b.path,
            )
        )
    return findings


def _verify_history(snapshot: LedgerSnapshot) -> list[Finding]:
    """Every block has its history row, and every block the history records exists:
    a deleted newest block still shows in the history, a forged one has no row.
    Matched as a multiset: a file applied again after a revert has two blocks of
    one number, and each block takes one matching row."""
    outcomes: dict[str, str] = {}  # by mode: a handful of modes, thousands of blocks
    keys: list[tuple[object, ...]] = []
    for b in snapshot.blocks:
        if (outcome := outcomes.get(b.mode)) is None:
            outcome = outcomes[b.mode] = str(Outcome.of_block(b.mode))
        keys.append((b.number, b.path, b.content_hash, outcome,
                     b.applied_by, b.client_host, b.applied_at))  # fmt: skip
    if keys == list(snapshot.history):
        return []  # row for row in order, as every append writes them: a match
    expected: dict[tuple[object, ...], list[Block]] = {}
    for key, b in zip(keys, snapshot.blocks, strict=True):
        expected.setdefault(key, []).append(b)
    findings: list[Finding] = []
    for h in snapshot.history:
        if expected.get(tuple(h)):
            expected[tuple(h)].pop(0)
            continue
        findings.append(
            _tampered(
                f"the ledger: the history records {h.path} (#{h.number}, "
                f"{h.outcome}) but no block holds it; a block was deleted or "
                f"rewritten, {_RESTORE}",
                h.path,
            )
        )
    findings += [
        _tampered(
            f"the ledger: block {b.path} (#{b.number}) has no history row; a block "
            f"was forged or its history deleted, {_RESTORE}",
            b.path,
        )
        for b in sorted(
            (b for left in expected.values() for b in left), key=lambda b: b.height
        )
    ]
    return findings


def _verify_drift_details(snapshot: LedgerSnapshot) -> list[Finding]:
    """A drift block's content hash is the hash of the differences it records."""
    return [
        _tampered(
            f"the ledger: block {b.height} ({b.path}) records differences that do "
            f"not hash to its content {short(b.content_hash)}; they were rewritten, "
            f"{_RESTORE}",
            b.path,
        )
        for b in snapshot.blocks
        if b.is_drift
        and hashlib.sha256((b.details or "").encode("utf-8")).hexdigest()
        != b.content_hash
    ]
