"""reset-dev refusals, backups, dry runs, timeouts and baseline, on a real server."""

from __future__ import annotations

import shutil
import subprocess

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from chainops import api, db_verbs
from chainops.errors import MigrationFailed, Refused
from chainops.store import connection as db
from chainops.store import dump as backup

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"
NO_DROPS = """
CREATE FUNCTION refuse_drop() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'a DROP reached the server: %', tg_tag; END $$;
CREATE EVENT TRIGGER no_drops ON ddl_command_start
    WHEN TAG IN ('DROP SCHEMA', 'DROP TABLE', 'DROP OWNED')
    EXECUTE FUNCTION refuse_drop();
"""


def tables(project) -> set[str]:
    rows = project.query(
        "SELECT schemaname || '.' || tablename FROM pg_tables"
        " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    )
    return {str(r[0]) for r in rows}


def server_major(project) -> int:
    with psycopg.connect(project.db_url) as conn:
        return conn.info.server_version // 10000


def never(_where: str) -> bool:
    raise AssertionError("must refuse before asking")


def always(_where: str) -> bool:
    return True


def test_reset_dev_drops_everything_then_migrates_again(project):
    project.write(
        {"001-schema/001-a.sql": "CREATE SCHEMA app;\nCREATE TABLE app.t ();\n"}
    )
    api.apply(project.target)
    asked = []
    dropped, applied = api.reset_dev(
        project.target, lambda where: asked.append(where) or True
    )
    assert set(dropped) >= {"app", "public"}
    assert tables(project) == set()
    assert asked
    assert project.settings.database_url not in asked[0]
    _, applied = api.reset_dev(project.target, always, migrate=True)
    assert applied is not None
    assert len(applied.applied) == 1
    assert tables(project) >= {"app.t", "public.blockchain_migrations"}


def refusal_setup(project, case):
    project.write({"001-schema/001-a.sql": TABLE_A})
    settings = project.settings
    if case == "local production":
        api.apply(api.target(settings))
        settings = project.with_settings(environment="production")
    elif case == "database marked production":
        api.apply(project.target_with(environment="production"))
    elif case == "marker missing":
        api.apply(api.target(settings))
        project.query(
            "DELETE FROM blockchain_migrations_meta WHERE key = 'environment'"
        )
    elif case == "tables but no ledger":
        project.query(TABLE_A)
    elif case == "another ledger marked production":  # B5 of issue 14
        api.apply(project.target_with(environment="production"), backup=False)
        scratch = project.with_settings(ledger_schema="scratch")
        with pytest.raises(MigrationFailed):  # its tables exist already
            api.apply(api.target(scratch))
        settings = scratch
    return settings


@pytest.mark.parametrize(
    "case",
    [
        "local production",
        "database marked production",
        "marker missing",
        "tables but no ledger",
        "another ledger marked production",
    ],
)
def test_reset_dev_refuses_without_dropping_anything(project, case):
    settings = refusal_setup(project, case)
    project.query(NO_DROPS)  # any DROP that reached the server would raise instead
    before = tables(project)
    with pytest.raises(Refused) as caught:
        api.reset_dev(api.target(settings), never)
    assert "nothing was dropped" in str(caught.value)
    assert tables(project) == before


def test_reset_dev_refuses_production_marker_whatever_local_env_says(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target_with(environment="production"))
    api.apply(project.target)  # a development run never downgrades the marker
    marker = project.query(
        "SELECT value FROM blockchain_migrations_meta WHERE key = 'environment'"
    )
    assert marker == [("production",)]
    with pytest.raises(Refused):
        api.reset_dev(project.target, never)


def test_failed_first_file_leaves_its_ledger_unmarked(project):
    project.write({"001-schema/001-a.sql": "SELECT 1/0;\n"})
    with pytest.raises(MigrationFailed):
        api.apply(project.target)

    assert project.query("SELECT key FROM blockchain_migrations_meta ORDER BY key") == [
        ("format_version",)
    ]


def test_reset_dev_refuses_when_confirmation_declined(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    with pytest.raises(Refused):
        api.reset_dev(project.target, lambda _where: False)
    assert "public.a" in tables(project)


def test_dry_run_changes_nothing_and_describes_plan(project):
    project.write(
        {
            "001-schema/001-a.sql": TABLE_A,
            "001-schema/002-idx.sql": "CREATE INDEX CONCURRENTLY a_i ON a (id);\n",
        }
    )
    before = project.query("SELECT count(*) FROM pg_class")
    result = api.apply(project.target, dry_run=True)
    assert [(p.file.number, p.transactional) for p in result.planned] == [
        (1001, True),
        (1002, False),
    ]
    assert "CONCURRENTLY" in (result.planned[1].reason or "")
    assert result.planned[1].statements == 1
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]
    assert project.query("SELECT count(*) FROM pg_class") == before


def test_dry_run_leaves_schema_dump_identical_when_ledger_exists(project, tmp_path):
    pg_dump = shutil.which("pg_dump")
    assert pg_dump, "pg_dump is part of the test machine"
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.write({"001-schema/002-b.sql": TABLE_B})

    def dump() -> str:
        tool = backup.find_pg_dump(server_major(project))
        out = subprocess.run(
            [str(tool), "--schema-only", f"--dbname={project.db_url}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # pg_dump's \restrict key is random on every run.
        return "\n".join(ln for ln in out.splitlines() if "restrict" not in ln)

    before = dump()
    api.apply(project.target, dry_run=True)
    assert dump() == before


def test_migration_fails_fast_when_table_locked_by_another_session(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.write({"001-schema/002-alter.sql": "ALTER TABLE a ADD COLUMN note text;\n"})
    settings = project.with_settings(migration_lock_timeout="200ms")
    with psycopg.connect(project.db_url) as holder:
        holder.execute("LOCK TABLE a IN ACCESS SHARE MODE")
        with pytest.raises(MigrationFailed) as caught:
            api.apply(api.target(settings))
    assert caught.value.sqlstate == "55P03"
    assert "chainops:lock-timeout" in str(caught.value)
    cols = project.query(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'a'"
    )
    assert cols == [(1,)]


def test_lock_timeout_directive_overrides_the_default(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.write(
        {
            "001-schema/002-show.sql": "-- chainops:lock-timeout=7s\n"
            "CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS v;\n"
        }
    )
    api.apply(project.target)
    assert project.query("SELECT v FROM seen") == [("7s",)]
    assert project.query("SHOW lock_timeout") == [("0",)]


def test_backup_written_before_applying_and_restores(project, pg_server):
    project.write({"001-schema/001-a.sql": TABLE_A + "INSERT INTO a VALUES (42);\n"})
    api.apply(project.target)
    project.write({"001-schema/002-b.sql": TABLE_B})
    events = []
    api.apply(project.target, backup=True, on_event=events.append)
    backed = [e for e in events if isinstance(e, api.BackedUp)]
    assert len(backed) == 1
    assert "before-1002" in backed[0].path
    assert backed[0].restore == f"inv db.restore {backed[0].path}"
    path = project.root / backed[0].path
    assert path.stat().st_mode & 0o777 == 0o600  # it holds the data: owner only
    assert path.parent.stat().st_mode & 0o777 == 0o700

    restored = str(conninfo_to_dict(project.db_url)["dbname"]) + "_r"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        db.drop_database(admin, restored)
        db.create_database(admin, restored)
    try:
        db_verbs.db_restore(
            project.target_with(database_url=pg_server.url_for(restored)), path
        )
        with psycopg.connect(pg_server.url_for(restored)) as conn:
            assert conn.execute("SELECT id FROM a").fetchall() == [(42,)]
            assert conn.execute("SELECT to_regclass('b')").fetchone() == (None,)
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            db.drop_database(admin, restored)


def test_backups_pruned_to_newest_n(project):
    settings = project.with_settings(backup_keep=2)
    for i in range(1, 5):
        project.write({f"001-schema/00{i}-t.sql": f"CREATE TABLE t{i} ();\n"})
        api.apply(api.target(settings), backup=True)
    dumps = sorted((project.root / ".chainops/backups").glob("*.dump"))
    assert len(dumps) == 2
    assert "before-1004" in dumps[-1].name


def test_no_backup_when_nothing_pending(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    api.apply(project.target, backup=True)
    assert not (project.root / ".chainops/backups").exists()


def test_baseline_records_blocks_without_running_them(project):
    project.query(TABLE_A + TABLE_B)
    project.write(
        {
            "001-schema/001-a.sql": TABLE_A,
            "001-schema/002-b.sql": TABLE_B,
            "001-schema/003-c.sql": "CREATE TABLE c ();\n",
        }
    )
    result = api.baseline(project.target, 1002)
    assert [a.block.mode for a in result.applied] == ["baseline", "baseline"]
    assert api.verify(project.target).ok
    applied = api.apply(project.target)
    assert [a.file.number for a in applied.applied] == [1003]
    history = project.query(
        "SELECT outcome FROM blockchain_migrations_history ORDER BY id"
    )
    assert history == [("baselined",), ("baselined",), ("completed",)]


def test_baseline_refused_when_ledger_has_blocks(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    with pytest.raises(Refused):
        api.baseline(project.target, 1001)
