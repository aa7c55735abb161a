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
