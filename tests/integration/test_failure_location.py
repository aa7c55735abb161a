"""A failing statement in a multi-statement file is placed at its line, with the
server's DETAIL and HINT, in the error and in the failed attempt the ledger keeps."""

from __future__ import annotations

import pytest

from chainops import api
from chainops.errors import MigrationFailed

USERS = "CREATE TABLE users (id int PRIMARY KEY);\n"
ORDERS = (
    "CREATE TABLE orders (\n"
    "    id int PRIMARY KEY,\n"
    "    user_id int NOT NULL REFERENCES users (id)\n"
    ");\n"
    "INSERT INTO users VALUES (1);\n"
    "INSERT INTO orders VALUES (1, 1);\n"
    "INSERT INTO orders\n"
    "    VALUES (2, 42);\n"
)


def failed_row(project, number: int) -> str:
    rows = project.query(
        "SELECT error_message FROM blockchain_migrations"
        " WHERE migration_number = %s AND status = 'failed'",
        (number,),
    )
    assert len(rows) == 1
    return str(rows[0][0])


def test_apply_places_error_at_its_line_when_server_gives_no_position(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int);\n\nSELECT 1/0;\n"})

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    err = caught.value
    assert (err.line, err.column) == (3, 1)
    assert str(err).startswith("001-schema/001-a.sql:3:1: division by zero")
    assert "SQLSTATE 22012" in str(err)
    assert "at line 3:1" in failed_row(project, 1001)
    assert project.query("SELECT to_regclass('a')") == [(None,)]


def test_apply_reports_detail_and_line_when_foreign_key_is_violated(project):
    project.write(
        {"001-schema/001-users.sql": USERS, "001-schema/002-orders.sql": ORDERS}
    )

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    err = caught.value
    detail = 'Key (user_id)=(42) is not present in table "users".'
    assert (err.path, err.line, err.column) == ("001-schema/002-orders.sql", 7, 1)
    assert err.sqlstate == "23503"
    assert err.detail == detail
    assert f"; detail: {detail};" in str(err)
    recorded = failed_row(project, 1002)
    assert "at line 7:1 (SQLSTATE 23503)" in recorded
    assert detail in recorded
    # the failed attempt was rolled back: nothing of the file, nothing of the re-run
    assert project.query("SELECT to_regclass('orders')") == [(None,)]
    assert project.query("SELECT count(*) FROM users") == [(0,)]


def test_apply_keeps_detail_and_hint_in_ledger_when_server_gives_them(project):
    project.write(
        {
            "001-schema/001-a.sql": "CREATE TABLE a (id int);\n"
            "DO $$ BEGIN\n"
            "  RAISE EXCEPTION 'boom' USING DETAIL = 'the detail', HINT = 'the hint';\n"
            "END $$;\n"
        }
    )

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    assert caught.value.line == 2
    assert str(caught.value).startswith(
        "001-schema/001-a.sql:2:1: boom (SQLSTATE P0001); detail: the detail; "
        "hint: the hint; "
    )
    assert failed_row(project, 1001) == (
        "boom at line 2:1 (SQLSTATE P0001); detail: the detail; hint: the hint"
    )
