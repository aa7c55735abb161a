"""The chain lock against a real ledger: rewritten ledgers, production refusals."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import psycopg
import pytest

from chainops import api, chain, model, verify
from chainops.errors import AppliedFileChanged, MigrationFileError
from chainops.source import lockfile
from chainops.store import ledger

FILES = {
    "001-schema/001-a.sql": "CREATE TABLE a (id int PRIMARY KEY);\n",
    "001-schema/002-b.sql": "CREATE TABLE b (id int PRIMARY KEY);\n",
    "002-functions/001-f.sql": "CREATE FUNCTION f() RETURNS int AS 'SELECT 1' "
    "LANGUAGE sql;\n",
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_blocks(project) -> tuple[model.Block, ...]:
    with psycopg.connect(project.db_url, autocommit=True) as conn:
        return ledger.read_snapshot(conn, "public").blocks


def rewrite_ledger(project, content: dict[str, str]) -> None:
    """What someone with write access does: new content hashes, every hash redone,
    the history rewritten to match."""
    rewritten: list[model.Block] = []
    for block in read_blocks(project):
        new = replace(
            block,
            content_hash=sha256(content.get(block.path, f"-- forged {block.path}\n")),
            previous_hash=chain.head_hash(rewritten),
            block_hash="",
        )
        rewritten.append(replace(new, block_hash=chain.recompute(new)))
    for b in rewritten:
        project.query(
            "UPDATE blockchain_migrations SET hash = %s, previous_hash = %s,"
            " block_hash = %s WHERE height = %s",
            (b.content_hash, b.previous_hash, b.block_hash, b.height),
        )
        project.query(
            "UPDATE blockchain_migrations_history SET hash = %s"
            " WHERE migration_number = %s AND outcome <> 'failed'",
            (b.content_hash, b.number),
        )
    assert verify.verify_links(read_blocks(project)) == []  # consistent: links hold


def applied_count(project) -> int:
    rows = project.query(
        "SELECT count(*) FROM pg_tables WHERE tablename = 'blockchain_migrations'"
    )
    if rows[0][0] == 0:
        return 0
    return int(str(project.query("SELECT count(*) FROM blockchain_migrations")[0][0]))


@pytest.fixture
def locked(project):
    """The three files applied and locked."""
    project.write(FILES)
    api.apply(project.target)
    api.lock(project.settings)
    return project


def test_verify_checks_ledger_against_lock_when_all_is_in_order(locked):
    report = api.verify(locked.target)
    assert report.ok
    assert report.lock_head == lockfile.build(api.load_files(locked.settings)).head


def test_verify_reports_ledger_rewritten_consistently_as_tampered(locked):
    rewrite_ledger(locked, {})
    report = api.verify(locked.target)
    assert [(f.kind, f.path) for f in report.findings] == [
        ("tampered", path) for path in FILES
    ]
    assert report.findings[0].message.startswith(
        "the ledger: block 1 (001-schema/001-a.sql) records content "
    )
    assert "the ledger was rewritten" in report.findings[0].message
    # Without the lock the same ledger reads as three edited files.
    (locked.migrations / "chain.lock").unlink()
    assert {f.kind for f in api.verify(locked.target).findings} == {"changed"}


def test_verify_in_production_catches_ledger_rewritten_to_match_edited_files(locked):
    edited = {"001-schema/002-b.sql": "CREATE TABLE b (id bigint PRIMARY KEY);\n"}
    locked.write(edited)
    rewrite_ledger(locked, {**FILES, **edited})
    production = locked.with_settings(environment="production")
    report = api.verify(api.target(production))
    assert [(f.kind, f.path) for f in report.findings] == [
        ("lock", "001-schema/002-b.sql"),  # the file differs from the lock
        ("lock", "001-schema/002-b.sql"),  # and so does its block
    ]
    assert "never locked was applied" in report.findings[1].message
    # The chain and the files agree with each other: only the lock sees it.
    (locked.migrations / "chain.lock").unlink()
    assert api.verify(api.target(production)).ok


def test_verify_works_as_before_when_there_is_no_lock(project):
    project.write(FILES)
    api.apply(project.target)
    report = api.verify(project.target)
    assert report.ok
    assert report.lock_head is None


def test_verify_in_production_reports_block_not_in_lock(locked):
    locked.write({"001-schema/003-c.sql": "CREATE TABLE c ();\n"})
    api.apply(locked.target)
    assert api.verify(locked.target).ok  # development accepts it
    report = api.verify(locked.target_with(environment="production"))
    assert [(f.kind, f.path) for f in report.findings] == [
        ("unlocked", "001-schema/003-c.sql"),  # the file
        ("unlocked", "001-schema/003-c.sql"),  # its block
    ]
    assert report.findings[1].message.startswith(
        "the ledger: block 4 (001-schema/003-c.sql) is not in chain.lock"
    )


def test_verify_in_development_accepts_created_file_applied_before_locking(project):
    created = api.create(project.settings, "add c", "schema")
    created.path.write_text(created.path.read_text() + "CREATE TABLE c ();\n")
    api.apply(project.target)
    assert api.verify(project.target).ok
    assert not api.verify_files(project.settings).ok
    report = api.verify(project.target_with(environment="production"))
    assert {f.kind for f in report.findings} == {"lock"}
    api.lock(project.settings)
    assert api.verify(project.target_with(environment="production")).ok


def test_apply_refuses_file_missing_from_lock_in_production_before_connecting(
    locked,
):
    locked.write({"001-schema/003-c.sql": "CREATE TABLE c ();\n"})
    production = locked.with_settings(environment="production")
    with pytest.raises(lockfile.LockMismatch) as caught:
        api.apply(api.target(production), backup=False)
    assert caught.value.exit_code == 4
    assert str(caught.value) == (
        "001-schema/003-c.sql is not in chain.lock; production applies only files "
        "that match the committed chain.lock (run inv migrate.lock and commit), so "
        "nothing was applied"
    )
    assert applied_count(locked) == 3
    api.lock(locked.settings)
    result = api.apply(api.target(production), backup=False)
    assert [a.file.path for a in result.applied] == ["001-schema/003-c.sql"]


def test_apply_refuses_unreadable_lock_in_production(locked):
    lock = locked.migrations / "chain.lock"
    lock.write_text(lock.read_text() + "=======\n")
    locked.write({"001-schema/003-c.sql": "CREATE TABLE c ();\n"})
    with pytest.raises(MigrationFileError, match="git merge conflict markers"):
        api.apply(locked.target_with(environment="production"), backup=False)
    assert applied_count(locked) == 3


def test_apply_warns_and_applies_in_development_when_file_not_in_lock(locked):
    locked.write({"001-schema/003-c.sql": "CREATE TABLE c ();\n"})
    events: list[api.Event] = []
    result = api.apply(locked.target, on_event=events.append)
    assert [a.file.path for a in result.applied] == ["001-schema/003-c.sql"]
    [warning] = [e for e in events if isinstance(e, api.LockStale)]
    assert [(f.kind, f.path) for f in warning.findings] == [
        ("unlocked", "001-schema/003-c.sql")
    ]


def test_apply_warns_in_development_when_lock_has_conflict_markers(locked):
    lock = locked.migrations / "chain.lock"
    lock.write_text(lock.read_text() + ">>>>>>> other\n")
    locked.write({"001-schema/003-c.sql": "CREATE TABLE c ();\n"})
    events: list[api.Event] = []
    api.apply(locked.target, on_event=events.append)
    [warning] = [e for e in events if isinstance(e, api.LockStale)]
    assert "git merge conflict markers" in warning.findings[0].message
    assert applied_count(locked) == 4


def test_apply_still_refuses_edited_applied_file_with_lock_in_development(locked):
    locked.write({"001-schema/001-a.sql": "CREATE TABLE a (id bigint);\n"})
    events: list[api.Event] = []
    with pytest.raises(AppliedFileChanged):
        api.apply(locked.target, on_event=events.append)
    # The refusal is the one message: no stale-lock warning about the same file.
    assert events == []
