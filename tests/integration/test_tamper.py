"""The attacks an adversarial review reproduced (B1-B9 of issue 14), replayed on a
fresh database: each is detected or refused, and nothing is applied after it."""

from __future__ import annotations

import pytest
from psycopg import sql

from chainops import api, chain
from chainops.errors import LedgerTampered, MigrationFailed
from chainops.model import Mode
from chainops.source.files import HASH_ALGORITHM

EXAMPLES = ("001-schema/001", "001-schema/002", "001-schema/003")


def tampered(report) -> list[str]:
    return [f.message for f in report.findings if f.kind == "tampered"]


def blocks(project) -> int:
    return int(str(project.query("SELECT count(*) FROM blockchain_migrations")[0][0]))


def load_with_psql_style(project, prefixes: tuple[str, ...]) -> None:
    """Run the first example files straight on the database, as psql -f would."""
    for file in api.load_files(project.settings):
        if file.path.startswith(prefixes):
            project.query(file.text)


def test_b1_newest_block_deleted_after_baseline_is_caught(project):
    project.copy_examples()
    load_with_psql_style(project, EXAMPLES)
    api.baseline(project.target, 1003)
    api.apply(project.target)
    height = blocks(project)
    project.query("DELETE FROM blockchain_migrations WHERE height = %s", (height,))

    assert tampered(api.verify(project.target))
    with pytest.raises(LedgerTampered, match="no block holds it"):
        api.apply(project.target)
    assert blocks(project) == height - 1  # nothing re-applied


def test_b2_forged_head_block_for_a_pending_file_is_caught(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int);\n"})
    api.apply(project.target)
    project.write({"001-schema/002-b.sql": "CREATE TABLE b (id int);\n"})
    pending = api.load_files(project.settings)[1]
    head = api.status(project.target).entries[0].block
    forged = chain.build_block(
        [head],
        number=pending.number,
        path=pending.path,
        content_hash=pending.sha256,
        hash_algorithm=HASH_ALGORITHM,
        applied_at=head.applied_at,
        applied_by=head.applied_by,
        client_host=head.client_host,
        mode=Mode.TRANSACTION,
    )
    project.query(
        "INSERT INTO blockchain_migrations (migration_number, filename, path, hash,"
        " hash_algorithm, executed_at, status, height, previous_hash, block_hash,"
        " mode, applied_by, client_host, chainops_version) VALUES"
        " (%s, %s, %s, %s, %s, %s, 'completed', %s, %s, %s, %s, %s, %s, 'x')",
        (forged.number, forged.filename, forged.path, forged.content_hash,
         forged.hash_algorithm, forged.applied_at, forged.height,
         forged.previous_hash, forged.block_hash, forged.mode, forged.applied_by,
         forged.client_host),
    )  # fmt: skip

    assert any("has no history row" in m for m in tampered(api.verify(project.target)))
    with pytest.raises(LedgerTampered):
        api.apply(project.target)
    assert project.query("SELECT to_regclass('b')") == [(None,)]


def test_b3_deleted_format_version_row_is_tampering_not_an_empty_ledger(project):
    project.copy_examples()
    api.apply(project.target)
    project.query("DELETE FROM blockchain_migrations_meta WHERE key = 'format_version'")

    report = api.verify(project.target)

    assert report.height == 5
    assert any("format_version row is missing" in m for m in tampered(report))
    with pytest.raises(LedgerTampered):
        api.apply(project.target)


@pytest.mark.parametrize(
    "attack",
    [
        "DROP TABLE blockchain_migrations",
        "ALTER TABLE blockchain_migrations RENAME TO moved",
        "DROP TABLE blockchain_migrations_history",
    ],
)
def test_b4_missing_ledger_table_beside_the_others_is_tampering(project, attack):
    project.copy_examples()
    api.apply(project.target)
    project.query(attack)

    assert any("is missing while" in m for m in tampered(api.verify(project.target)))
    with pytest.raises(LedgerTampered):
        api.apply(project.target)


