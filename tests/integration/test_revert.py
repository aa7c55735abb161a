"""Reverts (issue 17): `NNN-x.down.sql` beside `NNN-x.sql`, applied newest first by
`revert`, each in its own transaction as a new block (mode `revert`, number
-height, the down script's path and hash). The reverted file is pending again;
applying it again is a new block. History is never deleted."""

from __future__ import annotations

import json

import pytest

from chainops import api, report, revert_verb
from chainops.cli import main
from chainops.errors import ConfigError, MigrationFailed, MigrationFileError, Refused
from chainops.model import State
from chainops.source import lockfile

A = "001-schema/001-accounts.sql"
B = "001-schema/002-prices.sql"
FN = "002-functions/001-value.sql"
FILES = {
    A: "CREATE TABLE accounts (id int);\n",
    f"{A[:-4]}.down.sql": "DROP TABLE accounts;\n",
    B: "CREATE TABLE prices (p numeric);\n",
    f"{B[:-4]}.down.sql": "DROP TABLE prices;\n",
    FN: "CREATE FUNCTION value() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;\n",
    f"{FN[:-4]}.down.sql": "DROP FUNCTION value();\n",
}


def chain(project) -> list[tuple[object, ...]]:
    return project.query(
        "SELECT height, migration_number, path, mode FROM blockchain_migrations"
        " WHERE status = 'completed' ORDER BY height"
    )


def tables(project) -> set[str]:
    rows = project.query("SELECT tablename FROM pg_tables WHERE schemaname='public'")
    return {str(r[0]) for r in rows} - {
        "blockchain_migrations",
        "blockchain_migrations_history",
        "blockchain_migrations_meta",
    }


def has_function(project) -> bool:
    return bool(project.query("SELECT 1 FROM pg_proc WHERE proname = 'value'"))


@pytest.fixture
def applied(project):
    project.write(FILES)
    api.apply(project.target)
    return project


def test_revert_last_applies_the_newest_down_script_as_a_new_block(applied):
    result = revert_verb.revert(applied.target)

    assert [a.file.path for a in result.reverted] == [f"{FN[:-4]}.down.sql"]
    assert not has_function(applied)
    assert chain(applied)[-1] == (4, -4, "002-functions/001-value.down.sql", "revert")
    assert result.height == 4
    pending = api.status(applied.target)
    states = [(e.path, e.state) for e in pending.entries]
    assert (FN, State.REVERTED) in states
    assert ("002-functions/001-value.down.sql", State.REVERTED) in states
    assert states[-1] == (FN, State.PENDING)
    assert api.verify(applied.target).findings == ()
    # History is never deleted: the reverted block is still in the ledger.
    assert len(applied.query("SELECT 1 FROM blockchain_migrations_history")) == 4


def test_revert_to_reverts_everything_above_it_newest_first(applied):
    result = revert_verb.revert(applied.target, to=1001)

    assert [a.file.path for a in result.reverted] == [
        "002-functions/001-value.down.sql",
        "001-schema/002-prices.down.sql",
    ]
    assert tables(applied) == {"accounts"}
    assert [row[1:] for row in chain(applied)[3:]] == [
        (-4, "002-functions/001-value.down.sql", "revert"),
        (-5, "001-schema/002-prices.down.sql", "revert"),
    ]
    # Both files are pending again; a migrate applies them in order as new blocks.
    again = api.apply(applied.target)
    assert [a.file.path for a in again.applied] == [B, FN]
    assert [row[1:] for row in chain(applied)[5:]] == [
        (1002, B, "transaction"),
        (2001, FN, "transaction"),
    ]
    assert api.verify(applied.target).ok


def test_revert_last_two_and_nothing_more_to_revert(applied):
    revert_verb.revert(applied.target, last=3)
    assert tables(applied) == set()
    assert not has_function(applied)
    with pytest.raises(Refused, match="no applied migration to revert"):
        revert_verb.revert(applied.target)
    with pytest.raises(ConfigError, match="not both"):
        revert_verb.revert(applied.target, last=1, to=1001)


