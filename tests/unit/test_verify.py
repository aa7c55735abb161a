"""Every integrity invariant from plain objects: the verifier with no database."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from chainops import chain, verify
from chainops.errors import AppliedFileChanged, LedgerTampered
from chainops.model import Drift, FindingKind, Script
from chainops.source import lockfile
from tests.fixtures.ledger import (
    blocks_for,
    drift_block,
    history_of,
    migration,
    repeatable_block,
    snapshot,
)

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
    ledger = snapshot(blocks_for([A]), history=history_of(blocks_for([A, B])))

    (found,) = verify.verify(ledger, [A, B])

    assert found.kind == FindingKind.TAMPERED
    assert "history records 001-schema/002-b.sql (#1002, completed)" in found.message


def test_verify_reports_forged_block_that_has_no_history_row():
    ledger = snapshot(blocks_for([A, B]), history=history_of(blocks_for([A])))

    (found,) = verify.verify(ledger, [A, B])

    assert "block 001-schema/002-b.sql (#1002) has no history row" in found.message


def test_verify_reports_history_outcome_that_disagrees_with_the_block_mode():
    blocks = blocks_for([A], mode="baseline")

    found = verify.verify(snapshot(blocks, history=history_of(blocks_for([A]))), [A])

    assert len(found) == 2  # a baselined block, a history that says completed
    assert all(f.kind == FindingKind.TAMPERED for f in found)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"tables": frozenset({"blockchain_migrations_meta"})}, "is missing while"),
        ({"guards": ("rule r on blockchain_migrations",)}, "rule r on"),
        ({"meta": (("environment", "development"),)}, "format_version row"),
        ({"meta": (("format_version", "3"),)}, "environment marker"),
    ],
)
def test_verify_reports_ledger_tables_and_meta_rows_that_were_tampered(change, says):
    ledger = replace(snapshot(blocks_for([A])), **change)

    assert any(says in f.message for f in verify.verify(ledger, [A]))


def test_verify_reports_drift_block_whose_differences_were_rewritten():
    honest = drift_block(blocks_for([A]), "table public.x added")
    rewritten = replace(honest, details="nothing to see here")

    assert verify.verify(snapshot([*blocks_for([A]), honest]), [A]) == []
    found = verify.verify(snapshot([*blocks_for([A]), rewritten]), [A])
    assert [f.kind for f in found] == [FindingKind.TAMPERED]
    assert "do not hash to its content" in found[0].message


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
    extra = history_of(blocks_for([A, B, migration("001-schema/003-c.sql")]))
    findings = verify.verify(snapshot(blocks_for([A, B]), history=extra), [A, EDITED_B])

    with pytest.raises(AppliedFileChanged) as caught:
        verify.raise_findings(findings)

    assert "(and 1 more problem)" in str(caught.value)
    assert str(caught.value).endswith("; nothing was applied")
    assert caught.value.findings == tuple(findings)


def test_raise_findings_reports_ledger_problem_as_tampering():
    with pytest.raises(LedgerTampered):
        verify.raise_findings(verify.verify(snapshot(blocks_for([A]), history=()), [A]))


def _relinked(blocks):
    """Blocks with every link and hash recomputed: a consistent chain."""
    out = []
    for b in blocks:
        b = replace(b, previous_hash=chain.head_hash(out))
        out.append(replace(b, block_hash=chain.recompute(b)))
    return out


SEAL = "5" * 64


@pytest.mark.parametrize(
    ("first", "second", "says"),
    [
        ({"block_format": 2}, {"block_format": 1}, "claims block format 1"),
        ({}, {"block_format": 3}, "claims block format 3"),
        ({}, {"sealed_schema": SEAL, "schema_hash": "6" * 64}, "other than the one"),
        ({"block_format": 1}, {"block_format": 1, "sealed_schema": SEAL}, "other"),
    ],
)
def test_verify_reports_block_formats_and_sealed_fingerprints_that_were_rewritten(
    first, second, says
):
    a, b = blocks_for([A, B])
    ledger = snapshot(_relinked([replace(a, **first), replace(b, **second)]))

    found = verify.verify(ledger, [A, B])

    assert [f.kind for f in found] == [FindingKind.TAMPERED]
    assert says in found[0].message


def test_verify_accepts_format_1_blocks_then_sealed_format_2_blocks():
    a, b = blocks_for([A, B])
    sealed = {"sealed_schema": SEAL, "schema_hash": SEAL}
    blocks = _relinked([replace(a, block_format=1, schema_hash="6" * 64),
                        replace(b, **sealed)])  # fmt: skip

    assert verify.verify(snapshot(blocks), [A, B]) == []


def with_verify_script(file, text: str):
    data = text.encode()
    path = file.path.removesuffix(".sql") + ".verify.sql"
    return replace(
        file, verify_script=Script(path, data, hashlib.sha256(data).hexdigest())
    )


def test_verify_holds_verify_script_to_the_lock_but_not_to_the_block():
    checked = with_verify_script(A, "SELECT true;\n")
    edited = with_verify_script(A, "SELECT false;\n")
    lock = lockfile.build([checked])
    ledger = snapshot(blocks_for([A]))

    assert [e.path for e in lock.entries] == [A.path, "001-schema/001-a.verify.sql"]
    assert verify.verify(ledger, [checked], lock=lock, strict=True) == []
    # Editing or adding a verify script is no change to the applied migration...
    assert verify.verify(ledger, [edited]) == []
    # ...but chain.lock holds it like any file, and lists it missing when deleted.
    found = verify.verify(ledger, [edited], lock=lock, strict=True)
    assert kinds(found) == ["lock"]
    assert found[0].path == "001-schema/001-a.verify.sql"
    assert kinds(verify.verify(ledger, [A], lock=lock, strict=True)) == ["lock"]


R1 = migration("002-functions/R-total.sql", "CREATE VIEW total AS SELECT 1;\n")
R2 = migration("002-functions/R-total.sql", "CREATE VIEW total AS SELECT 2;\n")


def repeatable_chain() -> list:
    blocks = blocks_for([A])
    blocks.append(repeatable_block(blocks, R1))
    blocks.append(repeatable_block(blocks, R2))
    return blocks


def test_verify_accepts_every_version_of_a_repeatable_file_and_its_edit():
    ledger = snapshot(repeatable_chain())

    assert verify.verify(ledger, [A, R2]) == []
    assert verify.verify(ledger, [A, R1]) == []  # edited again: pending, not drift
    assert verify.verify(ledger, [A]) == []  # deleted: status reports it, objects stay
    lock = lockfile.build([A, R2])
    assert verify.verify(ledger, [A, R2], lock=lock, strict=True) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"number": 2000}, "has number #2000, which does not match"),
        ({"path": "002-functions/003-total.sql"}, "which does not match"),
        ({"mode": "transaction"}, "which does not match its file name"),
    ],
)
def test_verify_reports_repeatable_block_whose_number_or_name_was_forged(change, words):
    blocks = repeatable_chain()
    forged = replace(blocks[1], **change)
    blocks[1] = replace(forged, block_hash=chain.recompute(forged))
    for i in range(2, len(blocks)):  # relink the rest, as a careful forger would
        moved = replace(blocks[i], previous_hash=blocks[i - 1].block_hash)
        blocks[i] = replace(moved, block_hash=chain.recompute(moved))

    found = verify.verify(snapshot(blocks), [A, R2])

    assert any(words in f.message for f in found), found


def test_verify_advises_relocking_when_repeatable_or_verify_script_changed():
    checked = with_verify_script(A, "SELECT true;\n")
    lock = lockfile.build([checked, R1])

    found = verify.verify_lock(lock, [with_verify_script(A, "SELECT 1;\n"), R2])

    assert [f.path for f in found] == ["001-schema/001-a.verify.sql", R2.path]
    assert all(f.message.endswith("and commit it with the change") for f in found)
