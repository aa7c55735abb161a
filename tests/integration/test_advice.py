"""Advice that is right: each situation gets the message that names its real cause."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from chainops import api
from chainops.errors import LockHeld, MigrationFailed, PartiallyApplied, Refused
from chainops.events import DriftFound

GATE = "CREATE TABLE gate (id int);\n"


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{condition} still false"
        time.sleep(0.05)


def test_dry_run_says_another_run_holds_lock_when_a_run_is_in_progress(project):
    project.write({"001-schema/001-gate.sql": GATE})
    api.apply(project.target)
    project.write(
        {
            "001-schema/002-slow.sql": "-- chainops:no-transaction\n"
            "CREATE TABLE a (id int);\nSELECT * FROM gate;\n"
        }
    )
    target = project.target_with(migration_lock_timeout="60s")
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            api.apply(target)
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    with psycopg.connect(project.db_url) as gatekeeper:
        gatekeeper.execute("LOCK TABLE gate IN ACCESS EXCLUSIVE MODE")
        run = threading.Thread(target=migrate)
        run.start()
        try:
            wait_for(
                lambda: project.query(
                    "SELECT 1 FROM blockchain_migrations"
                    " WHERE migration_number = 1002 AND status = 'running'"
                )
            )
            with pytest.raises(LockHeld) as caught:
                api.apply(project.target, dry_run=True)
        finally:
            gatekeeper.rollback()
            run.join(60)

    assert caught.value.exit_code == 5
    assert str(caught.value).startswith("the ledger is locked by pid ")
    assert "run the dry run again once it has finished" in str(caught.value)
    assert errors == []


def test_baseline_refused_when_database_has_no_tables(project):
    project.write({"001-schema/001-users.sql": "CREATE TABLE users (id int);\n"})

    with pytest.raises(Refused) as caught:
        api.baseline(project.target, 1001)

    assert str(caught.value).startswith(
        "the database has no tables, so migrations up to #1001 are not in place; "
        "check that DATABASE_URL names the database to adopt"
    )
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]


def test_baseline_adopts_database_when_it_has_tables(project):
    project.write({"001-schema/001-users.sql": "CREATE TABLE users (id int);\n"})
    project.query("CREATE TABLE users (id int)")

    result = api.baseline(project.target, 1001)

    assert len(result.applied) == 1


HALF = (
    "-- chainops:no-transaction\n"
    "CREATE TABLE orders (id int);\n"
    "CREATE INDEX orders_id ON orders (id);\n"
    "SELECT 1/0;\n"
)


def test_half_applied_file_reported_as_partly_applied_not_drift(project):
    project.write({"001-schema/001-a.sql": GATE})
    api.apply(project.target)  # the head block's fingerprint: before orders
    project.write({"001-schema/002-orders.sql": HALF})
    with pytest.raises(MigrationFailed):
        api.apply(project.target)

    report = api.verify(project.target)

    assert [str(f.kind) for f in report.findings] == ["partial"]
    message = report.findings[0].message
    assert message.startswith(
        "001-schema/002-orders.sql was applied only partly: statements 1-2 of 3 "
        "are in place and statement 3 failed: division by zero"
    )
    assert message.endswith("then run inv migrate --resume to continue at statement 3")
    with pytest.raises(PartiallyApplied):
        api.apply(project.target)

    project.write({"001-schema/002-orders.sql": HALF.replace("1/0", "1")})
    events: list[object] = []
    result = api.apply(project.target, resume=True, on_event=events.append)

    assert [a.file.path for a in result.applied] == ["001-schema/002-orders.sql"]
    assert [e for e in events if isinstance(e, DriftFound)] == []
    assert api.verify(project.target).ok
