"""apply, status and verify against a real PostgreSQL, one fresh database per test."""

from __future__ import annotations

import threading

import psycopg
import pytest

from chainops import api, model
from chainops.errors import (
    AppliedFileChanged,
    AppliedFileMissing,
    ConfigError,
    DriftError,
    LockTimeout,
    MigrationFailed,
    MigrationFileError,
    OutOfOrder,
    PartiallyApplied,
)
from chainops.events import Linted, Waiting
from chainops.store import ledger, lock
from chainops.store import session as applier

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"


def tables(project) -> set[str]:
    rows = project.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename NOT LIKE 'blockchain_migrations%'"
    )
    return {str(r[0]) for r in rows}


def blocks(project) -> list[tuple[object, ...]]:
    return project.query(
        "SELECT height, path, status FROM blockchain_migrations"
        " WHERE status = 'completed' ORDER BY height"
    )


def test_apply_applies_examples_then_nothing_when_run_twice(project):
    project.copy_examples()
    first = api.apply(project.target)
    assert [a.file.number for a in first.applied] == [1001, 1002, 1003, 2001, 3001]
    second = api.apply(project.target)
    assert second.applied == ()
    assert second.head == first.head
    assert {"users", "assets", "portfolios", "trades", "suggestions"} <= tables(project)
    assert project.query("SELECT count(*) FROM assets")[0][0] == 6
    assert project.query("SELECT portfolio_value(1)")[0][0] is None


def test_apply_records_a_verifiable_chain_when_files_applied(project):
    project.copy_examples()
    api.apply(project.target)
    rows = project.query(
        "SELECT height, previous_hash, block_hash, applied_by, status, hash_algorithm,"
        " execution_time_ms, chainops_version FROM blockchain_migrations"
        " ORDER BY height"
    )
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0][1] == model.GENESIS
    assert all(rows[i][1] == rows[i - 1][2] for i in range(1, 5))
    assert {r[3] for r in rows} == {"postgres"}
    assert {r[4] for r in rows} == {"completed"}
    history = project.query("SELECT outcome FROM blockchain_migrations_history")
    assert [h[0] for h in history] == ["completed"] * 5
    assert api.verify(project.target).ok


def test_apply_appends_in_application_order_when_schema_file_added_after_seed(project):
    project.write(
        {
            "001-schema/001-a.sql": TABLE_A,
            "003-seed-data/001-s.sql": "INSERT INTO a VALUES (1);",
        }
    )
    api.apply(project.target)
    project.write({"001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)
    assert [r[1] for r in blocks(project)] == [
        "001-schema/001-a.sql",
        "003-seed-data/001-s.sql",
        "001-schema/002-b.sql",
    ]
    assert api.verify(project.target).ok


@pytest.mark.parametrize("limit", [1 << 20, 10], ids=["one-message", "own-message"])
def test_apply_places_failure_and_records_block_whichever_way_file_is_sent(
    project, monkeypatch, limit
):
    # Past the limit a file travels alone between BEGIN and the block's COMMIT.
    monkeypatch.setattr(applier, "_ONE_MESSAGE_LIMIT", limit)
    seed = "CREATE TABLE s (n int);\n" + "INSERT INTO s VALUES (1);\n" * 30
    project.write({"001-schema/001-s.sql": seed + "INSERT INTO s VALUES (nosuch);\n"})

    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)

    assert (caught.value.line, caught.value.column) == (32, 23)
    assert tables(project) == set()
    project.write({"001-schema/001-s.sql": seed})
    [applied] = api.apply(project.target).applied
    assert project.query("SELECT count(*) FROM s") == [(30,)]
    assert applied.block.height == 1
    assert project.query(
        "SELECT outcome FROM blockchain_migrations_history ORDER BY id"
    ) == [("failed",), ("completed",)]
    assert api.verify(project.target).ok


def test_apply_creates_nothing_when_no_migrations(project):
    result = api.apply(project.target)
    assert result.applied == ()
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]


