"""Pure revert logic: which blocks stand, what a revert undoes, and how plan,
verify and the ledger's history read a chain holding reverts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chainops import ledger_shape, plan, reverts, verify
from chainops.errors import ConfigError, Refused
from chainops.model import FindingKind, Options, State
from tests.fixtures.ledger import (
    blocks_for,
    file_block,
    history_of,
    migration,
    repeatable_block,
    revert_block,
    snapshot,
    with_down,
)

A = with_down(migration("001-schema/001-a.sql", "CREATE TABLE a ();\n"))
B = with_down(migration("001-schema/002-b.sql", "CREATE TABLE b ();\n"))
C = migration("001-schema/003-c.sql", "CREATE TABLE c ();\n")  # no down script


def reverted_chain():
    """a, b applied; b reverted; b (edited) applied again."""
    blocks = blocks_for([A, B])
    blocks.append(revert_block(blocks, B))
    b2 = replace(B, data=b"CREATE TABLE b (x int);\n", sha256="f" * 64)
    blocks.append(file_block(blocks, b2))
    return blocks, b2


def test_standing_leaves_out_reverts_and_what_they_undid():
    blocks = blocks_for([A, B])
    blocks.append(revert_block(blocks, B))
    assert reverts.reverted(blocks) == {2: blocks[2]}
    assert [b.height for b in reverts.standing(blocks)] == [1]
    assert plan.find_pending(blocks, [A, B]) == [B]


def test_plan_revert_last_to_and_refusals():
    blocks = blocks_for([A, B])
    assert [(b.height, f.path) for b, f in reverts.plan_revert(blocks, [A, B])] == [
        (2, B.path)
    ]
    chosen = reverts.plan_revert(blocks, [A, B], last=2)
    assert [b.number for b, _ in chosen] == [1002, 1001]
    assert [b.number for b, _ in reverts.plan_revert(blocks, [A, B], to=1001)] == [1002]
    with pytest.raises(Refused, match="no applied migration to revert above #1002"):
        reverts.plan_revert(blocks, [A, B], to=1002)
    with pytest.raises(ConfigError, match="not both"):
        reverts.plan_revert(blocks, [A, B], last=1, to=1)
    with pytest.raises(ConfigError):
        reverts.plan_revert(blocks, [A, B], last=0)
    three = blocks_for([A, B, C])
    with pytest.raises(Refused, match=r"003-c.sql \(block 3\) has no down script"):
        reverts.plan_revert(three, [A, B, C])
    # A reverted block is not reverted twice: the next one down is.
    blocks.append(revert_block(blocks, B))
    assert [b.number for b, _ in reverts.plan_revert(blocks, [A, B])] == [1001]


def test_plan_revert_to_refuses_a_block_beneath_a_kept_one():
    blocks = blocks_for([A, replace(C, down_script=B.down_script), B])
    with pytest.raises(Refused, match=r"003-c.sql \(#1003, block 2\) comes before"):
        reverts.plan_revert(blocks, [A, B, C], to=1002)


def test_verify_accepts_a_reverted_then_reapplied_file_and_holds_the_newest():
    blocks, b2 = reverted_chain()
    assert verify.verify(snapshot(blocks), [A, b2]) == []
    # The file matches the reverted block but not the newest: that is an edit.
    found = verify.verify(snapshot(blocks), [A, B])
    assert [f.kind for f in found] == [FindingKind.CHANGED]


def test_verify_does_not_report_an_edited_reverted_file():
    blocks = blocks_for([A, B])
    blocks.append(revert_block(blocks, B))
    edited = replace(B, data=b"CREATE TABLE b (y int);\n", sha256="e" * 64)
    assert verify.verify(snapshot(blocks), [A, edited]) == []
    pending = plan.plan_apply(snapshot(blocks), [A, edited], Options()).files
    assert [f.path for f in pending] == [B.path]


def test_verify_flags_a_revert_block_that_undoes_nothing():
    blocks = blocks_for([A])
    blocks.append(revert_block(blocks, B))  # b was never applied
    found = verify.verify(snapshot(blocks), [A, B])
    assert [f.kind for f in found if "does not match" in f.message] == [
        FindingKind.TAMPERED
    ]


def test_verify_flags_a_number_repeated_without_a_revert():
    blocks = blocks_for([A, B])
    blocks.append(file_block(blocks, B))
    found = verify.verify(snapshot(blocks), [A, B])
    assert any("repeats #1002" in f.message for f in found)


def test_history_matches_blocks_as_a_multiset():
    blocks, _ = reverted_chain()
    assert ledger_shape.verify_ledger(snapshot(blocks)) == []
    history = history_of(blocks)
    # One of the two rows for #1002 deleted: the block it recorded has none.
    missing = history[:1] + history[2:]
    found = ledger_shape.verify_ledger(snapshot(blocks, history=missing))
    assert [f.message.split(";")[0] for f in found] == [
        "the ledger: block 001-schema/002-b.sql (#1002) has no history row"
    ]
    doubled = ledger_shape.verify_ledger(
        snapshot(blocks, history=history + history[3:])
    )
    assert len(doubled) == 1
    assert "the history records 001-schema/002-b.sql" in doubled[0].message


def test_status_entries_show_the_revert_and_the_file_again():
    blocks = blocks_for([A, B])
    blocks.append(revert_block(blocks, B))
    entries = plan.entries(snapshot(blocks), [A, B], [])
    found = [(e.number, e.path, e.state) for e in entries]
    assert found == [
        (1001, A.path, State.APPLIED),
        (1002, B.path, State.REVERTED),
        (1002, "001-schema/002-b.down.sql", State.REVERTED),
        (1002, B.path, State.PENDING),
    ]


def test_a_repeatable_file_named_like_a_down_script_is_still_repeatable():
    r = migration("002-functions/R-x.down.sql")
    blocks = blocks_for([A])
    blocks.append(repeatable_block(blocks, r))
    assert not reverts.is_down(r)
    assert verify.verify(snapshot(blocks), [A, r]) == []
