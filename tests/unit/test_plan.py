"""Planning decisions from plain objects: pending, out of order, partial, resume,
baseline, drift and status entries, with no database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chainops import plan
from chainops.errors import (
    ConfigError,
    MigrationFileError,
    OutOfOrder,
    PartiallyApplied,
    Refused,
    RequirementNotApplied,
    SchemaDrift,
)
from chainops.model import Directives, Drift, LedgerSnapshot, Options, State, Status
from tests.fixtures.ledger import (
    attempt,
    blocks_for,
    migration,
    repeatable_block,
    snapshot,
)

A, B, C = (migration(f"001-schema/00{i}-t{i}.sql") for i in (1, 2, 3))
F = migration("002-functions/001-f.sql")


def test_plan_lists_every_file_in_order_when_ledger_is_empty():
    steps = plan.plan_apply(LedgerSnapshot(exists=False), [A, B, F], Options())

    assert steps.files == (A, B, F)
    assert all(step.attempt is None for step in steps.steps)


def test_plan_lists_only_files_without_a_block_when_some_are_applied():
    steps = plan.plan_apply(snapshot(blocks_for([A, B])), [A, B, C], Options())

    assert steps.files == (C,)


def test_plan_refuses_out_of_order_file_naming_the_applied_one():
    applied = snapshot(blocks_for([A, C]))

    with pytest.raises(OutOfOrder) as caught:
        plan.plan_apply(applied, [A, B, C], Options())

    assert (caught.value.path, caught.value.applied_path) == (B.path, C.path)


def test_plan_keeps_out_of_order_file_and_says_so_when_allowed():
    steps = plan.plan_apply(
        snapshot(blocks_for([A, C])), [A, B, C], Options(allow_out_of_order=True)
    )

    assert steps.files == (B,)
    assert steps.out_of_order == ((B, C.path),)


def test_plan_ignores_order_across_folders_when_another_folder_is_ahead():
    steps = plan.plan_apply(snapshot(blocks_for([A, F])), [A, B, F], Options())

    assert steps.files == (B,)


def test_plan_retries_failed_file_when_no_statement_was_in_place():
    failed = snapshot(blocks_for([A]), [attempt(B, Status.FAILED)])

    steps = plan.plan_apply(failed, [A, B], Options())

    assert steps.files == (B,)
    assert steps.steps[0].attempt is None


@pytest.mark.parametrize(
    ("status", "done", "total", "says"),
    [
        (Status.FAILED, 2, 5, "statement 3 failed: boom"),
        (Status.RUNNING, 2, 5, "statement 3 was running when the run stopped"),
        (Status.RUNNING, 5, 5, "has all 5 statements in place"),
    ],
)
def test_plan_refuses_partly_applied_file_unless_resuming(status, done, total, says):
    partial = snapshot(blocks_for([A]), [attempt(B, status, done, total)])

    with pytest.raises(PartiallyApplied, match=says):
        plan.plan_apply(partial, [A, B], Options())

    resumed = plan.plan_apply(partial, [A, B], Options(resume=True))
    assert resumed.steps[0].attempt == partial.attempts[0]


def test_plan_does_not_judge_attempts_when_not_final():
    running = snapshot(attempts=[attempt(A, Status.RUNNING, 1, 3)])

    steps = plan.plan_apply(running, [A], Options(), final=False)

    assert steps.files == (A,)
    assert steps.steps[0].attempt is None


def test_plan_reads_each_pending_files_directives():
    slow = migration(
        "001-schema/002-slow.sql", "-- CHAINOPS:lock-timeout=30s\nSELECT 1;"
    )

    steps = plan.plan_apply(snapshot(blocks_for([A])), [A, slow], Options())

    assert steps.steps[0].directives == Directives(lock_timeout="30s")


def test_plan_refuses_unknown_directive_before_anything_is_written():
    bogus = migration("001-schema/001-x.sql", "-- CHAINOPS:bogus\nSELECT 1;")

    with pytest.raises(MigrationFileError, match=r"001-x\.sql:1: unknown directive"):
        plan.plan_apply(LedgerSnapshot(exists=False), [bogus], Options())


def test_plan_refuses_older_ledger_format_for_reading_commands():
    old = replace(snapshot(), meta=(("format_version", "1"),), shape_version=1)

    with pytest.raises(ConfigError, match="run inv migrate once to upgrade it"):
        plan.refuse_old_format(old)


def test_baseline_chooses_files_up_to_the_number_given():
    assert plan.plan_baseline(LedgerSnapshot(exists=False), [A, B, F], 1002) == (A, B)


def test_baseline_refuses_when_no_file_is_numbered_that_low():
    with pytest.raises(Refused, match="no migration is numbered #999 or below"):
        plan.plan_baseline(LedgerSnapshot(exists=False), [A], 999)


def test_baseline_refuses_a_ledger_that_holds_blocks():
    with pytest.raises(Refused, match="already holds 1 blocks"):
        plan.plan_baseline(snapshot(blocks_for([A])), [A, B], 1002)


def drift() -> Drift:
    head = blocks_for([A])[0]
    return Drift(head, "a" * 64, "b" * 64, ("table public.x added",))


@pytest.mark.parametrize(
    ("accept", "production"), [(False, False), (True, False), (True, True)]
)
def test_drift_is_recorded_when_not_refused(accept, production):
    assert plan.decide_drift(drift(), Options(accept_drift=accept), production) is None


def test_drift_is_refused_in_production_unless_accepted():
    with pytest.raises(SchemaDrift, match=r"table public\.x added; undo the change"):
        plan.decide_drift(drift(), Options(), production=True)


def test_entries_give_each_migration_its_state_in_number_order():
    ledger = snapshot(blocks_for([A]), [attempt(C, Status.FAILED)])

    entries = plan.entries(ledger, [A, B, C], [])

    assert [(e.path, e.state) for e in entries] == [
        (A.path, State.APPLIED),
        (B.path, State.PENDING),
        (C.path, State.FAILED),
    ]
    assert entries[2].error == "boom"


def needing(path: str, target: str) -> object:
    return migration(path, f"-- chainops:requires={target}\nSELECT 1;")


@pytest.mark.parametrize(
    ("applied", "files", "refused"),
    [
        ([A], [A, needing("001-schema/002-b.sql", "1001")], None),
        ([], [A, needing("001-schema/002-b.sql", "#1001")], None),  # earlier, same run
        ([A], [A, needing("001-schema/002-b.sql", A.path)], None),
        ([], [needing("001-schema/001-a.sql", "2001"), F], "pending and comes after"),
        ([], [needing("001-schema/001-a.sql", "1009")], "names no migration file"),
        ([], [needing("001-schema/001-a.sql", "1001")], "which is this file"),
    ],
)
def test_plan_refuses_requirement_only_when_not_applied_before_the_file(
    applied, files, refused
):
    ledger = snapshot(blocks_for(applied)) if applied else LedgerSnapshot(exists=False)
    if refused is None:
        assert plan.plan_apply(ledger, files, Options()).files == tuple(
            f for f in files if f not in applied
        )
        return
    with pytest.raises(RequirementNotApplied, match=r"nothing was applied$") as caught:
        plan.plan_apply(ledger, files, Options())
    assert refused in str(caught.value)
    assert str(caught.value).startswith(f"{files[0].path}:1: requires ")


def test_plan_reads_checks_with_their_line_and_place():
    text = "SELECT 1;\n-- chainops:check = SELECT true  \nSELECT 2;"
    step = plan.plan_apply(
        LedgerSnapshot(exists=False),
        [migration("001-schema/001-a.sql", text)],
        Options(),
    ).steps[0]
    (check,) = step.directives.checks
    assert (check.line, check.query) == (2, "SELECT true")
    assert text[check.offset :].startswith("SELECT true")


def test_plan_applies_repeatable_files_last_by_path_and_only_when_changed():
    r1 = migration("001-schema/R-b.sql", "SELECT 1;")
    r2 = migration("001-schema/R-a.sql", "SELECT 2;")
    fresh = plan.plan_apply(LedgerSnapshot(exists=False), [A, r1, r2, F], Options())
    applied = blocks_for([A, F])
    applied.append(repeatable_block(applied, r1))
    edited = migration("001-schema/R-a.sql", "SELECT 3;")

    again = plan.plan_apply(snapshot(applied), [A, r1, edited, F], Options())

    assert fresh.files == (A, F, r2, r1)
    assert again.files == (edited,)
    assert plan.plan_baseline(LedgerSnapshot(exists=False), [A, r1], 1001) == (A,)