def test_apply_rolls_back_and_records_failure_when_sql_fails(project):
    project.write(
        {
            "001-schema/001-a.sql": TABLE_A,
            "001-schema/002-bad.sql": "CREATE TABLE c (id int);\n"
            "INSERT INTO c VALUES (1);\nSELECT nosuch FROM c;\n",
            "001-schema/003-b.sql": TABLE_B,
        }
    )
    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)
    err = caught.value
    assert err.path == "001-schema/002-bad.sql"
    assert (err.line, err.column) == (3, 8)
    assert err.sqlstate == "42703"
    assert "001-schema/002-bad.sql:3:8" in str(err)
    assert "\n" not in str(err)
    assert tables(project) == {
        "a"
    }  # c was rolled back with the failing file; b never ran
    failed = project.query(
        "SELECT status, error_message, height FROM blockchain_migrations"
        " WHERE migration_number = 1002"
    )
    assert failed[0][0] == "failed"
    assert "nosuch" in str(failed[0][1])
    assert failed[0][2] is None
    assert api.verify(project.target).ok

    project.write({"001-schema/002-bad.sql": "CREATE TABLE c (id int);\n"})
    api.apply(project.target)
    assert [r[1] for r in blocks(project)][-2:] == [
        "001-schema/002-bad.sql",
        "001-schema/003-b.sql",
    ]
    outcomes = project.query(
        "SELECT migration_number, outcome FROM blockchain_migrations_history"
        " ORDER BY id"
    )
    assert outcomes == [
        (1001, "completed"),
        (1002, "failed"),
        (1002, "completed"),
        (1003, "completed"),
    ]


def test_apply_reports_runtime_error_without_position_when_server_gives_none(project):
    project.write({"001-schema/001-a.sql": TABLE_A + TABLE_A})
    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)
    assert caught.value.sqlstate == "42P07"
    assert 'relation "a" already exists' in str(caught.value)
    assert tables(project) == set()


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        ("edit", AppliedFileChanged),
        ("delete", AppliedFileMissing),
        ("rename", AppliedFileMissing),
    ],
)
def test_apply_halts_with_nothing_applied_when_applied_file_touched(
    project, edit, error
):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    path = project.migrations / "001-schema/001-a.sql"
    if edit == "edit":
        path.write_text(
            TABLE_A.replace("\n", " ") + "\n"
        )  # joined lines count as an edit
    elif edit == "delete":
        path.unlink()
    else:
        path.rename(path.with_name("001-renamed.sql"))
    project.write({"001-schema/002-b.sql": TABLE_B})
    with pytest.raises(error) as caught:
        api.apply(project.target)
    assert "nothing was applied" in str(caught.value)
    assert "b" not in tables(project)
    report = api.verify(project.target)
    assert not report.ok


def test_verify_passes_when_applied_file_checked_out_with_crlf_and_bom(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (\n  id int\n);\n"})
    api.apply(project.target)
    project.write(
        {"001-schema/001-a.sql": b"\xef\xbb\xbfCREATE TABLE a (\r\n  id int\r\n);\r\n"}
    )
    assert api.verify(project.target).ok
    assert api.apply(project.target).applied == ()


TAMPER = {
    "altered hash": (
        "UPDATE blockchain_migrations SET hash = repeat('a', 64) WHERE height = 2"
    ),
    "altered time": (
        "UPDATE blockchain_migrations"
        " SET executed_at = executed_at + interval '1 s' WHERE height = 1"
    ),
    "deleted middle row": "DELETE FROM blockchain_migrations WHERE height = 2",
    "forged row": (
        "INSERT INTO blockchain_migrations (migration_number, filename, path, hash,"
        " hash_algorithm, executed_at, status, height, previous_hash, block_hash, mode,"
        " applied_by, client_host, chainops_version) SELECT 1009, '009-x.sql',"
        " '001-schema/009-x.sql', repeat('b', 64), 'sha256-lf', now(), 'completed', 4,"
        " block_hash, repeat('c', 64), 'transaction',"
        " 'mallory', 'h', '0.1.0' FROM blockchain_migrations WHERE height = 3"
    ),
    "reordered rows": (
        "UPDATE blockchain_migrations SET height = CASE height WHEN 2 THEN 3 ELSE 2 END"
        " WHERE height IN (2, 3)"
    ),
}


@pytest.mark.parametrize("mutation", TAMPER.values(), ids=TAMPER.keys())
def test_verify_fails_and_apply_halts_when_ledger_tampered(project, mutation):
    project.write(
        {f"001-schema/00{i}-t{i}.sql": f"CREATE TABLE t{i} ();\n" for i in (1, 2, 3)}
    )
    api.apply(project.target)
    project.query(
        "ALTER TABLE blockchain_migrations"
        " DROP CONSTRAINT IF EXISTS blockchain_migrations_height_key"
    )
    project.query(mutation)
    report = api.verify(project.target)
    assert not report.ok
    assert any(f.kind in ("tampered", "changed", "missing") for f in report.findings)
    project.write({"001-schema/004-t4.sql": "CREATE TABLE t4 ();\n"})
    with pytest.raises(DriftError):
        api.apply(project.target)
    assert "t4" not in tables(project)


def test_verify_lists_every_problem_when_several(project):
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)
    (project.migrations / "001-schema/001-a.sql").write_text("-- edited\n" + TABLE_A)
    (project.migrations / "001-schema/002-b.sql").unlink()
    report = api.verify(project.target)
    assert sorted(f.kind for f in report.findings) == ["changed", "missing"]
    with pytest.raises(AppliedFileChanged) as caught:
        api.apply(project.target)
    assert "and 1 more problem" in str(caught.value)
    assert len(caught.value.findings) == 2


