"""Fleet mode on real servers: the system (or test) server and two more embedded
PostgreSQL servers on free ports, dozens of databases, each failure kept to its
target, a resume that finishes only what was left, and tenants by schema."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from chainops import api, cli
from chainops.fleet.run import FleetOptions, FleetRun
from chainops.fleet.targets import FleetTarget
from chainops.store import server
from chainops.store.connection import create_database, drop_database
from tests.fixtures.postgres import Server

FILES = {
    "001-schema/001-a.sql": "CREATE TABLE a (id int PRIMARY KEY);\n",
    "001-schema/002-b.sql": "CREATE TABLE b (id int PRIMARY KEY);\n",
}
LATER = {
    "001-schema/003-c.sql": "CREATE TABLE c (id int PRIMARY KEY);\n"
    "-- chainops:lint-ignore=constraint-not-valid a holds a handful of rows\n"
    "ALTER TABLE a ADD CONSTRAINT a_positive CHECK (id > 0);\n"
}
PER_SERVER = 8
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nowhere"


@pytest.fixture(scope="module")
def servers(pg_server: Server) -> Iterator[list[str]]:
    """Admin URLs of three servers: the tests' own and two embedded ones.

    Their folders are not under tmp_path: pytest sets its basetemp back to 0700
    whenever another session starts, and under root the servers run as the
    package's own user (as in test_server.py)."""
    roots = [Path(tempfile.mkdtemp(prefix="chainops-fleet-")) for _ in (1, 2)]
    try:
        extra = [server.ensure_running(r, dbname="postgres").conninfo for r in roots]
        yield [pg_server.admin_url, *extra]
    finally:
        for root in roots:
            server.stop(root)
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def databases(servers: list[str]) -> Iterator[list[str]]:
    """PER_SERVER fresh databases on each server, as URLs."""
    made: list[tuple[str, str]] = []
    for n, admin_url in enumerate(servers):
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for i in range(PER_SERVER):
                name = f"chainops_fleet_{n}_{i}"
                drop_database(admin, name)
                create_database(admin, name)
                made.append((admin_url, name))
    try:
        yield [psycopg.conninfo.make_conninfo(url, dbname=name) for url, name in made]
    finally:
        for admin_url, name in made:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                drop_database(admin, name)


