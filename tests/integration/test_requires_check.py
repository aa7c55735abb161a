"""`-- chainops:requires=` refuses a file until the migration it names is applied;
`-- chainops:check=` is a precondition evaluated in the file's transaction first.
Each refusal applies nothing of the file, and says so in one line."""

from __future__ import annotations

import pytest

from chainops import api
from chainops.errors import (
    CheckFailed,
    MigrationFailed,
    MigrationFileError,
    RequirementNotApplied,
)

USERS = "CREATE TABLE users (id int PRIMARY KEY, email text);\n"
NOT_NULL = (
    "-- chainops:check=SELECT count(*) = 0 FROM users WHERE email IS NULL\n"
    "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\n"
)


def blocks(project) -> list[int]:
    rows = project.query("SELECT migration_number FROM blockchain_migrations"
                         " WHERE status = 'completed' ORDER BY height")  # fmt: skip
    return [int(str(number)) for (number,) in rows]


@pytest.mark.parametrize("target", ["1001", "#1001", "001-schema/001-users.sql"])
def test_apply_applies_file_when_required_migration_is_applied_before_it(
    project, target
):
    project.write(
        {
            "001-schema/001-users.sql": USERS,
            "002-functions/001-f.sql": f"-- chainops:requires={target}\n"
            "CREATE VIEW f AS SELECT count(*) FROM users;\n",
        }
    )

    api.apply(project.target)

    assert blocks(project) == [1001, 2001]


@pytest.mark.parametrize(
    ("target", "words"),
    [
        (
            "2001",
            "requires #2001 (002-views/001-v.sql), which is pending and comes after it",
        ),
        ("1009", "requires #1009, which names no migration file"),
        (
            "002-views/009-x.sql",
            "requires 002-views/009-x.sql, which names no migration",
        ),
    ],
)
def test_apply_refuses_whole_run_when_required_migration_is_not_applied_before(
    project, target, words
):
    project.write(
        {
            "001-schema/001-users.sql": USERS,
            "001-schema/002-email.sql": f"SELECT 1;\n-- chainops:requires={target}\n"
            + NOT_NULL,
            "002-views/001-v.sql": "CREATE VIEW v AS SELECT 1 AS one;\n",
        }
    )

    with pytest.raises(RequirementNotApplied) as caught:
        api.apply(project.target)

    assert str(caught.value) == (
        f"001-schema/002-email.sql:2: {words}" + str(caught.value).split(words, 1)[1]
    )
    assert str(caught.value).endswith("; nothing was applied")
    assert caught.value.exit_code == 7
    assert project.query("SELECT to_regclass('users')") == [(None,)]


def test_apply_applies_file_when_its_check_holds(project):
    project.write(
        {"001-schema/001-users.sql": USERS, "001-schema/002-email.sql": NOT_NULL}
    )

    api.apply(project.target)

    assert blocks(project) == [1001, 1002]


@pytest.mark.parametrize("no_transaction", [False, True])
def test_apply_refuses_file_with_check_text_when_check_is_false(
    project, no_transaction
):
    email = ("-- chainops:no-transaction\n" if no_transaction else "") + NOT_NULL
    project.write(
        {"001-schema/001-users.sql": USERS + "INSERT INTO users VALUES (1);\n"}
    )
    api.apply(project.target)
    project.write({"001-schema/002-email.sql": email})

    with pytest.raises(CheckFailed) as caught:
        api.apply(project.target)

    assert str(caught.value) == (
        f"001-schema/002-email.sql:{1 + no_transaction}: check failed: SELECT "
        "count(*) = 0 FROM users WHERE email IS NULL; 001-schema/002-email.sql was "
        "not applied, make the check hold and run inv migrate again"
    )
    assert blocks(project) == [1001]
    assert project.query("SELECT count(*) FROM blockchain_migrations"
                         " WHERE status <> 'completed'") == [(0,)]  # fmt: skip
    nullable = (
        "SELECT is_nullable FROM information_schema.columns WHERE column_name = 'email'"
    )
    assert project.query(nullable) == [("YES",)]
    project.query("UPDATE users SET email = 'a@example.org'")
    api.apply(project.target)
    assert blocks(project) == [1001, 1002]


def test_apply_places_check_error_at_its_line_and_applies_nothing(project):
    check = "-- chainops:check=SELECT count(*) = 0 FROM nope\n"
    project.write({"001-schema/001-users.sql": "SELECT 1;\n" + check + USERS})

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    assert (caught.value.line, caught.value.column) == (2, 44)
    assert 'relation "nope" does not exist' in str(caught.value)
    assert project.query("SELECT to_regclass('users')") == [(None,)]


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("-- chainops:requires=soon", "chainops:requires=soon is neither"),
        ("-- chainops:check=", "chainops:check needs a query"),
        ("-- chainops:chek=SELECT true", "unknown directive chainops:chek"),
    ],
)
def test_apply_refuses_bad_directive_before_applying(project, line, words):
    project.write({"001-schema/001-users.sql": f"{line}\n{USERS}"})

    with pytest.raises(MigrationFileError, match=r"^[^\n]*$") as caught:
        api.apply(project.target)

    assert str(caught.value).startswith(f"001-schema/001-users.sql:1: {words}")
    assert project.query("SELECT to_regclass('users')") == [(None,)]


@pytest.mark.parametrize(
    "body",
    [
        "CREATE TABLE later (id int);\n",  # in the file's transaction
        "CREATE INDEX CONCURRENTLY users_e ON users (email);\n",  # no transaction
    ],
)
def test_a_check_only_looks_and_its_writes_are_refused_with_nothing_left(project, body):
    project.write({"001-schema/001-users.sql": USERS})
    api.apply(project.target)
    project.write(
        {
            "001-schema/002-x.sql": "-- chainops:check=SELECT true FROM"
            " (SELECT 1) s; CREATE TABLE leaked (id int)\n" + body
        }
    )

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    assert "cannot execute CREATE TABLE in a read-only transaction" in str(caught.value)
    assert project.query("SELECT to_regclass('leaked')") == [(None,)]
    assert blocks(project) == [1001]


def test_a_repeatable_files_requirement_is_checked_too(project):
    project.write(
        {
            "001-schema/001-users.sql": USERS,
            "002-functions/R-n.sql": "-- chainops:requires=1099\n"
            "CREATE OR REPLACE VIEW n AS SELECT count(*) FROM users;\n",
        }
    )

    with pytest.raises(RequirementNotApplied) as caught:
        api.apply(project.target)

    assert "002-functions/R-n.sql:1: requires #1099, which names no migration" in str(
        caught.value
    )
    assert project.query("SELECT to_regclass('users')") == [(None,)]


def test_requiring_a_repeatable_migration_is_refused_on_any_database(project):
    files = {
        "001-schema/001-users.sql": USERS,
        "002-functions/R-n.sql": "CREATE OR REPLACE VIEW n AS SELECT 1;\n",
    }
    project.write(files)
    api.apply(project.target)  # the repeatable is applied here
    project.write({"003-seed/001-x.sql": "-- chainops:requires=002-functions/R-n.sql\n"
                   "SELECT 1;\n"})  # fmt: skip

    with pytest.raises(RequirementNotApplied) as caught:
        api.apply(project.target)

    assert "a repeatable migration, which runs after every numbered one" in str(
        caught.value
    )
