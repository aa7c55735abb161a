"""C1-C3: many migrators at once, a waiting migrator, and the index-build deadlock."""

from __future__ import annotations

import random
import re
import time

from tests.reliability.conftest import (
    advisory_locks,
    backend_pids,
    counter_rows,
    error_line,
    existing_tables,
    finish,
    ledger,
    racy_migrations,
    trials,
    wait_for,
)

MIGRATORS = 16
FILES = 50


def test_c1_sixteen_migrators_apply_each_migration_exactly_once(fresh, seed):
    for trial_no in range(trials("c1", ci=5, stress=200)):
        rng = random.Random(f"{seed}-{trial_no}")
        why = f"C1 seed {seed} trial {trial_no}"
        trial = fresh.new()
        trial.write(racy_migrations(FILES, rng, non_tx={rng.randint(2, FILES)}))
        procs = [trial.spawn("migrate") for _ in range(MIGRATORS)]
        results = [finish(p, timeout=120) for p in procs]
        for r in results:
            assert r.code == 0, f"{why}: exit {r.code}\n{r.text}"
            assert "Traceback" not in r.text, why
        applied = sum(len(re.findall(r"^✓ #\d+ ", r.out, re.M)) for r in results)
        assert applied == FILES, f"{why}: {applied} applications reported"
        rows = ledger(trial)
        assert [r[0] for r in rows] == [1000 + i for i in range(1, FILES + 1)], why
        assert {r[1] for r in rows} == {"completed"}, why
        counted = counter_rows(trial)
        assert len(counted) == len(set(counted)) == FILES - 1, why  # one file is CIC
        assert {f"t_{i:03d}" for i in range(1, FILES + 1)} <= existing_tables(trial)
        verify = trial.run("migrate.verify")
        assert verify.code == 0, f"{why}\n{verify.text}"
        assert advisory_locks(trial) == 0, why
        fresh.drop(trial)


def test_c2_second_migrator_names_holder_and_times_out_with_exit_5(fresh):
    trial = fresh.new()
    trial.write(
        {
            "001-schema/001-slow.sql": "CREATE TABLE slow ();\nSELECT pg_sleep(30);\n",
        }
    )
    first = trial.spawn("migrate", tool="chainops")
    holder = wait_for(lambda: backend_pids(trial), 30, "the first migrator")
    # The holder must be running the long migration, i.e. holding the lock.
    wait_for(
        lambda: trial.query(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND query LIKE %s",
            (holder[0], "%pg_sleep(30)%"),
        ),
        30,
        "the long migration to start",
    )
    second = trial.spawn("migrate", "--lock-timeout", "4", tool="inv")
    try:
        waiter = wait_for(
            lambda: [p for p in backend_pids(trial) if p != holder[0]],
            30,
            "the second migrator to connect",
        )
        connected = time.monotonic()
        line = second.stdout.readline()
        seen = time.monotonic()
        assert f"waiting for the ledger lock held by pid {holder[0]}" in line, line
        assert "(chainops migrate " in line, line
        assert seen - connected < 2, f"the holder was named after {seen - connected} s"
        result = finish(second, timeout=30)
        assert result.code == 5, result.text
        text = error_line(result)
        assert text.startswith(f"✗ the ledger is locked by pid {holder[0]} ("), text
        assert "gave up after 4 s" in text, text
        assert waiter, "second migrator never connected"
    finally:
        first.kill()
        finish(first)
    # The killed holder's transaction rolled back: nothing applied, nothing locked.
    assert ledger(trial) == []
    assert "slow" not in existing_tables(trial)
    wait_for(lambda: advisory_locks(trial) == 0, 10, "the holder's lock to go")


ROWS = 200_000
BUILDERS = 8


def test_c3_migrators_never_deadlock_with_create_index_concurrently(fresh, seed):
    for trial_no in range(trials("c3", ci=3, stress=50)):
        why = f"C3 seed {seed} trial {trial_no}"
        rng = random.Random(f"{seed}-{trial_no}")
        trial = fresh.new()
        trial.write(
            {
                "001-schema/001-big.sql": (
                    "CREATE TABLE big (id int PRIMARY KEY, v int);\n"
                    "INSERT INTO big SELECT g, g % 1000"
                    f" FROM generate_series(1, {ROWS}) g;\n"
                ),
            }
        )
        assert trial.run("migrate", tool="chainops").code == 0, why
        trial.write(
            {
                "001-schema/002-index.sql": (
                    "CREATE INDEX CONCURRENTLY big_v ON big (v);\n"
                ),
                "001-schema/003-after.sql": "CREATE TABLE after_index ();\n",
            }
        )
        procs = []
        for _ in range(BUILDERS):
            procs.append(trial.spawn("migrate"))
            time.sleep(rng.uniform(0, 0.05))
        results = [finish(p, timeout=120) for p in procs]
        for r in results:
            assert "deadlock detected" not in r.text, f"{why}\n{r.text}"
            assert r.code == 0, f"{why}: exit {r.code}\n{r.text}"
        valid = trial.query(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c"
            " ON c.oid = i.indexrelid WHERE c.relname = 'big_v'"
        )
        assert valid == [(True,)], why
        assert [r[:2] for r in ledger(trial)] == [
            (1001, "completed"),
            (1002, "completed"),
            (1003, "completed"),
        ], why
        assert advisory_locks(trial) == 0, why
        fresh.drop(trial)
