"""Every integrity invariant from plain objects: the verifier with no database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chainops import verify
from chainops.errors import AppliedFileChanged, LedgerTampered
from chainops.model import Drift, FindingKind
from chainops.source import lockfile
from tests.fixtures.ledger import blocks_for, migration, snapshot

A = migration("001-schema/001-a.sql", "CREATE TABLE a ();\n")
B = migration("001-schema/002-b.sql", "CREATE TABLE b ();\n")
EDITED_B = migration("001-schema/002-b.sql", "CREATE TABLE b (id int);\n")


def kinds(findings) -> list[str]:
    return [str(f.kind) for f in findings]


def test_verify_finds_nothing_when_chain_files_and_history_agree():
    assert verify.verify(snapshot(blocks_for([A, B])), [A, B]) == []


def test_verify_reports_edited_file_with_both_hashes():
    (found,) = verify.verify(snapshot(blocks_for([A, B])), [A, EDITED_B])

    assert found.kind == FindingKind.CHANGED
    assert (found.expected, found.current) == (B.sha256, EDITED_B.sha256)


def test_verify_reports_deleted_file_unless_another_run_appended_it():
    ledger = snapshot(blocks_for([A, B]))

    assert kinds(verify.verify(ledger, [A])) == ["missing"]
    assert verify.verify(ledger, [A], newer=frozenset({B.path})) == []


def test_verify_reports_deleted_newest_block_through_the_history():
    ledger = snapshot(blocks_for([A]), history=2)

    (found,) = verify.verify(ledger, [A, B])

    assert found.kind == FindingKind.TAMPERED
    assert "history records 2 applied migrations" in found.message


@pytest.mark.parametrize("field", ["applied_by", "client_host", "mode", "path"])
def test_verify_reports_altered_block_when_any_hashed_field_changes(field):
    blocks = blocks_for([A, B])
    blocks[0] = replace(blocks[0], **{field: "x/001-a.sql" if field == "path" else "x"})

    assert "tampered" in kinds(verify.verify(snapshot(blocks), [A, B]))


def test_verify_reports_block_as_tampered_when_lock_vouches_for_the_file():
    rewritten = blocks_for([A, EDITED_B])  # a consistent rewrite to other content
    lock = lockfile.build([A, B])

    findings = verify.verify(snapshot(rewritten), [A, B], lock=lock)

    assert kinds(findings) == ["tampered"]
    assert "the ledger was rewritten" in findings[0].message


def test_verify_holds_files_to_the_lock_only_when_strict():
    lock = lockfile.build([A])

    assert verify.verify(snapshot(blocks_for([A])), [A, B], lock=lock) == []
    strict = verify.verify(snapshot(blocks_for([A])), [A, B], lock=lock, strict=True)
    assert kinds(strict) == ["unlocked"]


def test_verify_includes_schema_drift_findings():
    head = blocks_for([A])[0]
    drift = Drift(head, "a" * 64, "b" * 64, ("column x added", "index y dropped"))

    found = verify.verify(snapshot([head]), [A], drift=drift)

    assert kinds(found) == ["schema", "schema"]


def test_raise_findings_names_the_first_problem_and_counts_the_rest():
    findings = verify.verify(snapshot(blocks_for([A, B]), history=3), [A, EDITED_B])

    with pytest.raises(AppliedFileChanged) as caught:
        verify.raise_findings(findings)

    assert "(and 1 more problem)" in str(caught.value)
    assert str(caught.value).endswith("; nothing was applied")
    assert caught.value.findings == tuple(findings)


def test_raise_findings_reports_ledger_problem_as_tampering():
    with pytest.raises(LedgerTampered):
        verify.raise_findings(verify.verify(snapshot(blocks_for([A]), history=2), [A]))
