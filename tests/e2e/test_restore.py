"""`db restore`: the command a backup line prints restores it, with a pg_restore
that can read it, and production asks for --yes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from chainops.store import connection as db
from tests.e2e.test_commands import one_error_line, run

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\nINSERT INTO a VALUES (42);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"


@pytest.fixture
def fresh_url(project, pg_server) -> Iterator[str]:
    """A second, empty database beside the project's."""
    name = str(conninfo_to_dict(project.db_url)["dbname"]) + "_r"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        db.drop_database(admin, name)
        db.create_database(admin, name)
    try:
        yield pg_server.url_for(name)
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            db.drop_database(admin, name)


def backed_up(project, tool: str = "chainops") -> str:
    """Apply 001 without, then 002 with a backup; return the printed restore line."""
    project.write({"001-schema/001-a.sql": TABLE_A})
    assert run(project, "migrate").returncode == 0
    project.write({"001-schema/002-b.sql": TABLE_B})
    result = run(project, "migrate", "--backup", tool=tool)
    assert result.returncode == 0, result.stderr
    line = next(ln for ln in result.stdout.splitlines() if "backed up to" in ln)
    return line.partition("(restore: ")[2].removesuffix(")")


@pytest.mark.parametrize("tool", ["inv", "chainops"])
def test_printed_restore_command_restores_backup_into_fresh_database(
    project, fresh_url, tool
):
    command = backed_up(project, tool)
    # The backup line names the restore command of the front end that made it.
    verb = "inv db.restore" if tool == "inv" else "chainops db restore"
    assert command.startswith(f"{verb} .chainops/backups/")
    argv = command.split()[1:]

    result = run(project, *argv, env={"DATABASE_URL": fresh_url}, tool=tool)

    assert result.returncode == 0, result.stderr
    assert "✓ restored .chainops/backups/" in result.stdout
    with psycopg.connect(fresh_url) as conn:
        assert conn.execute("SELECT id FROM a").fetchall() == [(42,)]
        assert conn.execute("SELECT to_regclass('b')").fetchone() == (None,)
        heights = conn.execute(
            "SELECT count(*) FROM blockchain_migrations WHERE status = 'completed'"
        ).fetchone()
    assert heights == (1,)
    status = run(project, "status", env={"DATABASE_URL": fresh_url})
    assert "1 applied, 1 pending, 0 failed" in status.stdout


def test_restore_refuses_production_without_yes(project, fresh_url):
    command = backed_up(project)
    backup = command.split()[-1]
    env = {"DATABASE_URL": fresh_url, "CHAINOPS_ENV": "production"}

    refused = run(project, "db", "restore", backup, env=env)

    assert refused.returncode == 7
    assert "pass --yes to confirm, nothing was restored" in one_error_line(refused)
    with psycopg.connect(fresh_url) as conn:
        assert conn.execute("SELECT to_regclass('a')").fetchone() == (None,)
    confirmed = run(project, "db", "restore", backup, "--yes", env=env)
    assert confirmed.returncode == 0, confirmed.stderr


def test_restore_says_what_to_pass_when_file_is_missing(project):
    result = run(project, "db", "restore")

    assert result.returncode == 2
    assert one_error_line(result).startswith("✗ FILE is missing")
    missing = run(project, "db", "restore", "nope.dump")
    assert missing.returncode == 2
    assert "nope.dump does not exist" in one_error_line(missing)


def test_restore_picks_pg_restore_that_reads_a_newer_dump(project):
    """A dump by the embedded PostgreSQL 18's pg_dump is unreadable by an older
    pg_restore on PATH (`unsupported version (1.16) in file header`)."""
    from chainops.store import dump, server

    wheel_dump = server.pg_bin("pg_dump")
    path = project.root / "new.dump"
    subprocess.run(
        [str(wheel_dump), "--format=custom", f"--file={path}", project.db_url],
        check=True,
        capture_output=True,
    )

    chosen = dump.find_pg_restore(path, 15)

    assert chosen == server.pg_bin("pg_restore")