def test_apply_refuses_out_of_order_file_unless_allowed(project):
    project.write(
        {"001-schema/001-a.sql": TABLE_A, "001-schema/003-c.sql": "CREATE TABLE c ();"}
    )
    api.apply(project.target)
    project.write({"001-schema/002-b.sql": TABLE_B})
    with pytest.raises(OutOfOrder) as caught:
        api.apply(project.target)
    assert "001-schema/002-b.sql" in str(caught.value)
    assert "001-schema/003-c.sql" in str(caught.value)
    assert "b" not in tables(project)
    result = api.apply(project.target, allow_out_of_order=True)
    assert [a.file.path for a in result.applied] == ["001-schema/002-b.sql"]
    assert [r[1] for r in blocks(project)][-1] == "001-schema/002-b.sql"
    assert api.verify(project.target).ok


def test_apply_refuses_bad_file_before_touching_database(project):
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/2-b.sql": TABLE_B})
    with pytest.raises(MigrationFileError) as caught:
        api.apply(project.target)
    assert "001-schema/2-b.sql" in str(caught.value)
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]


def test_apply_refuses_psql_meta_command_before_applying(project):
    project.write({"001-schema/001-a.sql": "\\i other.sql\n" + TABLE_A})
    with pytest.raises(MigrationFileError) as caught:
        api.apply(project.target)
    assert "001-schema/001-a.sql" in str(caught.value)
    assert tables(project) == set()


def test_apply_runs_concurrent_index_outside_transaction_when_file_needs_it(project):
    project.write(
        {
            "001-schema/001-a.sql": TABLE_A
            + "INSERT INTO a SELECT generate_series(1, 1000);\n",
            "001-schema/002-idx.sql": "-- builds without blocking writes\n"
            "CREATE INDEX CONCURRENTLY a_idx ON a (id);\n",
        }
    )
    result = api.apply(project.target)
    assert [a.block.mode for a in result.applied] == ["transaction", "no-transaction"]
    valid = project.query(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'a_idx'::regclass"
    )
    assert valid == [(True,)]
    assert api.verify(project.target).ok


def test_apply_honours_no_transaction_directive(project):
    project.write(
        {"001-schema/001-a.sql": "-- chainops:no-transaction\n" + TABLE_A + TABLE_B}
    )
    result = api.apply(project.target)
    assert result.applied[0].block.mode == "no-transaction"
    assert tables(project) == {"a", "b"}


def test_apply_leaves_what_psql_would_when_file_manages_its_own_transaction(project):
    project.write(
        {
            "001-schema/001-a.sql": "BEGIN;\n"
            + TABLE_A
            + "INSERT INTO a VALUES (1);\nCOMMIT;\n"
            "BEGIN;\nINSERT INTO a VALUES (2);\nROLLBACK;\n" + TABLE_B,
        }
    )
    api.apply(project.target)
    assert project.query("SELECT id FROM a") == [(1,)]
    assert tables(project) == {"a", "b"}
    assert api.verify(project.target).ok


def test_apply_refuses_to_rerun_partial_file_then_resumes(project):
    project.write(
        {
            "001-schema/001-a.sql": "-- chainops:no-transaction\n"
            + TABLE_A
            + "INSERT INTO a VALUES (1);\nINSERT INTO missing VALUES (1);\n"
            + TABLE_B,
        }
    )
    with pytest.raises(MigrationFailed) as caught:
        api.apply(project.target)
    assert caught.value.line == 4
    assert "statements 1-2 are in place" in str(caught.value)
    assert tables(project) == {"a"}
    with pytest.raises(PartiallyApplied) as again:
        api.apply(project.target)
    assert "statements 1-2 of 4 are in place" in str(again.value)
    assert "--resume" in str(again.value)
    project.query("CREATE TABLE missing (id int)")
    result = api.apply(project.target, resume=True)
    assert result.applied[0].file.path == "001-schema/001-a.sql"
    assert project.query("SELECT count(*) FROM a") == [
        (1,)
    ]  # statement 2 did not run twice
    assert tables(project) == {"a", "b", "missing"}
    assert api.verify(project.target).ok


def test_apply_keeps_ledger_in_configured_schema(project):
    settings = project.with_settings(ledger_schema='Audit "Trail"')
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(api.target(settings))
    rows = project.query('SELECT count(*) FROM "Audit ""Trail""".blockchain_migrations')
    assert rows == [(1,)]
    assert api.verify(api.target(settings)).ok