def test_b4_file_that_commits_and_drops_the_ledger_is_reported_as_tampering(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int);\n"})
    api.apply(project.target)
    project.write(
        {
            "001-schema/002-drop.sql": (
                "CREATE TABLE b (id int);\n"
                "COMMIT;\nDROP TABLE blockchain_migrations;\nBEGIN;\n"
            )
        }
    )

    with pytest.raises(LedgerTampered, match="disappeared while 001-schema/002"):
        api.apply(project.target)
    assert tampered(api.verify(project.target))


def test_b6_rewritten_drift_details_are_caught(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int);\n"})
    api.apply(project.target)
    project.query("ALTER TABLE a ADD COLUMN note text")
    api.apply(project.target, accept_drift=True)
    assert api.verify(project.target).ok
    project.query(
        "UPDATE blockchain_migrations SET details = 'nothing to see here'"
        " WHERE mode = 'drift'"
    )

    assert any("do not hash" in m for m in tampered(api.verify(project.target)))


@pytest.mark.parametrize(
    ("first", "second", "check"),
    [
        (
            "CREATE SCHEMA other;\nSET search_path = other, public;\n",
            "CREATE TABLE t (id int);\n",
            "SELECT to_regclass('public.t') IS NOT NULL",
        ),
        (
            "SET client_encoding = 'LATIN1';\n",
            "CREATE TABLE t (v text);\nINSERT INTO t VALUES ('é✓');\n",
            "SELECT v = 'é✓' FROM t",
        ),
        (
            "CREATE TEMP TABLE t (id int);\n",
            "CREATE TABLE t (id int);\n",
            "SELECT to_regclass('public.t') IS NOT NULL",
        ),
    ],
)
def test_b7_each_file_starts_from_a_clean_session(project, first, second, check):
    project.write(
        {"001-schema/001-first.sql": first, "001-schema/002-second.sql": second}
    )

    api.apply(project.target)

    assert project.query(check) == [(True,)]
    assert api.verify(project.target).ok


def test_b7_session_replication_role_does_not_leak_into_the_next_file(project):
    project.write(
        {
            "001-schema/001-a.sql": (
                "CREATE TABLE users (id int PRIMARY KEY);\n"
                "CREATE TABLE orders (user_id int REFERENCES users);\n"
                "SET session_replication_role = replica;\n"
            ),
            "001-schema/002-b.sql": "INSERT INTO orders VALUES (42);\n",
        }
    )

    with pytest.raises(MigrationFailed, match="foreign key"):
        api.apply(project.target)
    assert project.query("SELECT count(*) FROM orders") == [(0,)]


def test_b8_a_rule_that_swallows_the_block_is_refused_and_rolled_back(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int);\n"})
    api.apply(project.target)
    project.write(
        {
            "001-schema/002-swallow.sql": (
                "CREATE TABLE b (id int);\n"
                "CREATE RULE swallow AS ON INSERT TO blockchain_migrations"
                " DO INSTEAD NOTHING;\n"
            )
        }
    )

    with pytest.raises(LedgerTampered, match="was not stored as written"):
        api.apply(project.target)
    assert blocks(project) == 1
    assert project.query("SELECT to_regclass('b')") == [(None,)]


def test_b8_a_rule_added_out_of_band_is_reported_by_verify(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int);\n"})
    api.apply(project.target)
    project.query(
        "CREATE RULE hide AS ON INSERT TO blockchain_migrations DO INSTEAD NOTHING"
    )

    assert any("rule hide on" in m for m in tampered(api.verify(project.target)))


def test_b9_a_dmy_datestyle_database_migrates_and_verifies(project):
    project.copy_examples()
    api.apply(project.target)
    dbname = str(project.query("SELECT current_database()")[0][0])
    project.query(
        sql.SQL("ALTER DATABASE {} SET datestyle = 'SQL, DMY'")
        .format(sql.Identifier(dbname))
        .as_string()
    )
    project.write({"003-seed-data/002-more.sql": "SELECT 1;\n"})

    assert len(api.apply(project.target).applied) == 1
    assert api.verify(project.target).ok
    assert api.status(project.target).height == 6
