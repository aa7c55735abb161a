"""Messages name the commands of the front end in use: `chainops …` from chainops,
`inv …` from inv."""

from __future__ import annotations

from tests.e2e.test_commands import one_error_line, run

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"


def test_reset_dev_refusal_names_chainops_command_when_run_from_chainops(project):
    result = run(project, "reset-dev", "--yes", env={"CHAINOPS_ENV": "production"})

    assert result.returncode == 7
    line = one_error_line(result)
    assert "chainops reset-dev never runs in production" in line
    assert "db.reset-dev" not in line


def test_edited_file_advice_names_the_create_command_of_each_front_end(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    assert run(project, "migrate").returncode == 0
    project.write({"001-schema/001-a.sql": TABLE_A + "-- edited\n"})

    from_chainops = run(project, "migrate")
    from_inv = run(project, "migrate", tool="inv")

    assert "new migration (chainops create)" in from_chainops.stderr
    assert "inv " not in from_chainops.stderr
    assert "new migration (inv migrate.create)" in from_inv.stderr


def test_dry_run_syntax_error_says_to_run_migrate_again_not_to_save(project):
    project.write({"001-schema/001-a.sql": "CREATE INDEX CONCURRENTLY ON;\n"})

    result = run(project, "migrate", "--dry-run")

    assert result.returncode == 3
    line = one_error_line(result)
    assert line.endswith("; fix the SQL and run chainops migrate again")
