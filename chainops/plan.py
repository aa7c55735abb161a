"""What migrate does next, decided from the ledger snapshot and the files alone.

Pure: returns typed steps, or raises the refusal (out of order, partly applied, an
old ledger format, nothing to baseline). `execute` carries the steps out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from chainops.errors import (
    ConfigError,
    OutOfOrder,
    PartiallyApplied,
    Refused,
    RequirementNotApplied,
    SchemaDrift,
)
from chainops.model import (
    FORMAT_VERSION,
    ApplyFile,
    Attempt,
    Block,
    Drift,
    Finding,
    FindingKind,
    LedgerSnapshot,
    MigrationFile,
    Options,
    Plan,
    State,
    Status,
)
from chainops.results import Entry, Planned
from chainops.reverts import reverted, standing
from chainops.source.directives import read_directives
from chainops.verify import partly_applied


def refuse_old_format(snapshot: LedgerSnapshot) -> None:
    """Reading commands never write: an older ledger is upgraded by migrate."""
    if snapshot.needs_upgrade:
        raise ConfigError(
            f"the ledger has format {snapshot.format_version}, older than this "
            f"chainops ({FORMAT_VERSION}); run inv migrate once to upgrade it"
        )


def plan_apply(
    snapshot: LedgerSnapshot,
    files: Sequence[MigrationFile],
    options: Options,
    *,
    final: bool = True,
) -> Plan:
    """The pending files in order, each with the partial attempt it resumes.

    Refuses a file numbered below an applied one of its folder unless allowed, and
    a non-transactional file that stopped midway unless resuming. Not `final` (read
    without the lock): a 'running' row may be another migrator's live work, so
    attempts are judged only under the lock.
    """
    pending = find_pending(snapshot.blocks, files)
    out_of_order = find_out_of_order(snapshot.blocks, pending)
    if out_of_order and not options.allow_out_of_order:
        file, applied_path = out_of_order[0]
        raise OutOfOrder(file.path, applied_path)
    attempts = _partial_attempts(snapshot, pending, options.resume) if final else {}
    # A bad directive refuses the run before anything, the ledger included, is made.
    steps = tuple(
        ApplyFile(f, attempts.get(f.number), read_directives(f)) for f in pending
    )
    repeatables = plan_repeatables(snapshot.blocks, files)
    refuse_unmet_requirements(snapshot.blocks, files, steps + repeatables)
    return Plan(steps + repeatables, tuple(out_of_order))


def plan_repeatables(
    blocks: Sequence[Block], files: Sequence[MigrationFile]
) -> tuple[ApplyFile, ...]:
    """Repeatable files never applied or changed since their newest block, by path
    (folder, then name): they follow the run's numbered files."""
    newest = newest_versions(blocks)
    return tuple(
        ApplyFile(f, None, read_directives(f))
        for f in sorted((f for f in files if f.is_repeatable), key=lambda f: f.path)
        if (block := newest.get(f.path)) is None or block.content_hash != f.sha256
    )


def newest_versions(blocks: Iterable[Block]) -> dict[str, Block]:
    """Each repeatable file's newest block, by path."""
    return {b.path: b for b in blocks if b.is_repeatable}


def refuse_unmet_requirements(
    blocks: Sequence[Block], files: Sequence[MigrationFile], steps: Sequence[ApplyFile]
) -> None:
    """Refuse the run if a step requires a migration that is neither applied nor
    applied earlier in this run: the order is the files' own, never rearranged."""
    if not any(step.directives.requires for step in steps):
        return  # the no-op and most runs: skip the maps of every block and file
    applied = {
        b.number for b in standing(blocks) if not (b.is_drift or b.is_repeatable)
    }
    numbered = [f for f in files if not f.is_repeatable]
    by_path = {f.path: f.number for f in numbered} | {
        b.path: b.number for b in blocks if not b.is_repeatable
    }
    by_number = {f.number: f.path for f in numbered}
    repeatable = {f.path for f in files if f.is_repeatable}
    for step in steps:
        for need in step.directives.requires:
            number = need.number
            if number is None:
                number = by_path.get(need.path or "")
            if number in applied:
                continue
            name = need.text
            if number is not None and number in by_number:
                name = f"#{number} ({by_number[number]})"
            where = f"{step.file.path}:{need.line}"
            if need.path in repeatable:
                why = (
                    "a repeatable migration, which runs after every numbered one and "
                    "again on each change, so nothing can wait for it; require a "
                    "numbered migration"
                )
            elif number is None or number not in by_number:
                why = "which names no migration file; fix the chainops:requires line"
            elif number == step.file.number:
                why = "which is this file; remove the chainops:requires line"
            else:
                why = (
                    "which is pending and comes after it; chainops never reorders "
                    "files, so renumber one of them or apply that one first"
                )
            raise RequirementNotApplied(
                f"{where}: requires {name}, {why}; nothing was applied"
            )
        applied.add(step.file.number)


