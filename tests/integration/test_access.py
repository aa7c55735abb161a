"""Server refusals outside a migration: one line naming what is missing, exit 5."""

from __future__ import annotations

import itertools
import os

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chainops import cli
from chainops.errors import PermissionDenied

_roles = itertools.count()
TABLE = "CREATE TABLE notes (id bigint PRIMARY KEY);\n"


@pytest.fixture
def migrator(project, pg_server):
    """A login role that may connect but create nothing, and its URL."""
    name = f"chainops_t_role_{os.getpid()}_{next(_roles)}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    # PostgreSQL 15 and later grant no CREATE on public to PUBLIC; say so for 14.
    project.query("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    yield name, make_conninfo(project.db_url, user=name)
    project.query(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)).as_string())
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, err.splitlines(), out


def test_migrate_exits_5_with_grant_advice_when_role_lacks_create(
    project, migrator, capsys
):
    role, url = migrator
    project.write({"001-schema/001-notes.sql": TABLE})

    code, err, _ = run(
        capsys,
        "migrate",
        "--database-url",
        url,
        "--migrations-dir",
        str(project.migrations),
    )

    assert code == PermissionDenied.exit_code == 5
    assert len(err) == 1
    assert f"the role {role} lacks a privilege that migrate needs" in err[0]
    assert f"GRANT USAGE, CREATE ON SCHEMA public TO {role}" in err[0]
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]


def test_migrate_exits_5_naming_read_only_when_database_refuses_writes(project, capsys):
    project.write({"001-schema/001-notes.sql": TABLE})
    dbname = project.query("SELECT current_database()")[0][0]
    project.query(
        sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on")
        .format(sql.Identifier(str(dbname)))
        .as_string()
    )

    code, err, _ = run(
        capsys,
        "migrate",
        "--database-url",
        project.db_url,
        "--migrations-dir",
        str(project.migrations),
    )

    assert code == 5
    assert len(err) == 1
    assert "is read-only" in err[0]
    assert "writable primary" in err[0]
