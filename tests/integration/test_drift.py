"""Drift detection wired into migrate and verify, on a real server."""

from __future__ import annotations

import pytest

from chainops import api
from chainops.errors import ConfigError, MigrationFileError, SchemaDrift
from chainops.events import DriftFound

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"


def test_verify_names_the_change_when_table_altered_by_hand(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    assert api.verify(project.target).ok
    project.query("ALTER TABLE a ADD COLUMN note text")
    report = api.verify(project.target)
    assert not report.ok
    assert [f.message for f in report.findings] == [
        "table public.a: column note text added"
    ]


def test_fingerprint_recorded_on_newest_block_of_each_run(project):
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)
    rows = project.query(
        "SELECT height, schema_hash IS NOT NULL, schema_snapshot IS NOT NULL"
        " FROM blockchain_migrations ORDER BY height"
    )
    assert rows == [(1, False, False), (2, True, True)]


def test_migrate_records_drift_as_a_block_in_development_then_applies(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.query("CREATE INDEX a_by_hand ON a (id)")
    project.write({"001-schema/002-b.sql": TABLE_B})
    events = []
    result = api.apply(
        project.target_with(environment="development"), on_event=events.append
    )
    assert [a.file.number for a in result.applied] == [1002]
    found = [e for e in events if isinstance(e, DriftFound)]
    assert len(found) == 1
    assert found[0].drift.changes == (
        "index public.a_by_hand added: "
        "CREATE INDEX a_by_hand ON public.a USING btree (id)",
    )
    # Never adopted silently: the change is a block of its own, before the file.
    assert found[0].block.height == 2
    assert project.query(
        "SELECT height, mode FROM blockchain_migrations ORDER BY height"
    ) == [(1, "transaction"), (2, "drift"), (3, "transaction")]
    assert api.verify(project.target).ok


def test_migrate_refuses_drift_in_production_with_nothing_applied(project):
    settings = project.with_settings(environment="production")
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(api.target(settings), backup=False)
    project.query("ALTER TABLE a ADD COLUMN note text")
    project.write({"001-schema/002-b.sql": TABLE_B})
    with pytest.raises(SchemaDrift) as caught:
        api.apply(api.target(settings), backup=False)
    assert "table public.a: column note text added" in str(caught.value)
    assert "--accept-drift" in str(caught.value)
    assert project.query("SELECT to_regclass('b')") == [(None,)]


def test_accepting_drift_records_a_block_and_verify_passes(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.query("ALTER TABLE a ADD COLUMN note text")
    result = api.apply(project.target, accept_drift=True)
    assert result.applied == ()
    assert result.height == 2
    rows = project.query(
        "SELECT mode, migration_number, details, applied_by FROM blockchain_migrations"
        " WHERE height = 2"
    )
    assert rows == [("drift", -2, "table public.a: column note text added", "postgres")]
    history = project.query(
        "SELECT outcome FROM blockchain_migrations_history ORDER BY id"
    )
    assert history[-1] == ("drift-accepted",)
    report = api.verify(project.target)
    assert report.ok, report.findings
    project.write({"001-schema/002-b.sql": TABLE_B})
    assert [a.file.number for a in api.apply(project.target).applied] == [1002]
    assert api.verify(project.target).ok


def test_no_false_drift_when_data_changes(project):
    project.copy_examples()
    api.apply(project.target)
    project.query(
        "INSERT INTO users (email, display_name) VALUES ('a@example.com', 'A'); ANALYZE"
    )
    assert api.verify(project.target).ok


def test_schema_file_refreshed_after_applying_in_development(project):
    settings = project.with_settings(environment="development")
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(api.target(settings))
    assert not (project.migrations / "schema.sql").exists()  # opt in with db.schema
    assert api.db_schema(api.target(settings))
    assert "CREATE TABLE public.a" in (project.migrations / "schema.sql").read_text()
    project.write({"001-schema/002-b.sql": TABLE_B})
    events = []
    api.apply(api.target(settings), on_event=events.append)
    assert any(isinstance(e, api.SchemaFileWritten) and not e.error for e in events)
    text = (project.migrations / "schema.sql").read_text()
    assert "CREATE TABLE public.b" in text
    assert "blockchain_migrations" not in text


OLDER_SHAPES = {
    1: "DROP COLUMN schema_hash, DROP COLUMN schema_snapshot, DROP COLUMN details,",
    2: "",
}


@pytest.mark.parametrize("version", sorted(OLDER_SHAPES))
def test_migrate_upgrades_an_older_ledger_and_status_asks_for_it(project, version):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.as_written_before_sealing()
    project.query(
        f"ALTER TABLE blockchain_migrations {OLDER_SHAPES[version]}"
        " DROP COLUMN block_format, DROP COLUMN sealed_schema;"
        f" UPDATE blockchain_migrations_meta SET value = '{version}'"
        " WHERE key = 'format_version'"
    )
    with pytest.raises(ConfigError) as caught:
        api.status(project.target)
    assert "run inv migrate once to upgrade it" in str(caught.value)
    project.write({"001-schema/002-b.sql": TABLE_B})
    result = api.apply(project.target)
    assert [a.file.number for a in result.applied] == [1002]
    version = project.query(
        "SELECT value FROM blockchain_migrations_meta WHERE key = 'format_version'"
    )
    assert version == [("4",)]
    assert api.verify(project.target).ok
    formats = project.query(
        "SELECT block_format, sealed_schema IS NOT NULL FROM blockchain_migrations"
        " ORDER BY height"
    )
    assert formats == [(1, False), (2, True)]  # old blocks kept, the new one sealed
    project.query("ALTER TABLE b ADD COLUMN note text")
    assert not api.verify(project.target).ok  # drift, from the sealed fingerprint


def test_migrate_upgrades_a_format_3_ledger_to_repeat_a_number(project):
    """Format 4 drops the unique migration_number: a reverted file applied again
    has a second block of its number; attempts stay unique per number."""
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.query(
        "DROP INDEX blockchain_migrations_attempt_number;"
        " ALTER TABLE blockchain_migrations ADD CONSTRAINT"
        " blockchain_migrations_migration_number_key UNIQUE (migration_number);"
        " UPDATE blockchain_migrations_meta SET value = '3'"
        " WHERE key = 'format_version'"
    )
    with pytest.raises(ConfigError, match="run inv migrate once to upgrade it"):
        api.status(project.target)
    project.write({"001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)
    constraints = project.query(
        "SELECT conname FROM pg_constraint WHERE conrelid ="
        " 'blockchain_migrations'::regclass AND contype = 'u'"
    )
    assert sorted(str(c[0]) for c in constraints) == [
        "blockchain_migrations_block_hash_key",
        "blockchain_migrations_height_key",
    ]
    assert project.query(
        "SELECT indexdef LIKE '%WHERE%' FROM pg_indexes"
        " WHERE indexname = 'blockchain_migrations_attempt_number'"
    ) == [(True,)]
    assert api.verify(project.target).ok


def test_a_file_refused_by_the_parser_stops_the_run_before_drift_is_recorded(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.query("CREATE TABLE by_hand (id int)")
    project.write({"001-schema/002-b.sql": TABLE_B,
                   "001-schema/003-meta.sql": "SELECT 1 \\gset\n"})  # fmt: skip

    with pytest.raises(MigrationFileError):
        api.apply(project.target)

    modes = project.query("SELECT mode FROM blockchain_migrations ORDER BY height")
    assert modes == [("transaction",)]  # no drift block, and 002 not applied