def plan_baseline(
    snapshot: LedgerSnapshot,
    files: Sequence[MigrationFile],
    through: int,
    *,
    has_tables: bool = True,
) -> tuple[MigrationFile, ...]:
    """The files up to #`through` to record as blocks, in a ledger that holds none.

    Refuses a database without a single table of its own (`has_tables`): whatever
    those files build is plainly not there, and migrate would blame them later.
    """
    # Repeatable files are applied by the next migrate, as every version is.
    chosen = [f for f in files if f.number <= through and not f.is_repeatable]
    if not chosen:
        raise Refused(
            f"no migration is numbered #{through} or below; "
            "pass --through with the number of the last migration already in place"
        )
    if snapshot.blocks or snapshot.attempts:
        raise Refused(
            f"the ledger already holds {len(snapshot.blocks)} blocks; baseline only "
            "adopts a database that chainops has never migrated"
        )
    if not has_tables:
        raise Refused(
            f"the database has no tables, so migrations up to #{through} are not in "
            "place; check that DATABASE_URL names the database to adopt, or apply "
            "them with migrate instead; nothing was recorded"
        )
    return tuple(chosen)


def decide_drift(drift: Drift, options: Options, production: bool) -> None:
    """Refuse to build on drift in production unless it is accepted.

    Elsewhere it is recorded as a drift block: a run never adopts an out-of-band
    change silently as the new reference.
    """
    if production and not options.accept_drift:
        raise SchemaDrift(
            f"{drift.message()}; undo the change, or record it with "
            "migrate --accept-drift; nothing was applied",
            tuple(drift.findings()),
        )


def describe(plan: Plan) -> tuple[Planned, ...]:
    """How each planned file would be applied, for a dry run (parses the SQL)."""
    from chainops.source import statements

    planned = []
    for file in plan.files:
        analysis = statements.plan_migration(file.text, file.path)
        count = len(analysis.statements) if analysis.statements else None
        planned.append(Planned(file, analysis.transactional, analysis.reason, count))
    return tuple(planned)


def entries(
    snapshot: LedgerSnapshot,
    files: Sequence[MigrationFile],
    findings: Sequence[Finding],
) -> tuple[Entry, ...]:
    """Every migration's state for status: blocks, then pending files, by number."""
    file_state = {
        FindingKind.CHANGED: State.CHANGED,
        FindingKind.MISSING: State.MISSING,
        FindingKind.RENAMED: State.MISSING,
    }
    problems = {f.path: file_state[f.kind] for f in findings if f.kind in file_state}
    attempts = {a.number: a for a in snapshot.attempts}
    undone = reverted(snapshot.blocks)
    number_of = {
        r.height: b.number for b in snapshot.blocks if (r := undone.get(b.height))
    }
    found = [
        Entry(b.number, b.path, problems.get(b.path, State.APPLIED), b.applied_at, b)
        if b.height not in undone and not b.is_revert
        # A reverted block, and the revert block (numbered as the file it undid).
        else Entry(
            number_of.get(b.height, b.number), b.path, State.REVERTED, b.applied_at, b
        )
        for b in snapshot.blocks
        if not b.is_repeatable
    ] + _repeatable_entries(snapshot, files)
    for file in find_pending(snapshot.blocks, files):
        attempt = attempts.get(file.number)
        if attempt is None:
            found.append(Entry(file.number, file.path, State.PENDING))
        else:
            found.append(
                Entry(
                    file.number,
                    file.path,
                    State(attempt.status),
                    attempt.attempted_at,
                    error=attempt.error_message,
                )
            )
    return tuple(sorted(found, key=_place(snapshot.blocks)))


