"""Seed data as pg_dump writes it, `COPY … FROM stdin` with its data lines and `\\.`,
applied through psycopg's COPY in the file's transaction, hashed like any file."""

from __future__ import annotations

import hashlib

import pytest

from chainops import api
from chainops.errors import MigrationFailed, MigrationFileError

TABLE = "CREATE TABLE assets (id int PRIMARY KEY, symbol text NOT NULL, note text);\n"
SEED = (
    "-- as pg_dump writes it\n"
    "COPY public.assets (id, symbol, note) FROM stdin;\n"
    "1\tBTC\t\\N\n"
    "2\tETH\tsmart; contracts -- not a comment\n"
    "\\.\n"
    "\n"
    "UPDATE assets SET note = 'gold' WHERE id = 1;\n"
    "COPY assets FROM stdin WITH (FORMAT csv);\n"
    '3,SOL,"a, b"\n'
    "\\.\n"
)


def test_apply_loads_copy_data_in_one_block_when_file_holds_pg_dump_seed(project):
    project.write({"001-schema/001-assets.sql": TABLE, "003-seed/001-assets.sql": SEED})

    result = api.apply(project.target)

    assert [a.file.path for a in result.applied][-1] == "003-seed/001-assets.sql"
    assert project.query("SELECT id, symbol, note FROM assets ORDER BY id") == [
        (1, "BTC", "gold"),
        (2, "ETH", "smart; contracts -- not a comment"),
        (3, "SOL", "a, b"),
    ]
    rows = project.query(
        "SELECT hash, mode FROM blockchain_migrations WHERE migration_number = 3001"
    )
    assert rows == [(hashlib.sha256(SEED.encode()).hexdigest(), "transaction")]
    assert api.verify(project.target).ok


def test_apply_rolls_back_and_places_bad_data_row_at_its_line(project):
    bad = SEED.replace("2\tETH", "x\tETH")
    project.write({"001-schema/001-assets.sql": TABLE, "003-seed/001-assets.sql": bad})

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    err = caught.value
    assert (err.path, err.line, err.column) == ("003-seed/001-assets.sql", 4, 1)
    assert "invalid input syntax for type integer" in str(err)
    assert "rolled back" in str(err)
    assert project.query("SELECT count(*) FROM assets") == [(0,)]
    failed = project.query(
        "SELECT error_message FROM blockchain_migrations WHERE status = 'failed'"
    )
    assert "at line 4:1" in str(failed[0][0])


def test_apply_places_error_in_statement_after_copy_data(project):
    bad = SEED.replace("UPDATE assets SET note", "UPDATE assets SET nope")
    project.write({"001-schema/001-assets.sql": TABLE, "003-seed/001-assets.sql": bad})

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    assert (caught.value.line, caught.value.column) == (7, 19)
    assert project.query("SELECT count(*) FROM assets") == [(0,)]


def test_apply_loads_copy_data_when_file_runs_statement_by_statement(project):
    seed = "-- chainops:no-transaction\n" + SEED
    project.write({"001-schema/001-assets.sql": TABLE, "003-seed/001-assets.sql": seed})

    api.apply(project.target)

    assert project.query("SELECT count(*) FROM assets") == [(3,)]
    mode = "SELECT mode FROM blockchain_migrations WHERE migration_number = 3001"
    assert project.query(mode) == [("no-transaction",)]


@pytest.mark.parametrize(
    ("seed", "words"),
    [
        ("COPY assets FROM stdin;\n1\tBTC\t\\N\n", "3:1: the data of COPY"),
        ("COPY assets FROM stdin; SELECT 1;\n", "3:1: COPY ... FROM STDIN has no data"),
        ("SELECT 1;\n\\.\n", "4:1: psql meta-command \\. is not supported"),
    ],
)
def test_apply_refuses_copy_before_applying_when_data_is_not_delimited(
    project, seed, words
):
    project.write({"003-seed/001-assets.sql": TABLE + "--\n" + seed})

    with pytest.raises(MigrationFileError, match=r"^[^\n]*$") as caught:
        api.apply(project.target)

    assert str(caught.value).startswith("003-seed/001-assets.sql:")
    assert words in str(caught.value)
    assert project.query("SELECT to_regclass('assets')") == [(None,)]
