"""What the watcher says and applies, decided from synthetic ledger states and
migration files: warnings, templates, syntax errors, order, retries.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from chainops.dev.triage import Decider
from chainops.model import GENESIS, Block, Finding, MigrationFile, Script
from chainops.results import Entry, StatusReport
from tests.fixtures.hashing import hash_text

APPLIED_AT = datetime(2025, 9, 21, 10, 0, tzinfo=timezone.utc)


CREATE_A = "CREATE TABLE a ();\n"


def migration(path: str, text: str = CREATE_A) -> MigrationFile:
    category, name = path.split("/")
    return MigrationFile(
        int(category[:3]), category, int(name[:3]), path, text.encode(), hash_text(text)
    )


def repeatable(path: str, text: str) -> MigrationFile:
    category, _ = path.split("/")
    return MigrationFile(
        int(category[:3]), category, 0, path, text.encode(), hash_text(text)
    )


def block(file: MigrationFile, height: int = 1) -> Block:
    return Block(
        height=height,
        number=file.number,
        path=file.path,
        content_hash=file.sha256,
        hash_algorithm="sha256-lf",
        applied_at=APPLIED_AT,
        applied_by="alice",
        client_host="laptop",
        mode="transaction",
        previous_hash=GENESIS,
        block_hash="b" * 64,
    )


def status(
    applied: list[MigrationFile],
    pending: list[tuple[MigrationFile, str]] | None = None,
    findings: tuple[Finding, ...] = (),
) -> StatusReport:
    problems = {f.path: f.kind for f in findings}
    entries = [
        Entry(
            f.number, f.path, problems.get(f.path, "applied"), APPLIED_AT, block(f, i)
        )
        for i, f in enumerate(applied, start=1)
    ]
    entries += [Entry(f.number, f.path, state) for f, state in pending or []]
    entries.sort(key=lambda e: e.number)
    return StatusReport(tuple(entries), findings, "b" * 64, len(applied))


def test_decide_applies_new_file_with_applied_files_as_snapshot():
    old, new = migration("001-s/001-a.sql"), migration("001-s/002-b.sql")

    decision = Decider("migrations").decide(
        status([old], [(new, "pending")]), [old, new], frozenset()
    )

    assert decision.lines == ()
    assert decision.ready == (new,)
    assert decision.files == (old, new)


def test_decide_waits_once_for_sql_when_file_is_a_template():
    template = migration("001-s/001-a.sql", "-- Migration: a\n-- Your SQL here\n")
    decider = Decider("migrations")
    state = status([], [(template, "pending")])

    first = decider.decide(state, [template], frozenset())
    again = decider.decide(state, [template], frozenset({template.path}))

    assert first.lines == ("○ 001-s/001-a.sql waits for SQL (it has none yet)",)
    assert first.ready == again.ready == ()
    assert again.lines == ()


def test_decide_holds_file_and_those_after_it_when_syntax_is_wrong():
    broken = migration("001-s/001-a.sql", "CREATE TABLE a (;\n")
    later = migration("002-f/001-b.sql")
    decider = Decider("migrations")
    state = status([], [(broken, "pending"), (later, "pending")])

    decision = decider.decide(state, [broken, later], frozenset())
    fixed = migration("001-s/001-a.sql")
    after_fix = decider.decide(state, [fixed, later], frozenset({fixed.path}))

    assert decision.ready == ()
    assert decision.lines[0].startswith("✗ 001-s/001-a.sql:1:17: syntax error")
    assert decision.lines[1] == (
        "○ 002-f/001-b.sql waits for 001-s/001-a.sql, which is applied first"
    )
    assert after_fix.ready == (fixed, later)


def test_decide_reports_each_syntax_error_when_file_saved_with_new_error():
    decider = Decider("migrations")
    first = migration("001-s/001-a.sql", "CREATE TABLE a (;\n")
    second = migration("001-s/001-a.sql", "CREATE TABLE a (b;\n")

    lines = [
        decider.decide(status([], [(f, "pending")]), [f], frozenset()).lines
        for f in (first, first, second)
    ]

    assert [len(group) for group in lines] == [1, 0, 1]


def test_decide_warns_once_then_notices_restore_when_applied_file_edited():
    original = migration("001-s/001-a.sql")
    edited = migration("001-s/001-a.sql", CREATE_A + "-- more\n")
    finding = Finding(
        "changed", original.path, "edited", original.sha256, edited.sha256
    )
    decider = Decider("migrations")

    warned = decider.decide(
        status([original], findings=(finding,)), [edited], frozenset()
    )
    again = decider.decide(
        status([original], findings=(finding,)), [edited], frozenset()
    )
    restored = decider.decide(status([original]), [original], frozenset())

    text = "\n".join(warned.lines)
    assert warned.lines[0] == (
        "✗ WARNING: 001-s/001-a.sql was edited after it was applied "
        "(block 1, applied 2025-09-21 10:00:00 UTC by alice)"
    )
    assert original.sha256[:12] in text
    assert edited.sha256[:12] in text
    assert "git restore migrations/001-s/001-a.sql" in text
    assert "inv migrate.create" in text
    assert again.lines == ()
    assert restored.lines == ("✓ 001-s/001-a.sql is intact again (it matches block 1)",)


def test_decide_warns_and_applies_nothing_when_applied_file_deleted():
    gone, new = migration("001-s/001-a.sql"), migration("001-s/002-b.sql")
    finding = Finding("missing", gone.path, "missing")

    decision = Decider("db/migrations").decide(
        status([gone], [(new, "pending")], (finding,)), [new], frozenset()
    )

    assert decision.lines[0].startswith(
        "✗ WARNING: 001-s/001-a.sql was deleted, but it was applied (block 1,"
    )
    assert "git restore db/migrations/001-s/001-a.sql" in decision.lines[1]
    assert (
        decision.lines[2] == "○ 1 pending file(s) wait until the chain verifies again"
    )
    assert decision.ready == ()


def test_decide_explains_renumbering_when_new_file_below_applied_one():
    applied = migration("001-s/004-d.sql")
    low, other = migration("001-s/002-b.sql"), migration("002-f/001-x.sql")

    decision = Decider("migrations").decide(
        status([applied], [(low, "pending"), (other, "pending")]),
        [low, applied, other],
        frozenset(),
    )

    assert decision.lines == (
        "✗ 001-s/002-b.sql is numbered below the applied 001-s/004-d.sql, so it is "
        "not applied (files apply in order and the ledger already moved past it); "
        "rename it to 001-s/005-b.sql, or apply it as it is with inv migrate "
        "--allow-out-of-order",
    )
    assert decision.ready == (other,)
    assert low not in decision.files


def test_decide_retries_failed_file_only_when_saved_again():
    failed = migration("001-s/001-a.sql")
    decider = Decider("migrations")
    decider.failed(failed.path)  # it just failed: its error is on screen already
    state = status([], [(failed, "failed")])

    untouched = decider.decide(state, [failed], frozenset())
    saved = decider.decide(state, [failed], frozenset({failed.path}))

    assert (untouched.lines, untouched.ready) == ((), ())
    assert saved.ready == (failed,)


def test_decide_says_why_when_started_with_failed_file():
    failed = migration("001-s/001-a.sql")

    decision = Decider("migrations").decide(
        status([], [(failed, "failed")]), [failed], frozenset()
    )

    assert decision.lines == ("○ 001-s/001-a.sql failed last time; save it to retry",)
    assert decision.ready == ()


def test_decide_says_again_when_file_deleted_and_written_anew():
    template = migration("001-s/001-a.sql", "-- nothing yet\n")
    decider = Decider("migrations")
    state = status([], [(template, "pending")])

    first = decider.decide(state, [template], frozenset())
    decider.decide(status([]), [], frozenset())
    anew = decider.decide(state, [template], frozenset())

    assert first.lines == anew.lines != ()


def test_decide_holds_files_silently_when_a_write_is_still_settling():
    settling = migration("001-s/001-a.sql", "CREATE TABLE a (")  # half written
    later = migration("002-f/001-b.sql")
    state = status([], [(settling, "pending"), (later, "pending")])

    decision = Decider("migrations").decide(
        state, [settling, later], frozenset(), frozenset({settling.path})
    )

    assert (decision.lines, decision.ready) == ((), ())


def test_decide_retries_failed_file_when_its_verify_script_is_saved():
    script = Script("001-s/001-a.verify.sql", b"SELECT true;\n", hash_text("x"))
    failed = replace(migration("001-s/001-a.sql"), verify_script=script)
    decider = Decider("migrations")
    decider.failed(failed.path)
    state = status([], [(failed, "failed")])

    saved = decider.decide(state, [failed], frozenset({script.path}))

    assert saved.ready == (failed,)


def test_decide_holds_file_when_its_verify_script_does_not_parse():
    script = Script("001-s/001-a.verify.sql", b"SELEC 1;\n", hash_text("x"))
    held = replace(migration("001-s/001-a.sql"), verify_script=script)

    decision = Decider("migrations").decide(
        status([], [(held, "pending")]), [held], frozenset()
    )

    assert decision.ready == ()
    assert decision.lines[0].startswith("✗ 001-s/001-a.verify.sql:1:1: syntax error")


def test_decide_applies_changed_repeatable_and_leaves_unchanged_one_out():
    numbered = migration("001-s/001-a.sql")
    changed = repeatable("002-f/R-total.sql", "SELECT 2;\n")
    same = repeatable("002-f/R-same.sql", "SELECT 3;\n")
    old = replace(block(changed, 2), number=-2, mode="repeatable",
                  content_hash=hash_text("SELECT 1;\n"))  # fmt: skip
    kept = replace(block(same, 3), number=-3, mode="repeatable")
    state = status([numbered])
    state = replace(
        state,
        entries=(
            *state.entries,
            Entry(2000, changed.path, "pending", None, old),
            Entry(2000, same.path, "applied", APPLIED_AT, kept),
        ),
    )

    decision = Decider("migrations").decide(
        state, [numbered, changed, same], frozenset({changed.path})
    )

    assert decision.ready == (changed,)
    assert decision.files == (numbered, changed, same)