def test_dry_run_lists_and_changes_nothing(applied, capsys):
    before = chain(applied)
    result = revert_verb.revert(applied.target, last=2, dry_run=True)

    assert [(b.height, down) for b, down in result.planned] == [
        (3, "002-functions/001-value.down.sql"),
        (2, "001-schema/002-prices.down.sql"),
    ]
    assert chain(applied) == before
    assert has_function(applied)
    where = [
        "--database-url",
        applied.db_url,
        "--migrations-dir",
        str(applied.migrations),
    ]
    code = main(["revert", "--last", "2", "--dry-run", *where])
    out = capsys.readouterr().out
    assert code == 0
    assert "would revert block 3 (#2001 002-functions/001-value.sql)" in out
    assert "nothing was changed (dry run)" in out
    assert chain(applied) == before


def test_refused_without_a_down_script_naming_the_file(project):
    project.write({A: FILES[A], B: FILES[B]})
    api.apply(project.target)
    before = chain(project)

    with pytest.raises(Refused) as refused:
        revert_verb.revert(project.target)

    assert "001-schema/002-prices.sql (block 2) has no down script" in str(
        refused.value
    )
    assert "001-schema/002-prices.down.sql" in str(refused.value)
    assert chain(project) == before
    assert tables(project) == {"accounts", "prices"}


def test_refused_in_production_unless_confirmed(applied):
    production = applied.target_with(environment="production")
    lockfile.write_lock(applied.migrations, lockfile.build(api.load_files(
        applied.settings)))  # fmt: skip
    before = chain(applied)

    with pytest.raises(Refused, match=r"production database.*pass --yes"):
        revert_verb.revert(production)
    assert chain(applied) == before
    assert has_function(applied)

    # Production runs only locked down scripts.
    applied.write({f"{FN[:-4]}.down.sql": "DROP FUNCTION value() CASCADE;\n"})
    with pytest.raises(lockfile.LockMismatch, match=r"001-value\.down\.sql differs"):
        revert_verb.revert(production, confirmed=True)
    applied.write({f"{FN[:-4]}.down.sql": FILES[f"{FN[:-4]}.down.sql"]})
    result = revert_verb.revert(production, confirmed=True)
    assert len(result.reverted) == 1
    assert not has_function(applied)


def test_refused_for_a_block_a_kept_later_block_comes_after(project):
    # #1002 applied out of order after #1003: --to 1002 keeps #1002 (block 3) but
    # would revert #1003 (block 2) beneath it.
    c = "001-schema/003-c.sql"
    project.write({A: FILES[A], c: "CREATE TABLE c ();\n",
                   f"{c[:-4]}.down.sql": "DROP TABLE c;\n"})  # fmt: skip
    api.apply(project.target)
    project.write({B: FILES[B]})
    api.apply(project.target, allow_out_of_order=True)
    before = chain(project)

    with pytest.raises(Refused, match=r"003-c.sql .* comes before .*002-prices.sql"):
        revert_verb.revert(project.target, to=1002)
    assert chain(project) == before


def test_failing_down_script_rolls_back_and_records_a_failed_attempt(applied):
    applied.write({f"{FN[:-4]}.down.sql": "DROP FUNCTION value();\nSELECT 1/0;\n"})
    before = chain(applied)

    with pytest.raises(MigrationFailed, match="rolled back"):
        revert_verb.revert(applied.target)

    assert chain(applied) == before
    assert has_function(applied)
    rows = applied.query(
        "SELECT migration_number, path, status FROM blockchain_migrations"
        " WHERE status <> 'completed'"
    )
    assert rows == [(-4, "002-functions/001-value.down.sql", "failed")]
    # Fixed, the revert lands and clears the failed attempt.
    applied.write({f"{FN[:-4]}.down.sql": "DROP FUNCTION value();\n"})
    revert_verb.revert(applied.target)
    assert not has_function(applied)
    assert (
        applied.query("SELECT 1 FROM blockchain_migrations WHERE status <> 'completed'")
        == []
    )


