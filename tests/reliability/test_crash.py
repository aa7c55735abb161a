"""K1-K4: SIGKILL, kills inside non-transactional files, signals, and lost servers.

After every fault the same invariants hold: files are applied in order, each
transactional file is applied with its block or absent without one, a
non-transactional file's recorded progress matches what is in place, the chain
verifies, and a rerun (with --resume where chainops asks for it) completes.
"""

from __future__ import annotations

import random
import re
import signal
import socket
import time

import psycopg
import pytest

from chainops import api
from chainops.config import Settings
from chainops.store import connection as db
from tests.reliability.conftest import (
    Trial,
    backend_pids,
    counter_rows,
    error_line,
    existing_tables,
    finish,
    index_file,
    ledger,
    make_role,
    racy_migrations,
    table_file,
    trials,
    wait_for,
)

FILES = 50
LINT = re.compile(r"○ \S+:\d+:\d+: (warning|error) [a-z-]+ ")  # a finding


def completed(conn: psycopg.Connection) -> int:
    try:
        row = conn.execute(
            "SELECT count(*) FROM blockchain_migrations WHERE status = 'completed'"
        ).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def settings_for(trial: Trial) -> Settings:
    return Settings(
        project_root=trial.root, migrations_dir=trial.migrations, database_url=trial.url
    )


def indexes(trial: Trial) -> dict[str, bool]:
    rows = trial.query(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c"
        " ON c.oid = i.indexrelid WHERE c.relname LIKE 'ix\\_%'"
    )
    return {str(r[0]): bool(r[1]) for r in rows}


def check_state(
    trial: Trial, n: int, non_tx: set[int], why: str
) -> list[tuple[int, int]]:
    """Assert the crash invariants; return the (file, statements done) left partial."""
    rows = {num: (status, done) for num, status, done in ledger(trial)}
    tables, counted, built = (
        existing_tables(trial),
        set(counter_rows(trial)),
        indexes(trial),
    )
    blocks = sorted(num for num, (status, _) in rows.items() if status == "completed")
    assert blocks == list(range(1001, 1001 + len(blocks))), f"{why}: not a prefix"
    partial = []
    for i in range(1, n + 1):
        name, row = f"t_{i:03d}", rows.get(1000 + i)
        if i not in non_tx:
            # Applied with its block, or absent without one: never a "dirty" row.
            assert row is None or row[0] == "completed", f"{why}: {name} row {row}"
            assert (name in tables) == (row is not None), f"{why}: {name} table"
            assert (name in counted) == (row is not None), f"{why}: {name} counter"
            continue
        index = f"ix_{i:03d}"
        if row is None:
            assert name not in tables, f"{why}: {name} stray table"
            assert index not in built, f"{why}: {name} stray index"
        elif row[0] == "completed":
            assert name in tables, f"{why}: {name} block without table"
            assert built.get(index) is True, f"{why}: {name} block without index"
        else:
            done = int(row[1] or 0)
            partial.append((i, done))
            # Statements 1..done are in place; statement done+1 may have run.
            assert done == 0 or name in tables, f"{why}: {name} done {done}"
            assert done >= 2 or index not in built, f"{why}: {name} index early"
            assert done < 3 or built.get(index) is True, f"{why}: {name} index"
    assert len(partial) <= 1, f"{why}: several partial files {partial}"
    report = api.verify(api.target(settings_for(trial)))
    # A file the kill stopped midway is reported as such, with how to resume it.
    kinds = [str(f.kind) for f in report.findings]
    assert kinds == ["partial"] * len(partial), f"{why}: {report.findings}"
    return partial


