"""A verify script, `NNN-x.verify.sql` beside `NNN-x.sql` (as Sqitch's), runs after
the file in its transaction: false or an error rolls the file back and records a
failed attempt naming the script; it is hashed and listed in chain.lock."""

from __future__ import annotations

import pytest

from chainops import api
from chainops.errors import DriftError, MigrationFailed, MigrationFileError
from chainops.source import lockfile

USERS = "CREATE TABLE users (id int PRIMARY KEY);\nINSERT INTO users VALUES (1);\n"
VERIFY = (
    "-- the table exists and holds its first row\n"
    "SELECT 1 FROM users WHERE false;\n"
    "SELECT count(*) = 1 FROM users;\n"
)


def attempts(project) -> list[tuple[object, ...]]:
    return project.query(
        "SELECT status, error_message FROM blockchain_migrations ORDER BY id"
    )


def test_apply_commits_file_when_its_verify_script_holds(project):
    project.write({"001-schema/001-users.sql": USERS,
                   "001-schema/001-users.verify.sql": VERIFY})  # fmt: skip

    result = api.apply(project.target)

    assert [a.file.path for a in result.applied] == ["001-schema/001-users.sql"]
    assert attempts(project) == [("completed", None)]
    assert api.verify(project.target).ok


@pytest.mark.parametrize(
    ("verify", "where", "words"),
    [
        ("SELECT count(*) = 2 FROM users;\n", "1:1", "returned false: SELECT count(*)"),
        ("SELECT 1;\nSELECT false, 'x';\n", "2:1", "returned false: SELECT false, 'x'"),
        ("SELECT 1;\n  SELECT nope FROM users;\n", "2:10", 'column "nope" does not'),
        ("SELECT 1/0;\n", "1:1", "division by zero"),
        # A verify script only looks: it is not in the block hash, so a change made
        # there would be in no block. Writes are refused, not committed.
        (
            "SELECT 1;\nCREATE INDEX users_x ON users (id);\n",
            "2:1",
            "cannot execute CREATE INDEX in a read-only transaction",
        ),
        (
            "DELETE FROM users;\n",
            "1:1",
            "cannot execute DELETE in a read-only transaction",
        ),
    ],
)
def test_apply_rolls_file_back_and_records_which_check_failed(
    project, verify, where, words
):
    project.write({"001-schema/001-users.sql": USERS,
                   "001-schema/001-users.verify.sql": verify})  # fmt: skip

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    message = str(caught.value)
    assert message.startswith(f"001-schema/001-users.verify.sql:{where}: {words}")
    assert "\n" not in message
    assert message.endswith(
        "; 001-schema/001-users.sql was rolled back; fix it or its verify script and "
        "run inv migrate again"
    )
    assert project.query("SELECT to_regclass('users')") == [(None,)]
    ((status, error),) = attempts(project)
    assert status == "failed"
    assert str(error).startswith(
        f"verify script 001-schema/001-users.verify.sql: {words}"
    )
    assert f"at line {where}" in str(error)


def test_lock_lists_verify_script_and_production_refuses_it_changed(project):
    project.write({"001-schema/001-users.sql": USERS,
                   "001-schema/001-users.verify.sql": VERIFY})  # fmt: skip
    api.lock(project.settings)
    lock = lockfile.read_lock(project.migrations)
    assert lock is not None
    assert [e.path for e in lock.entries] == [
        "001-schema/001-users.sql",
        "001-schema/001-users.verify.sql",
    ]
    project.write({"001-schema/001-users.verify.sql": VERIFY + "SELECT true;\n"})

    with pytest.raises(
        DriftError, match=r"001-users\.verify\.sql differs from chain\.lock"
    ):
        api.apply(project.target_with(environment="production"))

    assert project.query("SELECT to_regclass('users')") == [(None,)]


@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({"001-schema/002-x.verify.sql": VERIFY}, "002-x.verify.sql has no migration"),
        (
            {"001-schema/001-users.verify.sql": "VACUUM users;\n"},
            "cannot hold VACUUM at line 1",
        ),
        (
            {
                "001-schema/001-users.sql": "-- chainops:no-transaction\n" + USERS,
                "001-schema/001-users.verify.sql": VERIFY,
            },
            "and 001-schema/001-users.sql runs statement by statement",
        ),
    ],
)
def test_apply_refuses_verify_script_it_cannot_run(project, files, words):
    project.write({"001-schema/001-users.sql": USERS, **files})

    with pytest.raises(MigrationFileError, match=r"^[^\n]*$") as caught:
        api.apply(project.target)

    assert words in str(caught.value)
    assert project.query("SELECT to_regclass('users')") == [(None,)]
