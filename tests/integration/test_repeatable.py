"""Repeatable files, `R-<name>.sql` in a category folder: applied after the numbered
files of a run, in path order, and again whenever their content changes; each
application a new block (mode `repeatable`, number -height) holding that version."""

from __future__ import annotations

import pytest

from chainops import api, report
from chainops.errors import MigrationFailed, MigrationFileError
from chainops.model import State
from chainops.source import lockfile

TABLE = "CREATE TABLE holdings (qty numeric);\nINSERT INTO holdings VALUES (2), (3);\n"
R_PATH = "002-functions/R-portfolio-value.sql"


def function(factor: int) -> str:
    return (
        "CREATE OR REPLACE FUNCTION portfolio_value() RETURNS numeric\n"
        f"LANGUAGE sql AS $$ SELECT sum(qty) * {factor} FROM holdings $$;\n"
    )


def value(project) -> object:
    return project.query("SELECT portfolio_value()")[0][0]


def chain(project) -> list[tuple[object, ...]]:
    return project.query(
        "SELECT height, migration_number, path, mode FROM blockchain_migrations"
        " WHERE status = 'completed' ORDER BY height"
    )


def test_apply_applies_repeatable_after_numbered_files_and_again_when_changed(project):
    project.write({R_PATH: function(1), "001-schema/001-holdings.sql": TABLE})

    first = api.apply(project.target)
    again = api.apply(project.target)
    project.write({R_PATH: function(10)})
    third = api.apply(project.target)

    assert [a.file.path for a in first.applied] == [
        "001-schema/001-holdings.sql",
        R_PATH,
    ]
    assert again.applied == ()
    assert [a.file.path for a in third.applied] == [R_PATH]
    assert value(project) == 50
    assert chain(project) == [
        (1, 1001, "001-schema/001-holdings.sql", "transaction"),
        (2, -2, R_PATH, "repeatable"),
        (3, -3, R_PATH, "repeatable"),
    ]
    assert api.verify(project.target).ok
    status = api.status(project.target)
    (entry,) = [e for e in status.entries if e.path == R_PATH]
    assert (entry.state, entry.block.height) == (State.APPLIED, 3)
    lines = report.status_lines(status)
    assert any(line.startswith("✓ R     R-portfolio-value.sql") for line in lines)


def test_status_reports_changed_repeatable_as_pending_and_deleted_one_as_removed(
    project,
):
    project.write({"001-schema/001-holdings.sql": TABLE, R_PATH: function(1)})
    api.apply(project.target)
    project.write({R_PATH: function(2)})

    changed = api.status(project.target)
    (path,) = [project.migrations / R_PATH]
    path.unlink()
    removed = api.status(project.target)

    assert [(e.state, e.path) for e in changed.entries][-1] == (State.PENDING, R_PATH)
    assert "pending (changed since block 2)" in report.status_lines(changed)[-2]
    assert changed.findings == ()
    assert [(e.state, e.path) for e in removed.entries][-1] == (State.REMOVED, R_PATH)
    assert "removed, its objects stay" in report.status_lines(removed)[-2]
    assert removed.findings == ()
    assert api.apply(project.target).applied == ()
    assert value(project) == 5  # the function stays
    json_entry = report.status_document(removed)["migrations"][-1]
    assert (json_entry["state"], json_entry["mode"]) == ("removed", "repeatable")


def test_apply_rolls_back_failed_repeatable_and_records_attempt_by_path(project):
    project.write({"001-schema/001-holdings.sql": TABLE, R_PATH: "SELECT 1/0;\n"})

    with pytest.raises(
        MigrationFailed, match=r"^002-functions/R-portfolio-value\.sql:1"
    ):
        api.apply(project.target)

    (entry,) = [e for e in api.status(project.target).entries if e.path == R_PATH]
    assert entry.state == State.FAILED
    project.write({R_PATH: function(1)})
    api.apply(project.target)
    assert project.query(
        "SELECT status, mode FROM blockchain_migrations WHERE path = %s", (R_PATH,)
    ) == [("completed", "repeatable")]


def test_lock_lists_repeatable_after_numbered_files_of_its_folder(project):
    project.write(
        {
            "002-functions/001-a.sql": "SELECT 1;\n",
            R_PATH: function(1),
            "002-functions/002-b.sql": "SELECT 2;\n",
        }
    )

    api.lock(project.settings)
    lock = lockfile.read_lock(project.migrations)

    assert lock is not None
    assert [e.path for e in lock.entries] == [
        "002-functions/001-a.sql",
        "002-functions/002-b.sql",
        R_PATH,
    ]


def test_apply_refuses_repeatable_that_cannot_run_in_a_transaction(project):
    project.write({"001-schema/001-holdings.sql": TABLE,
                   "001-schema/R-vacuum.sql": "VACUUM holdings;\n"})  # fmt: skip

    with pytest.raises(MigrationFileError, match="a repeatable file is applied in one"):
        api.apply(project.target)
