"""Every integrity invariant, as pure functions over what was read: the ledger
snapshot, the migration files, chain.lock and the schema drift found.

Returns findings; `raise_findings` turns them into the error that stops a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from chainops import chain
from chainops.errors import (
    AppliedFileChanged,
    AppliedFileMissing,
    DriftError,
    LedgerTampered,
    PartiallyApplied,
    short,
    with_more,
)
from chainops.ledger_shape import verify_ledger
from chainops.model import (
    GENESIS,
    Attempt,
    Block,
    Drift,
    Finding,
    FindingKind,
    LedgerSnapshot,
    MigrationFile,
    Script,
    Status,
)
from chainops.reverts import DOWN_SUFFIX, is_file_block, reverted, standing
from chainops.source.files import parse_name
from chainops.source.lockfile import LOCK_NAME, RELOCK, Lock, locked_sources
from chainops.source.template import template_hash

if TYPE_CHECKING:
    from chainops.digest import Anchor


def verify(
    snapshot: LedgerSnapshot,
    files: Sequence[MigrationFile],
    *,
    lock: Lock | None = None,
    strict: bool = False,
    drift: Drift | None = None,
    newer: frozenset[str] = frozenset(),
    anchor: Anchor | None = None,
    partial: bool = False,
) -> list[Finding]:
    """Every problem with the chain, the applied files, chain.lock and the schema.

    `strict` (production, or a ledger marked production whatever the local settings
    say) also holds the files to the lock. `newer`: paths of blocks another run
    appended after `files` was read; they are not reported missing. `anchor`:
    digests kept outside the database that the ledger must still contain.
    `partial` reports files that stopped midway (migrate plans those itself).
    """
    strict = strict or snapshot.is_production
    findings = [
        f
        for f in verify_links(snapshot.blocks) + verify_files(snapshot.blocks, files)
        if not (f.kind == FindingKind.MISSING and f.path in newer)
    ]
    findings += verify_ledger(snapshot)
    if anchor is not None:
        from chainops import digest  # base64, json and 3 records: only with an anchor

        findings += digest.check(anchor, snapshot)
    stopped = verify_partial(snapshot, files) if partial else []
    if drift is not None and not stopped:
        # A partly applied file's statements in place change the schema too; they
        # are that file's, not drift, until it is resumed and gets its block.
        findings += drift.findings()
    findings += stopped
    if lock is not None:
        extra = verify_lock_ledger(lock, snapshot.blocks, files, strict)
        if strict:
            extra = verify_lock(lock, files) + extra
        # The lock vouches for a file that matches it: report the block, not the file.
        vouched = {f.path for f in extra if f.kind == FindingKind.TAMPERED}
        findings = [
            f
            for f in findings
            if f.kind != FindingKind.CHANGED or f.path not in vouched
        ] + extra
    return findings


def raise_findings(findings: Sequence[Finding]) -> None:
    """Raise the DriftError that names the first finding and carries them all."""
    if not findings:
        return
    first = findings[0]
    cls: type[DriftError] = {
        FindingKind.CHANGED: AppliedFileChanged,
        FindingKind.MISSING: AppliedFileMissing,
        FindingKind.RENAMED: AppliedFileMissing,
        FindingKind.PARTIAL: PartiallyApplied,
    }.get(first.kind, LedgerTampered)
    message = with_more(first.message, len(findings) - 1)
    raise cls(message + "; nothing was applied", tuple(findings))


def verify_partial(
    snapshot: LedgerSnapshot, files: Sequence[MigrationFile]
) -> list[Finding]:
    """Non-transactional files with statements in place but no block yet."""
    applied = {b.number for b in standing(snapshot.blocks)}
    paths = {f.number: f.path for f in files}
    return [
        Finding(
            FindingKind.PARTIAL,
            paths.get(a.number, a.path),
            partly_applied(paths.get(a.number, a.path), a),
        )
        for a in snapshot.attempts
        if a.number not in applied
        and (a.status == Status.RUNNING or a.statements_done > 0)
    ]


def partly_applied(path: str, attempt: Attempt) -> str:
    """What is in place of a file that stopped midway, and how to go on."""
    done, nxt = attempt.statements_done, attempt.statements_done + 1
    total = f" of {attempt.statements_total}" if attempt.statements_total else ""
    in_place = (
        f"statements 1-{done}{total} are in place"
        if done
        else "no statement is in place"
    )
    if done and done == attempt.statements_total:
        return (
            f"{path} has all {done} statements in place but the run stopped "
            "before recording its block; run inv migrate --resume to record it"
        )
    if attempt.status == Status.RUNNING:
        what = (
            f"statement {nxt} was running when the run stopped, check whether "
            "it took effect (an INVALID index means it did not: drop it)"
        )
    else:
        what = f"statement {nxt} failed: {attempt.error_message}"
    return (
        f"{path} was applied only partly: {in_place} and {what}; fix the cause, "
        f"then run inv migrate --resume to continue at statement {nxt}"
    )


def verify_links(blocks: Sequence[Block]) -> list[Finding]:
    """Check heights, links and hashes: altered, deleted, forged or reordered rows."""
    findings: list[Finding] = []
    previous = GENESIS
    seen: dict[int, str] = {}  # standing numbers: a reverted one may come again
    undone = {r.height: b for b, r in _pairs(blocks)}
    for expected_height, block in enumerate(blocks, start=1):
        if block.height != expected_height:
            findings.append(
                Finding(
                    FindingKind.TAMPERED,
                    block.path,
                    f"the ledger: {_where(block)} should be block {expected_height}; "
                    "a block was deleted or inserted",
                )
            )
        if block.previous_hash != previous:
            findings.append(
                Finding(
                    FindingKind.TAMPERED,
                    block.path,
                    f"the ledger: {_where(block)} links to "
                    f"{short(block.previous_hash)} but the block before it is "
                    f"{short(previous)}; a block was deleted, inserted or reordered",
                    expected=previous,
                    current=block.previous_hash,
                )
            )
        actual = chain.recompute(block)
        if actual != block.block_hash:
            findings.append(
                Finding(
                    FindingKind.TAMPERED,
                    block.path,
                    f"the ledger: {_where(block)} was altered; its hash does not "
                    f"recompute (stored {short(block.block_hash)}, "
                    f"recomputed {short(actual)})",
                    expected=actual,
                    current=block.block_hash,
                )
            )
        key = parse_name(*block.path.split("/", 1)) if "/" in block.path else None
        # Drift, repeatable and revert blocks are numbered -height.
        numbered = is_file_block(block)
        number = key and key[0] * 1000 + key[1] if numbered else -block.height
        if key is not None and (key[1] == 0) != block.is_repeatable:
            number = None  # only a repeatable block names an R-<name>.sql file
        down = block.path.endswith(DOWN_SUFFIX) and not block.is_repeatable
        if block.is_revert != down or (down and block.height not in undone):
            number = None  # only a revert block names a down script, and undoes one
        if number != block.number:
            findings.append(
                Finding(
                    FindingKind.TAMPERED,
                    block.path,
                    f"the ledger: {_where(block)} has number #{block.number}, which "
                    "does not match its file name",
                )
            )
        if block.number in seen:
            findings.append(
                Finding(
                    FindingKind.TAMPERED,
                    block.path,
                    f"the ledger: {_where(block)} repeats #{block.number}, already "
                    f"applied as {seen[block.number]}",
                )
            )
        seen[block.number] = block.path
        if block.is_revert and (target := undone.get(block.height)) is not None:
            seen.pop(target.number, None)
        previous = block.block_hash
    return findings


def _where(block: Block) -> str:
    """How a finding names a block: built for a finding, not for every block."""
    return f"block {block.height} ({block.path})"


def _pairs(blocks: Sequence[Block]) -> list[tuple[Block, Block]]:
    """(reverted block, revert block) for every revert in the chain."""
    undone = reverted(blocks)
    return [(b, undone[b.height]) for b in blocks if b.height in undone]


def verify_files(
    blocks: Iterable[Block], files: Sequence[MigrationFile]
) -> list[Finding]:
    """Check that every applied file is present and unchanged."""
    by_path = {f.path: f for f in files}
    by_number = {f.number: f for f in files}
    findings: list[Finding] = []
    # Editing a repeatable file is no drift, nor is editing a reverted one.
    for block in standing(list(blocks)):
        if block.is_drift or block.is_repeatable:
            continue
        current = by_path.get(block.path)
        if current is None:
            other = by_number.get(block.number)
            if other is not None and other.sha256 == block.content_hash:
                findings.append(
                    Finding(
                        FindingKind.RENAMED,
                        block.path,
                        f"{block.path} was applied and is now named {other.path}; "
                        "rename it back (applied migrations are never renamed)",
                    )
                )
            else:
                findings.append(
                    Finding(
                        FindingKind.MISSING,
                        block.path,
                        f"{block.path} was applied but is missing; restore it from git "
                        "(applied migrations are never deleted)",
                    )
                )
        elif current.sha256 != block.content_hash:
            findings.append(
                Finding(
                    FindingKind.CHANGED,
                    block.path,
                    f"{block.path} was edited after it was applied; restore it from "
                    "git and put the change in a new migration",
                    expected=block.content_hash,
                    current=current.sha256,
                )
            )
    return findings


def verify_lock(
    lock: Lock, files: Sequence[MigrationFile], *, created_ok: bool = False
) -> list[Finding]:
    """Files not in the lock, differing from it, or listed in it but missing.

    `created_ok` (outside production): a file whose entry is still the untouched
    template `create` locked is being written, the normal flow, not a problem.
    """
    locked = lock.hashes()
    findings: list[Finding] = []
    for f in locked_sources(files):  # verify scripts are locked too
        expected = locked.get(f.path)
        changed = expected not in (None, f.sha256)
        if created_ok and changed and template_hash(f.text) == expected:
            continue
        if expected is None:
            findings.append(
                Finding(
                    FindingKind.UNLOCKED,
                    f.path,
                    f"{f.path} is not in {LOCK_NAME}; {RELOCK} to add it",
                )
            )
        elif expected != f.sha256:
            findings.append(
                Finding(
                    FindingKind.LOCK,
                    f.path,
                    f"{f.path} differs from {LOCK_NAME} (locked {short(expected)}, "
                    f"now {short(f.sha256)}); {_relock_advice(f)}",
                    expected=expected,
                    current=f.sha256,
                )
            )
    present = {f.path for f in locked_sources(files)}
    findings += [
        Finding(
            FindingKind.LOCK,
            path,
            f"{LOCK_NAME} lists {path} but the file is missing; restore it from git, "
            f"or {RELOCK} if it was never applied",
            expected=digest,
        )
        for path, digest in locked.items()
        if path not in present
    ]
    return findings


def _relock_advice(source: MigrationFile | Script) -> str:
    """A repeatable file or a verify script may change: the lock follows it."""
    if isinstance(source, Script) or source.is_repeatable:
        return f"{RELOCK} and commit it with the change"
    return (
        "if it was applied anywhere, restore it from git and put the change in a "
        f"new migration, otherwise {RELOCK}"
    )


def verify_lock_ledger(
    lock: Lock,
    blocks: Iterable[Block],
    files: Sequence[MigrationFile],
    strict: bool,
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
    for b in standing(list(blocks)):
        # A drift block records no file; a repeatable file's older versions differ
        # from the lock by design (its file is held to the lock by verify_lock),
        # as do reverted versions and down scripts.
        if b.is_drift or b.is_repeatable:
            continue
        where = f"the ledger: block {b.height} ({b.path})"
        expected = locked.get(b.path)
        if expected is None:
            if strict:
                findings.append(
                    Finding(
                        FindingKind.UNLOCKED,
                        b.path,
                        f"{where} is not in {LOCK_NAME}; a file was applied without "
                        f"being locked, {RELOCK} and commit it if it belongs",
                    )
                )
        elif expected != b.content_hash and current.get(b.path) == expected:
            findings.append(
                Finding(
                    FindingKind.TAMPERED,
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
                    FindingKind.LOCK,
                    b.path,
                    f"{where} records content {short(b.content_hash)} but "
                    f"{LOCK_NAME} has {short(expected)}; a version of the file that "
                    "was never locked was applied",
                    expected=expected,
                    current=b.content_hash,
                )
            )
    return findings