def test_apply_waits_then_times_out_when_another_run_holds_lock(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    with psycopg.connect(
        project.db_url, autocommit=True, application_name="other migrator"
    ) as holder:
        key = lock.lock_key(holder.info.dbname, "public", ledger.TABLE)
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        events = []
        with pytest.raises(LockTimeout) as caught:
            api.apply(project.target_with(lock_timeout=0.5), on_event=events.append)
        assert "other migrator" in str(caught.value)
        waiting = [e for e in events if not isinstance(e, Linted)]  # lint comes first
        assert isinstance(waiting[0], Waiting)
        assert waiting[0].holder is not None
        assert waiting[0].holder.application_name == "other migrator"
    assert tables(project) == set()


def test_apply_proceeds_when_lock_released_while_waiting(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    with psycopg.connect(project.db_url, autocommit=True) as holder:
        key = lock.lock_key(holder.info.dbname, "public", ledger.TABLE)
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        release = threading.Timer(
            0.3, lambda: holder.execute("SELECT pg_advisory_unlock_all()")
        )
        release.start()
        result = api.apply(project.target)
        release.join()
    assert len(result.applied) == 1


def test_status_lists_applied_pending_and_failed(project):
    project.write(
        {"001-schema/001-a.sql": TABLE_A, "001-schema/002-bad.sql": "SELEC 1;"}
    )
    # Plain SQL goes to the server unparsed, which places the syntax error.
    with pytest.raises(
        MigrationFailed, match=r"^001-schema/002-bad.sql:1:1: syntax error at or near"
    ):
        api.apply(project.target)
    project.write({"001-schema/002-bad.sql": "SELECT 1/0;"})
    with pytest.raises(MigrationFailed):
        api.apply(project.target)
    project.write({"001-schema/003-c.sql": "CREATE TABLE c ();"})
    report = api.status(project.target)
    assert [(e.number, e.state) for e in report.entries] == [
        (1001, "applied"),
        (1002, "failed"),
        (1003, "pending"),
    ]
    assert report.height == 1


def test_status_reads_empty_database_as_all_pending(project):
    project.copy_examples()
    report = api.status(project.target)
    assert {e.state for e in report.entries} == {"pending"}
    assert report.head == model.GENESIS


def test_check_raises_when_pending_and_passes_when_applied(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    with pytest.raises(DriftError):
        api.check(project.target)
    api.apply(project.target)
    api.check(project.target)


def test_check_raises_naming_file_when_applied_file_edited(project):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.write({"001-schema/001-a.sql": TABLE_A + "-- edited\n"})

    with pytest.raises(AppliedFileChanged) as caught:
        api.check(project.target)

    assert str(caught.value).startswith("001-schema/001-a.sql was edited")


def test_apply_refuses_production_without_database_url(project):
    settings = project.with_settings(database_url=None, environment="production")
    project.write({"001-schema/001-a.sql": TABLE_A})
    with pytest.raises(ConfigError) as caught:
        api.apply(api.target(settings))
    assert "DATABASE_URL" in str(caught.value)


def test_verify_detects_deleted_newest_block_via_history(project):
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)
    project.query("DELETE FROM blockchain_migrations WHERE height = 2")
    report = api.verify(project.target)
    assert [f.kind for f in report.findings] == ["tampered"]
    assert "history" in report.findings[0].message


def test_verify_cannot_see_truncated_tail_when_history_also_deleted(project):
    """The documented limit: a tail removed from both tables leaves a valid chain."""
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)
    project.query("DELETE FROM blockchain_migrations WHERE height = 2")
    project.query(
        "DELETE FROM blockchain_migrations_history WHERE migration_number = 1002"
    )
    assert api.verify(project.target).ok
    with pytest.raises(
        MigrationFailed
    ) as caught:  # the re-run of the file fails loudly
        api.apply(project.target)
    assert caught.value.sqlstate == "42P07"


def test_apply_refuses_unknown_directive_in_any_case_with_exit_3(project):
    project.write({"001-schema/001-a.sql": "-- CHAINOPS:bogus\n" + TABLE_A})

    with pytest.raises(MigrationFileError, match=r"^001-schema/001-a\.sql:1: unknown "):
        api.apply(project.target)

    assert MigrationFileError.exit_code == 3
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]


def test_apply_honours_statement_timeout_directive_in_any_case(project):
    project.write(
        {
            "001-schema/001-slow.sql": "-- CHAINOPS:statement-timeout=1ms\n"
            "SELECT pg_sleep(0.2);\n"
        }
    )

    with pytest.raises(MigrationFailed, match="statement timeout"):
        api.apply(project.target)

    assert project.query("SELECT status FROM blockchain_migrations") == [("failed",)]
