"""A server that stops dead mid-run (pg_ctl stop -m immediate: no checkpoint, no
flush) while every file but a run's last commits without waiting for its WAL flush.

The promise: the crash can lose only a suffix of whole migrations, each with its
block; what survives verifies, and the next run applies the rest.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from chainops.store import server

APPLIED = 40  # files committed before the run blocks


@pytest.fixture
def own_server() -> Iterator[Path]:
    """A server of the test's own, which it may crash (not the shared one)."""
    root = Path(tempfile.mkdtemp(prefix="chainops-crash-"))
    try:
        yield root
    finally:
        server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def query(url: str, text: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(text)
        return cursor.fetchall() if cursor.description else []


def crash(root: Path) -> None:
    """What pg_ctl stop -m immediate does: SIGQUIT to the postmaster."""
    pid = int((root / server.DATA_DIR / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGQUIT)
    deadline = time.monotonic() + 30
    while server.running_conninfo(root) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def chainops(project: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chainops", *args],
        cwd=project, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DATABASE_URL": url},
    )  # fmt: skip


def test_a_crash_mid_run_loses_at_most_a_suffix_of_whole_migrations(
    own_server: Path, tmp_path: Path
) -> None:
    url = server.ensure_running(own_server, dbname="crash").conninfo
    # Keep async commits in the server's WAL buffers as long as it allows.
    query(url, "ALTER SYSTEM SET wal_writer_delay = '10s'")
    query(url, "SELECT pg_reload_conf()")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    folder = tmp_path / "migrations" / "001-schema"
    folder.mkdir(parents=True)
    for i in range(1, APPLIED + 1):
        (folder / f"{i:03d}-t{i}.sql").write_text(
            f"CREATE TABLE t{i} (id int PRIMARY KEY);\nINSERT INTO t{i} VALUES ({i});\n"
        )
    (folder / f"{APPLIED + 1:03d}-wait.sql").write_text("SELECT pg_sleep(60);\n")
    (folder / f"{APPLIED + 2:03d}-last.sql").write_text("CREATE TABLE last (id int);\n")

    run = subprocess.Popen(
        [sys.executable, "-m", "chainops", "migrate"], cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "DATABASE_URL": url},
    )  # fmt: skip
    deadline = time.monotonic() + 60
    sleeping: list[tuple[object, ...]] = []
    while not sleeping and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
        sleeping = query(
            url, "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%'"
            " AND pid <> pg_backend_pid()",
        )  # fmt: skip
    assert sleeping, run.communicate()
    crash(own_server)
    _, err = run.communicate(timeout=60)
    assert run.returncode != 0
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err

    server.ensure_running(own_server, dbname="crash")  # crash recovery
    kept = query(url, "SELECT height, path FROM blockchain_migrations ORDER BY height")
    survived = len(kept)
    assert survived <= APPLIED
    assert [str(path) for _, path in kept] == [
        f"001-schema/{i:03d}-t{i}.sql" for i in range(1, survived + 1)
    ]
    listed = "SELECT tablename FROM pg_tables WHERE tablename LIKE 't%'"
    tables = {str(name) for (name,) in query(url, listed)}
    # Each file's effect survived exactly when its block did.
    assert tables == {f"t{i}" for i in range(1, survived + 1)}
    verified = chainops(tmp_path, url, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    (folder / f"{APPLIED + 1:03d}-wait.sql").write_text("SELECT 1;\n")  # not applied
    resumed = chainops(tmp_path, url, "migrate")
    assert resumed.returncode == 0, resumed.stderr
    assert query(url, "SELECT count(*) FROM blockchain_migrations") == [(APPLIED + 2,)]
    assert chainops(tmp_path, url, "verify").returncode == 0
    print(f"{APPLIED - survived} of {APPLIED} committed migrations lost in the crash")
