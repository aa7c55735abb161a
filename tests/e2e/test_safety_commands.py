"""reset-dev, dry run and baseline through `chainops` and `inv`, from a shell."""

from __future__ import annotations

from tests.e2e.test_commands import one_error_line, run

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"


def test_reset_dev_without_terminal_or_yes_is_refused_with_exit_7(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    assert run(project, "migrate").returncode == 0
    result = run(project, "db.reset-dev", tool="inv")
    assert result.returncode == 7
    assert "--yes" in one_error_line(result)
    assert project.query("SELECT to_regclass('a')") == [("a",)]


def test_reset_dev_in_production_is_refused_even_with_yes(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    assert run(project, "migrate").returncode == 0
    result = run(project, "reset-dev", "--yes", env={"CHAINOPS_ENV": "production"})
    assert result.returncode == 7
    assert "production" in one_error_line(result)
    assert project.query("SELECT to_regclass('a')") == [("a",)]


def test_reset_dev_with_yes_and_migrate_rebuilds(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    assert run(project, "migrate").returncode == 0
    project.query("INSERT INTO a VALUES (1)")
    result = run(project, "db.reset-dev", "--yes", "--migrate", tool="inv")
    assert result.returncode == 0, result.stderr
    assert "Applied 1 migration" in result.stdout
    assert project.query("SELECT count(*) FROM a") == [(0,)]


def test_dry_run_lists_plan_and_sql(project):
    project.write(
        {
            "001-schema/001-a.sql": TABLE_A,
            "001-schema/002-i.sql": "CREATE INDEX CONCURRENTLY a_i ON a (id);\n",
        }
    )
    result = run(project, "migrate", "--dry-run", "--sql", tool="inv")
    assert result.returncode == 0, result.stderr
    assert "#1001 001-schema/001-a.sql: in one transaction" in result.stdout
    assert "without a transaction (CREATE INDEX CONCURRENTLY" in result.stdout
    assert "    CREATE TABLE a (id int PRIMARY KEY);" in result.stdout
    assert "nothing was changed" in result.stdout
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]


def test_baseline_through_inv(project):
    project.query(TABLE_A)
    project.write({"001-schema/001-a.sql": TABLE_A})
    result = run(project, "migrate.baseline", "--through", "1001", tool="inv")
    assert result.returncode == 0, result.stderr
    assert "Baselined 1 migration without" in result.stdout
    assert run(project, "verify").returncode == 0