def recover(trial: Trial, partial: list[tuple[int, int]], why: str) -> None:
    """Rerun migrate; follow its instructions for a partly applied file, as a user."""
    result = trial.run("migrate")
    if result.code == 4 and partial:
        line = error_line(result, why)
        i, done = partial[0]
        path = f"✗ 001-schema/{i:03d}-m{i}.sql"
        if done == 3:
            assert line.startswith(
                f"{path} has all 3 statements in place but the run"
            ), f"{why}: {line}"
        else:
            assert line.startswith(f"{path} was applied only partly"), f"{why}: {line}"
            in_place = f"statements 1-{done} of 3 are in place" if done else "no stat"
            assert in_place in line, f"{why}: {line}"
            assert f"statement {done + 1} " in line, f"{why}: {line}"
        # "check whether it took effect": undo the statement that was running.
        undo = {
            0: f"DROP TABLE IF EXISTS t_{i:03d}",
            2: f"DROP INDEX IF EXISTS ix_{i:03d}",
        }
        if done in undo:
            trial.query(undo[done])
        result = trial.run("migrate", "--resume")
    assert result.code == 0, f"{why}: rerun exit {result.code}\n{result.text}"
    assert "Traceback" not in result.text, why


def check_complete(trial: Trial, n: int, non_tx: set[int], why: str) -> None:
    assert check_state(trial, n, non_tx, why) == []
    assert [r[1] for r in ledger(trial)] == ["completed"] * n, why
    assert len(counter_rows(trial)) == n - len(non_tx), why


def project(trial: Trial, rng: random.Random) -> set[int]:
    non_tx = set(rng.sample(range(2, FILES + 1), 5))
    trial.write(racy_migrations(FILES, rng, non_tx))
    return non_tx


def wait_until_height(trial: Trial, height: int, proc) -> None:
    with psycopg.connect(trial.url, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while completed(conn) < height and proc.poll() is None:
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.005)


def test_k1_sigkill_at_random_moment_leaves_consistent_resumable_ledger(fresh, seed):
    for trial_no in range(trials("k1", ci=10, stress=100)):
        rng = random.Random(f"{seed}-{trial_no}")
        trial = fresh.new()
        non_tx = project(trial, rng)
        proc = trial.spawn("migrate")
        if rng.random() < 0.3:
            moment = f"after {rng.uniform(0, 2.5):.3f} s"
            time.sleep(float(moment.split()[1]))
        else:
            height = rng.randint(0, FILES - 1)
            moment = f"at height {height}"
            wait_until_height(trial, height, proc)
            time.sleep(rng.uniform(0, 0.03))
        proc.kill()
        killed = finish(proc)
        why = f"K1 seed {seed} trial {trial_no} killed {moment} (exit {killed.code})"
        wait_for(lambda t=trial: not backend_pids(t), 30, "the killed session")
        partial = check_state(trial, FILES, non_tx, why)
        recover(trial, partial, why)
        check_complete(trial, FILES, non_tx, why)
        fresh.drop(trial)


def _wait_running(trial: Trial, fragment: str) -> int:
    """The pid of the chainops session running a statement containing `fragment`."""
    rows = wait_for(
        lambda: trial.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s"
            " AND application_name LIKE 'chainops migrate %%' AND query LIKE %s",
            (trial.dbname, f"%{fragment}%"),
        ),
        30,
        f"a statement with {fragment}",
    )
    return int(rows[0][0])  # type: ignore[index]


def test_k2_kill_inside_non_transactional_file_is_named_and_never_rerun(fresh):
    trial = fresh.new()
    trial.write(
        {
            "001-schema/001-counter.sql": (
                "CREATE TABLE applied_counter (name text PRIMARY KEY);\n"
            ),
            "001-schema/002-build.sql": (
                "-- chainops:no-transaction\n"
                "CREATE TABLE built (id int, v int);\n"
                "INSERT INTO applied_counter VALUES ('built');\n"
                "SELECT pg_sleep(CASE WHEN to_regclass('resumed') IS NULL"
                " THEN 30 ELSE 0 END);\n"
                "CREATE INDEX CONCURRENTLY built_v ON built (v);\n"
            ),
        }
    )
    proc = trial.spawn("migrate")
    _wait_running(trial, "pg_sleep(CASE")
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    wait_for(lambda: not backend_pids(trial), 30, "the killed run's session")

    again = trial.run("migrate")
    assert again.code == 4, again.text
    line = error_line(again)
    assert line.startswith("✗ 001-schema/002-build.sql was applied only partly: "), line
    assert "statements 1-2 of 4 are in place" in line, line
    assert "statement 3 was running when the run stopped" in line, line
    assert "migrate --resume" in line, line
    # Refused, not re-run: the counter row would have collided on its key.
    assert counter_rows(trial) == ["built"]
    assert trial.query(
        "SELECT status, statements_done FROM blockchain_migrations"
        " WHERE migration_number = 1002"
    ) == [("running", 2)]
    status = trial.run("migrate.status")
    assert "stopped midway" in status.out, status.text

    trial.query("CREATE TABLE resumed ()")  # statement 3 sleeps no more
    resumed = trial.run("migrate", "--resume")
    assert resumed.code == 0, resumed.text
    assert counter_rows(trial) == ["built"]
    assert indexes_valid(trial, "built_v")
    assert trial.run("migrate.verify").code == 0


