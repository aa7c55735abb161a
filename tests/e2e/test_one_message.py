"""One problem, one message: an edited or deleted applied file is told once."""

from __future__ import annotations

from tests.e2e.test_commands import run

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"


def applied_and_locked(project) -> None:
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-b.sql": TABLE_B})
    assert run(project, "lock").returncode == 0
    assert run(project, "migrate").returncode == 0


def test_migrate_tells_edited_applied_file_once_when_lock_differs_too(project):
    applied_and_locked(project)
    project.write({"001-schema/001-a.sql": TABLE_A + "-- edited\n"})

    result = run(project, "migrate", tool="inv")

    assert result.returncode == 4
    assert result.stderr.splitlines() == [
        "✗ Hash mismatch for 001-schema/001-a.sql",
        "  Expected: " + result.stderr.splitlines()[1].split()[-1],
        "  Current:  " + result.stderr.splitlines()[2].split()[-1],
        "  Solution: restore the file from git and put the change in a new "
        "migration (inv migrate.create)",
        "1 problem found; nothing was applied",
    ]
    assert "chain.lock" not in result.stdout + result.stderr


def test_migrate_tells_deleted_applied_file_once(project):
    applied_and_locked(project)
    (project.migrations / "001-schema/002-b.sql").unlink()

    result = run(project, "migrate")

    assert result.returncode == 4
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "✗ 001-schema/002-b.sql was applied but is missing; restore it from git "
        "(applied migrations are never deleted); nothing was applied"
    ]