def test_revert_fix_and_apply_again_is_a_new_block_and_verifies(applied):
    revert_verb.revert(applied.target)
    fixed = "CREATE FUNCTION value() RETURNS int LANGUAGE sql AS $$ SELECT 2 $$;\n"
    applied.write({FN: fixed})
    # Editing a reverted file is no drift: it is pending again.
    assert api.verify(applied.target).ok

    result = api.apply(applied.target)

    assert [a.file.path for a in result.applied] == [FN]
    assert applied.query("SELECT value()") == [(2,)]
    assert [row[1:] for row in chain(applied)[2:]] == [
        (2001, FN, "transaction"),
        (-4, "002-functions/001-value.down.sql", "revert"),
        (2001, FN, "transaction"),
    ]
    assert api.verify(applied.target).ok
    status = api.status(applied.target)
    assert [(e.number, e.state) for e in status.entries][-3:] == [
        (2001, State.REVERTED),
        (2001, State.REVERTED),
        (2001, State.APPLIED),
    ]
    # Editing it now is drift again: the newest standing block holds the file.
    applied.write({FN: FILES[FN]})
    assert not api.verify(applied.target).ok


def test_status_text_and_json_show_the_reverted_state(applied):
    revert_verb.revert(applied.target)
    status = api.status(applied.target)

    lines = report.status_lines(status)
    assert any(
        "001-value.sql" in line and "reverted (block 3)" in line for line in lines
    )
    assert any(
        "001-value.down.sql" in line and "revert, block 4" in line for line in lines
    )
    document = json.loads(report.status_json(status))
    found = [(m["path"], m["state"], m["mode"]) for m in document["migrations"]]
    assert (FN, "reverted", "transaction") in found
    assert ("002-functions/001-value.down.sql", "reverted", "revert") in found
    assert (FN, "pending", None) in found
    assert document["summary"]["pending"] == 1


def test_chain_lock_includes_down_scripts(project):
    project.write(FILES)
    lock = lockfile.build(api.load_files(project.settings))
    paths = [e.path for e in lock.entries]
    assert "001-schema/001-accounts.down.sql" in paths
    lockfile.write_lock(project.migrations, lock)
    # An edited down script differs from the lock, like any locked file.
    project.write({f"{A[:-4]}.down.sql": "DROP TABLE accounts CASCADE;\n"})
    report_ = api.verify_files(project.settings)
    assert not report_.ok
    assert any("001-accounts.down.sql" in f.message for f in report_.findings)


def test_a_down_script_without_its_migration_is_refused(project):
    project.write({"001-schema/004-x.down.sql": "SELECT 1;\n"})
    with pytest.raises(
        MigrationFileError, match=r"has no migration 001-schema/004-x\.sql"
    ):
        api.load_files(project.settings)


def test_explorer_shows_reverted_blocks_and_the_file_ready_again(applied):
    from chainops.web.chain import read_chain

    revert_verb.revert(applied.target, to=1001)
    doc = read_chain(applied.settings)

    assert [(b["height"], b["state"], b["mode"]) for b in doc["blocks"]][1:] == [
        (2, "reverted", "transaction"),
        (3, "reverted", "transaction"),
        (4, "reverted", "revert"),
        (5, "reverted", "revert"),
    ]
    assert [(p["path"], p["reason"]) for p in doc["pending"]] == [
        (B, "ready: the next inv migrate applies it"),
        (FN, "ready: the next inv migrate applies it"),
    ]
    assert doc["ok"]


def test_a_down_script_that_cannot_run_in_a_transaction_is_refused_before_any(
    applied,
):
    applied.write({f"{B[:-4]}.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS x;\n"})
    before = chain(applied)

    with pytest.raises(MigrationFileError, match="a down script is applied in one"):
        revert_verb.revert(applied.target, last=2)

    assert chain(applied) == before
    assert has_function(applied)