def indexes_valid(trial: Trial, name: str) -> bool:
    rows = trial.query(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = %s",
        (name,),
    )
    return rows == [(True,)]


def test_k2_killed_transactional_file_leaves_no_dirty_state(fresh):
    trial = fresh.new()
    trial.write(
        {
            "001-schema/001-slow.sql": (
                "CREATE TABLE slow (id int PRIMARY KEY);\n"
                "INSERT INTO slow VALUES (1);\nSELECT pg_sleep(30);\n"
            )
        }
    )
    proc = trial.spawn("migrate")
    _wait_running(trial, "pg_sleep(30)")
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    wait_for(lambda: not backend_pids(trial), 30, "the killed run's session")
    assert ledger(trial) == []
    assert "slow" not in existing_tables(trial)
    status = trial.run("migrate.status")
    assert "○ #1001 001-slow.sql" in status.out
    assert "0 failed" in status.out
    trial.write(
        {"001-schema/001-slow.sql": "CREATE TABLE slow (id int PRIMARY KEY);\n"}
    )
    # The file was never applied, so it may still change: no block, no false state.
    again = trial.run("migrate")
    assert again.code == 0, again.text
    assert [r[:2] for r in ledger(trial)] == [(1001, "completed")]


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
    ids=["INT", "TERM"],
)
def test_k3_signal_rolls_back_or_finishes_current_file(fresh, seed, signum, code):
    for trial_no in range(trials("k3", ci=1, stress=25)):
        rng = random.Random(f"{seed}-{trial_no}-{signum}")
        trial = fresh.new()
        non_tx = project(trial, rng)
        proc = trial.spawn("migrate")
        height = rng.randint(0, FILES - 3)
        # Once chainops runs: a signal during interpreter start-up just kills it.
        wait_for(lambda t=trial: backend_pids(t), 30, "the run to connect")
        wait_until_height(trial, height, proc)
        time.sleep(rng.uniform(0, 0.03))
        proc.send_signal(signum)
        result = finish(proc)
        why = f"K3 seed {seed} trial {trial_no} {signum.name} at height {height}"
        wait_for(lambda t=trial: not backend_pids(t), 30, "the interrupted session")
        partial = check_state(trial, FILES, non_tx, why)
        rows = {num: status for num, status, _ in ledger(trial)}
        if result.code == 0:  # the signal came after the last file
            assert len(rows) == FILES, f"{why}: exit 0 with {len(rows)} blocks"
        else:
            assert result.code == code, f"{why}: exit {result.code}\n{result.text}"
            line = error_line(result, why)
            assert line.startswith("✗ interrupted"), f"{why}: {line}"
            if "; it was rolled back" in line:
                path = line.split("while applying ")[1].split(";")[0]
                number = 1000 + int(path.split("/")[1][:3])
                assert number not in rows, f"{why}: {line} but {rows.get(number)}"
            if "just after" in line:
                path = line.split("just after ")[1].split(" was applied")[0]
                number = 1000 + int(path.split("/")[1][:3])
                assert rows.get(number) == "completed", f"{why}: {line}"
            if partial and "could not be read back" not in line:
                done = partial[0][1]
                in_place = f"statements 1-{done} are" if done else "nothing is"
                assert f"{in_place} in place" in line, f"{why}: {line}"
        # Applied, waiting or lint lines; the run's summary only if it finished.
        summary = ("Applied ",) if result.code == 0 else ()
        for out_line in result.out.splitlines():
            expected = out_line.startswith(("✓ #", "… waiting", *summary))
            expected = expected or bool(LINT.match(out_line))
            assert expected, f"{why}: {out_line}"
        recover(trial, partial, why)
        check_complete(trial, FILES, non_tx, why)
        fresh.drop(trial)