def query(url: str, text: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(text.encode())
        return cur.fetchall() if cur.description else []


class Peak:
    """The most connections this process held at once to each server, sampled
    every millisecond from its own open sockets (their peers: a TCP address or a
    Unix socket path). Counted at the client, so a server backend still exiting
    after its client closed is not mistaken for a connection."""

    def __init__(self) -> None:
        self.peak: Counter[str] = Counter()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-sampler")

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.is_set():
            now = Counter(
                peer for peer in map(_peer, os.listdir("/proc/self/fd")) if peer
            )
            for peer, count in now.items():
                self.peak[peer] = max(self.peak[peer], count)
            time.sleep(0.001)


def _peer(fd: str) -> str | None:
    """Where the socket on descriptor `fd` is connected to, if it is one."""
    try:
        if not os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
            return None
        with socket.socket(fileno=os.dup(int(fd))) as sock:
            peer = sock.getpeername()
    except OSError:  # closed meanwhile, or not connected
        return None
    if isinstance(peer, tuple):
        return f"{peer[0]}:{peer[1]}"
    return os.fsdecode(peer) or None


def test_fleet_migrates_three_servers_keeping_each_failure_to_its_target(
    project, servers, databases, capsys, monkeypatch
):
    monkeypatch.chdir(project.root)
    project.write(FILES)
    settings = project.with_settings(environment="production")
    api.lock(settings)
    failing, drifted, tampered = databases[1], databases[PER_SERVER + 2], databases[-1]
    for url in (failing, drifted, tampered):
        api.apply(api.target(replace(settings, database_url=url)), backup=False)
    query(failing, "INSERT INTO a VALUES (-1)")  # data: its 003 will fail
    query(drifted, "ALTER TABLE a ADD COLUMN note text")
    query(tampered, "UPDATE blockchain_migrations SET applied_by = 'mallory'")
    project.write(LATER)
    api.lock(settings)
    targets_file = project.root / "fleet.toml"
    targets_file.write_text(
        "".join(
            f'[[target]]\nname = "db{i}"\nurl = "{url}"\n'
            for i, url in enumerate([*databases, UNREACHABLE])
        )
    )
    argv = ["fleet", "migrate", "--targets", str(targets_file), "--json",
            "--parallel", "6", "--per-server", "2", "--max-failures", "0.5",
            "--no-backup", "--env", "production",
            "--migrations-dir", str(project.migrations)]  # fmt: skip

    with Peak() as peak:
        code = cli.main(argv)
    document = json.loads(capsys.readouterr().out)

    assert code == 9
    outcome = {t["name"]: (t["status"], t["kind"]) for t in document["targets"]}
    names = {url: f"db{i}" for i, url in enumerate([*databases, UNREACHABLE])}
    assert outcome.pop(names[failing]) == ("failed", "migration")
    assert outcome.pop(names[drifted]) == ("failed", "drift")
    assert outcome.pop(names[tampered]) == ("failed", "tampered")
    assert outcome.pop(names[UNREACHABLE]) == ("failed", "unreachable")
    assert set(outcome.values()) == {("migrated", "")}  # the other 20
    assert len(peak.peak) == 3, peak.peak  # the three servers
    assert max(peak.peak.values()) <= 2, peak.peak  # --per-server 2
    assert query(drifted, "SELECT to_regclass('c')") == [(None,)]  # nothing applied

    query(failing, "DELETE FROM a")
    code = cli.main([*argv[:-2], "--resume", "last", *argv[-2:]])
    document = json.loads(capsys.readouterr().out)

    assert code == 9  # drift, tampering and the dead server remain
    after = {t["name"]: t for t in document["targets"]}
    assert after[names[failing]]["status"] == "migrated", after[names[failing]]
    assert after[names[failing]]["applied"] == 1
    assert after[names[databases[0]]]["applied"] == 3  # from the first run, kept
    heights = {query(url, "SELECT max(height) FROM blockchain_migrations")[0][0]
               for url in databases if url not in (drifted, tampered)}  # fmt: skip
    assert heights == {3}  # each finished target ran each file once


def test_fleet_stops_starting_targets_once_too_many_failed(project):
    project.write(FILES)
    targets = [FleetTarget(f"dead{i}", UNREACHABLE) for i in range(4)]
    targets.append(FleetTarget("alive", project.db_url))
    files = api.load_files(project.settings)
    options = FleetOptions(parallel=1, max_failures=0.2)

    outcomes = FleetRun(project.settings, targets, files, options, print).run()

    # 0.2 of 5 targets: the second failure is one too many.
    assert [o.status for o in outcomes] == [*["failed"] * 2, *["not started"] * 3]
    assert query(project.db_url, "SELECT to_regclass('a')") == [(None,)]


def test_fleet_migrates_200_tenant_schemas_each_with_its_own_ledger(
    project, database, capsys, monkeypatch
):
    monkeypatch.chdir(project.root)
    project.write(FILES)
    targets_file = project.root / "fleet.toml"
    targets_file.write_text(
        f'[[tenants]]\nname = "app"\nurl = "{database.url}"\n'
        "schemas_query = \"SELECT 'tenant_' || g FROM generate_series(1, 200) g\"\n"
    )
    common = ["--targets", str(targets_file), "--migrations-dir",
              str(project.migrations)]  # fmt: skip

    assert cli.main(["fleet", "migrate", "--parallel", "4", *common]) == 0
    project.write(LATER)
    assert cli.main(["fleet", "migrate", "--parallel", "4", *common]) == 0
    assert cli.main(["fleet", "verify", *common]) == 0  # no tenant drifts another
    out = capsys.readouterr().out

    assert "200 of 200 targets verified; all at 3 migrations" in out
    ledgers = query(
        database.url,
        "SELECT count(*) FROM pg_tables WHERE tablename = 'blockchain_migrations'"
        " AND schemaname LIKE 'tenant_%'",
    )
    assert ledgers == [(200,)]
    tables = query(
        database.url,
        "SELECT count(*) FROM pg_tables WHERE tablename IN ('a', 'b', 'c')"
        " AND schemaname LIKE 'tenant_%'",
    )
    assert tables == [(600,)]
    assert query(database.url, "SELECT to_regclass('public.a')") == [(None,)]
    assert query(database.url, "SELECT count(*) FROM tenant_7.blockchain_migrations")
    lines = Path(project.root / ".chainops" / "fleet-runs").glob("*.json")
    assert len(list(lines)) == 2


def test_fleet_status_marks_a_tenant_whose_own_schema_was_changed_by_hand(
    project, database, capsys, monkeypatch
):
    monkeypatch.chdir(project.root)
    project.write(FILES)
    targets_file = project.root / "fleet.toml"
    targets_file.write_text(
        f'[[tenants]]\nurl = "{database.url}"\nschemas = ["t1", "t2"]\n'
    )
    common = ["--targets", str(targets_file), "--migrations-dir",
              str(project.migrations)]  # fmt: skip
    assert cli.main(["fleet", "migrate", *common]) == 0
    # A tenant's ledger records its scope: a single-database verify agrees.
    single = ["verify", "--schema", "t1", "--database-url", database.url,
              "--migrations-dir", str(project.migrations)]  # fmt: skip
    assert cli.main(single) == 0
    query(database.url, "ALTER TABLE t2.a ADD COLUMN note text")
    capsys.readouterr()

    code = cli.main(["fleet", "verify", "--json", *common])

    states = {t["name"]: t for t in json.loads(capsys.readouterr().out)["targets"]}
    assert code == 9
    assert states["t1"]["ok"] is True
    assert states["t2"]["ok"] is False
    assert "t2.a" in states["t2"]["problem"]


def test_fleet_never_prints_a_password_from_the_environment(
    project, capsys, monkeypatch
):
    monkeypatch.chdir(project.root)
    project.write(FILES)
    monkeypatch.setenv("DEAD_URL", "postgresql://app:hunter2@127.0.0.1:1/x")
    targets_file = project.root / "fleet.toml"
    targets_file.write_text('[[target]]\nname = "dead"\nurl_env = "DEAD_URL"\n')

    code = cli.main(["fleet", "migrate", "--targets", str(targets_file),
                     "--migrations-dir", str(project.migrations)])  # fmt: skip

    out, err = capsys.readouterr()
    assert code == 9
    assert "hunter2" not in out + err
    assert "cannot connect to 127.0.0.1:1/x" in out
    assert "check the target's URL" in out
    saved = next((project.root / ".chainops" / "fleet-runs").glob("*.json"))
    assert "hunter2" not in saved.read_text()


def test_fleet_reads_its_targets_from_a_catalog_table(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.write(FILES)
    query(project.db_url, "CREATE TABLE tenants (name text, url text)")
    with psycopg.connect(project.db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO tenants VALUES ('acme', %s)", (project.db_url,))
    (project.root / "fleet.toml").write_text(
        f'[[catalog]]\nurl = "{project.db_url}"\n'
        'query = "SELECT name, url FROM tenants"\n'
    )

    code = cli.main(["fleet", "migrate", "--migrations-dir", str(project.migrations)])

    assert code == 0
    assert "✓ acme: 2 applied, now at 2" in capsys.readouterr().out


def test_fleet_lint_stops_every_target_before_any_starts(project, capsys, monkeypatch):
    monkeypatch.chdir(project.root)
    project.write({**FILES, "001-schema/003-i.sql": "CREATE INDEX a_i ON a (id);\n"})
    (project.root / "fleet.toml").write_text(
        f'[[target]]\nname = "one"\nurl = "{project.db_url}"\n'
    )

    code = cli.main(["fleet", "migrate", "--lint",
                     "--migrations-dir", str(project.migrations)])  # fmt: skip

    out, err = capsys.readouterr()
    assert code == 8
    assert "003-i.sql:1:1: error index-not-concurrent" in out
    assert "1 lint error in the migrations, so no target was started" in err
    assert query(project.db_url, "SELECT to_regclass('a')") == [(None,)]


def test_fleet_resume_runs_targets_added_since_and_refuses_changed_migrations(
    project, capsys, monkeypatch
):
    monkeypatch.chdir(project.root)
    project.write(FILES)
    api.lock(project.settings)
    fleet = project.root / "fleet.toml"
    fleet.write_text(
        f'[[target]]\nname = "one"\nurl = "{project.db_url}"\n'
        f'[[target]]\nname = "dead"\nurl = "{UNREACHABLE}"\n'
    )
    common = ["--json", "--migrations-dir", str(project.migrations)]
    assert cli.main(["fleet", "migrate", *common]) == 9
    capsys.readouterr()
    fleet.write_text(  # the dead one removed, another added
        f'[[target]]\nname = "one"\nurl = "{project.db_url}"\n'
        f'[[target]]\nname = "two"\nurl = "{project.db_url}"\n'
    )

    code = cli.main(["fleet", "migrate", "--resume", "last", *common])

    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(t["name"], t["status"]) for t in document["targets"]] == [
        ("one", "migrated"),  # from the first run
        ("two", "up to date"),  # added since: run now
    ]
    project.write(LATER)
    api.lock(project.settings)
    assert cli.main(["fleet", "migrate", "--resume", "last", *common]) == 2
    assert "chain.lock changed since fleet run" in capsys.readouterr().err