def _place(blocks: Sequence[Block]) -> Callable[[Entry], tuple[int, int, str]]:
    """Sort by number, an accepted drift block right after the block it follows."""
    after: dict[int, int] = {}
    previous = 0
    for block in blocks:
        if block.is_drift:
            after[block.number] = previous
        elif not (block.is_repeatable or block.is_revert):
            previous = block.number

    def key(entry: Entry) -> tuple[int, int, str]:
        if entry.number % 1000 == 0:  # repeatable: after its folder's numbered files
            return (entry.number + 999, 2, entry.path)
        if entry.number in after:
            return (after[entry.number], 1, f"{-entry.number:09d}")
        # A reverted file's blocks in chain order, then the file if pending again.
        return (
            entry.number,
            0,
            f"{entry.block.height if entry.block else 10**9 - 1:09d}",
        )

    return key


def _repeatable_entries(
    snapshot: LedgerSnapshot, files: Sequence[MigrationFile]
) -> list[Entry]:
    """One line per repeatable file: its newest version applied, pending (new or
    changed), failed since, or removed (the file deleted, its objects left)."""
    newest = newest_versions(snapshot.blocks)
    failed = {a.path: a for a in snapshot.attempts if a.number < 0}
    current = {f.path: f for f in files if f.is_repeatable}
    found = []
    for path in sorted(newest.keys() | current.keys()):
        block, file = newest.get(path), current.get(path)
        category = path.partition("/")[0]
        number = int(category[:3]) * 1000 if category[:3].isdigit() else 0
        attempt = failed.get(path)
        if attempt and (block is None or attempt.attempted_at > block.applied_at):
            at, error = attempt.attempted_at, attempt.error_message
            found.append(Entry(number, path, State(attempt.status), at, error=error))
        elif file is None and block is not None:
            found.append(Entry(number, path, State.REMOVED, block.applied_at, block))
        elif (
            block is not None and file is not None and block.content_hash == file.sha256
        ):
            found.append(Entry(number, path, State.APPLIED, block.applied_at, block))
        else:
            found.append(Entry(number, path, State.PENDING, None, block))
    return found


def find_pending(
    blocks: Iterable[Block], files: Sequence[MigrationFile]
) -> list[MigrationFile]:
    """Files with no standing block (never applied, or reverted), in order."""
    applied = {b.number for b in standing(list(blocks))}
    return [f for f in files if f.number not in applied and not f.is_repeatable]


def find_out_of_order(
    blocks: Iterable[Block], pending: Sequence[MigrationFile]
) -> list[tuple[MigrationFile, str]]:
    """Pending files numbered below an applied file of their own folder."""
    if not pending:
        return []  # the no-op: no need to walk the chain
    highest: dict[int, tuple[int, str]] = {}
    for block in standing(list(blocks)):
        if block.is_drift or block.is_repeatable:
            continue
        category, index = divmod(block.number, 1000)
        if index > highest.get(category, (0, ""))[0]:
            highest[category] = (index, block.path)
    return [
        (f, highest[f.category_index][1])
        for f in pending
        if f.index < highest.get(f.category_index, (0, ""))[0]
    ]


def _partial_attempts(
    snapshot: LedgerSnapshot, pending: Sequence[MigrationFile], resume: bool
) -> dict[int, Attempt]:
    """Refuse to re-run a non-transactional migration that stopped midway."""
    by_number = {a.number: a for a in snapshot.attempts}
    partial: dict[int, Attempt] = {}
    for f in pending:
        attempt = by_number.get(f.number)
        if attempt is None or (
            attempt.status == Status.FAILED and attempt.statements_done == 0
        ):
            continue
        partial[f.number] = attempt
        if not resume:
            raise _partly_applied(f, attempt)
    return partial


def _partly_applied(file: MigrationFile, attempt: Attempt) -> PartiallyApplied:
    return PartiallyApplied(partly_applied(file.path, attempt))
