"""Drift as an operator meets it: `inv migrate.verify` after a hand-made ALTER TABLE."""

from __future__ import annotations

from tests.e2e.test_commands import run


def test_verify_fails_naming_the_change_after_alter_table_by_hand(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int PRIMARY KEY);\n"})
    assert run(project, "migrate", tool="inv").returncode == 0
    project.query("ALTER TABLE a ADD COLUMN note text")
    result = run(project, "migrate.verify", tool="inv")
    assert result.returncode == 4
    assert "  table public.a: column note text added" in result.stdout
    assert "--accept-drift" in result.stdout
    accepted = run(project, "migrate", "--accept-drift", tool="inv")
    assert accepted.returncode == 0, accepted.stderr
    assert "recorded as drift block 2" in accepted.stdout
    assert run(project, "migrate.verify", tool="inv").returncode == 0


def test_db_schema_writes_schema_file(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int PRIMARY KEY);\n"})
    assert run(project, "migrate").returncode == 0
    result = run(project, "db.schema", tool="inv")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE public.a" in (project.migrations / "schema.sql").read_text()


def test_accept_drift_looks_like_success_and_keeps_its_place_in_status(project):
    project.write(
        {
            "001-schema/001-a.sql": "CREATE TABLE a (id int PRIMARY KEY);\n",
            "001-schema/002-b.sql": "CREATE TABLE b (id int PRIMARY KEY);\n",
        }
    )
    assert run(project, "migrate").returncode == 0
    project.query("ALTER TABLE a ADD COLUMN note text")
    # bigint: no lint warning comes first (prefer-bigint-pk), only the drift line
    project.write({"001-schema/003-c.sql": "CREATE TABLE c (id bigint PRIMARY KEY);\n"})

    accepted = run(project, "migrate", "--accept-drift")

    assert accepted.returncode == 0, accepted.stderr
    assert "✗" not in accepted.stdout + accepted.stderr
    assert accepted.stdout.startswith("✓ the database schema drifted since block 2")
    assert "; recorded as drift block 3, so the chain shows who changed what\n" in (
        accepted.stdout
    )
    again = run(project, "migrate")
    assert again.stdout.startswith("Nothing to apply: 3 migrations applied, ")
    assert "(block 4)" in again.stdout
    status = run(project, "status").stdout.splitlines()
    assert [line.split()[1] for line in status[:-1]] == [
        "#1001",
        "#1002",
        "#-3",
        "#1003",
    ]