def test_k4_terminated_backend_rolls_back_file_and_rerun_completes(fresh, seed):
    for trial_no in range(trials("k4", ci=3, stress=50)):
        rng = random.Random(f"{seed}-{trial_no}")
        trial = fresh.new()
        non_tx = project(trial, rng)
        proc = trial.spawn("migrate")
        height = rng.randint(0, FILES - 3)
        wait_until_height(trial, height, proc)
        time.sleep(rng.uniform(0, 0.03))
        trial.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name LIKE 'chainops migrate %%'",
            (trial.dbname,),
        )
        result = finish(proc)
        why = f"K4 seed {seed} trial {trial_no} terminated at height {height}"
        partial = check_state(trial, FILES, non_tx, why)
        if result.code != 0:
            line = error_line(result, why)
            assert result.code in (5, 6), f"{why}: exit {result.code}: {line}"
            assert "connection" in line, f"{why}: {line}"
            assert "migrate again" in line or "--resume" in line, f"{why}: {line}"
        recover(trial, partial, why)
        check_complete(trial, FILES, non_tx, why)
        fresh.drop(trial)


def test_k4_server_restart_mid_migration_rolls_back_and_rerun_completes(
    private_server,
):
    with psycopg.connect(private_server.admin_url(), autocommit=True) as admin:
        make_role(admin, "k4_migrator", "k4-secret")
        admin.execute("DROP DATABASE IF EXISTS k4")
        admin.execute("CREATE DATABASE k4 OWNER k4_migrator")
    url = private_server.tcp_url("k4_migrator", "k4-secret", "k4")
    root = private_server.folder.parent / f"k4-{private_server.port}"
    trial = Trial(root, url, "k4")
    (root / "migrations").mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "k4"\n')
    files = racy_migrations(10, random.Random(4))
    files["001-schema/005-m5.sql"] = table_file(5, 0) + (
        "SELECT pg_sleep(CASE WHEN to_regclass('restarted') IS NULL"
        " THEN 30 ELSE 0 END);\n"
    )
    files["001-schema/008-m8.sql"] = index_file(8, 0)
    trial.write(files)
    try:
        proc = trial.spawn("migrate")
        _wait_running(trial, "pg_sleep(CASE")
        private_server.restart()
        result = finish(proc)
        assert result.code == 6, result.text
        line = error_line(result)
        assert line.startswith("✗ 001-schema/005-m5.sql: "), line
        assert "the connection was lost and the server rolled back" in line, line
        trial.query("CREATE TABLE restarted ()")  # file 5 sleeps no more
        partial = check_state(trial, 10, {8}, "K4 restart")
        assert [r[0] for r in ledger(trial)] == [1001, 1002, 1003, 1004]
        recover(trial, partial, "K4 restart")
        check_complete(trial, 10, {8}, "K4 restart")
    finally:
        import shutil

        shutil.rmtree(root, ignore_errors=True)


def test_k4_connections_use_tcp_keepalives_and_client_checks(private_server):
    url = private_server.tcp_url("postgres", "unused", "postgres")
    with psycopg.connect(private_server.admin_url(), autocommit=True) as admin:
        admin.execute("ALTER ROLE postgres PASSWORD 'unused'")
    conn = db.connect(url)
    try:
        sock = socket.socket(fileno=conn.pgconn.socket)
        try:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 10
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
        finally:
            sock.detach()
        check = conn.execute("SHOW client_connection_check_interval").fetchone()
        assert check == ("1s",)
    finally:
        conn.close()
