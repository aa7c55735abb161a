"""`inv dev` as a developer runs it: a subprocess that migrates, runs Procfile.dev with
honcho, serves the explorer, applies a dropped file and stops cleanly on a signal.

Ctrl-C is sent to the whole foreground process group, as a terminal does; honcho's
children run in sessions of their own, so only honcho can stop them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chainops import api
from chainops.store import server
from tests.fixtures.postgres import REPO

TIMEOUT = 60.0
TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"
PROCFILE = "explorer: chainops explorer --port 0\nmigrations: chainops watch\n"
EXPLORER = re.compile(r"ledger explorer on (http://127\.0\.0\.1:\d+/)")
STARTED = re.compile(r"\| (\S+) started \(pid=(\d+)\)")


class Dev:
    """A running `inv dev` and everything it printed."""

    def __init__(self, root: Path, env: dict[str, str], *options: str) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "invoke",
                "--search-root",
                str(REPO),
                "dev",
                *options,
            ],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, like a shell's foreground job
        )
        self._reader = threading.Thread(target=self._read, name="inv-dev-output")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        regex = re.compile(pattern)
        found: list[re.Match[str]] = []

        def match() -> bool:
            found[:] = [m for ln in self.lines if (m := regex.search(ln))]
            return bool(found) or self.proc.poll() is not None

        with self._changed:
            self._changed.wait_for(match, timeout)
        if not found:
            pytest.fail(f"no line matching {pattern!r}; inv dev printed {self.lines}")
        return found[0]

    def pids(self) -> dict[str, int]:
        return {
            m.group(1): int(m.group(2))
            for ln in self.lines
            if (m := STARTED.search(ln))
        }

    def ready(self) -> str:
        """Wait until both processes are up; return the explorer's URL."""
        url = self.wait_for(EXPLORER.pattern).group(1)
        self.wait_for(r"\| ○ watching migrations/")
        return url

    def finish(self, signum: int | None = None, group: bool = False) -> int:
        if signum is not None:
            (os.killpg if group else os.kill)(self.proc.pid, signum)
        code = self.proc.wait(TIMEOUT)
        self._reader.join(TIMEOUT)
        return code

    def kill(self) -> None:
        """Leave nothing behind when a test failed midway."""
        for pid in [self.proc.pid, *self.pids().values()]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        self.finish()


def gone(group: int) -> bool:
    """True when no process of the group honcho started for a Procfile line runs.

    Exited processes count as gone even while they wait, as zombies, for a PID 1
    that does not reap (as in containers).
    """
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue
        if int(pgrp) == group and state != "Z":
            return False
    return True


def wait_until(condition: Callable[[], bool]) -> None:
    pause = threading.Event()
    for _ in range(int(TIMEOUT / 0.05)):
        if condition():
            return
        pause.wait(0.05)
    pytest.fail(f"{condition} still false after {TIMEOUT} s")


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode()


def environment(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "CHAINOPS_", "DATABASE_URL", "PORT"))
    }
    env.update({"NO_COLOR": "1", **extra})
    return env


@pytest.fixture
def start(project) -> Iterator[Callable[[str], Dev]]:
    """Start `inv dev` in the project with a Procfile.dev; stopped after the test."""
    started: list[Dev] = []

    def run(procfile: str = PROCFILE, name: str = "Procfile.dev", **extra: str) -> Dev:
        (project.root / name).write_text(procfile)
        options = () if name == "Procfile.dev" else ("--procfile", name)
        env = environment(
            DATABASE_URL=project.db_url, **{k.upper(): v for k, v in extra.items()}
        )
        started.append(Dev(project.root, env, *options))
        return started[-1]

    yield run
    for dev in started:
        if dev.proc.poll() is None:
            dev.kill()


def test_dev_migrates_serves_and_applies_dropped_file_then_stops_on_ctrl_c(
    project, start
):
    project.write({"001-schema/001-a.sql": TABLE_A})
    dev = start()

    url = dev.ready()
    assert "✓ #1001 001-a.sql (" in "\n".join(dev.lines)
    assert [b["path"] for b in json.loads(fetch(url + "api/chain"))["blocks"]] == [
        "001-schema/001-a.sql"
    ]

    project.write({"001-schema/002-b.sql": TABLE_B})

    dev.wait_for(r"\| ✓ applied #1002 002-b\.sql \(\d+ ms\)")
    doc = json.loads(fetch(url + "api/chain"))
    assert [b["path"] for b in doc["blocks"]][-1] == "001-schema/002-b.sql"
    # The page draws the chain from /api/chain in the browser (tests/browser).
    assert '<script src="/assets/app.js" defer></script>' in fetch(url)
    pids = dev.pids()
    assert set(pids) == {"explorer.1", "migrations.1"}

    assert dev.finish(signal.SIGINT, group=True) == 130
    assert [name for name, pid in pids.items() if not gone(pid)] == []
    assert "SIGINT received" in "\n".join(dev.lines)


def test_dev_stops_every_process_when_terminated(start):
    dev = start()
    dev.ready()
    pids = dev.pids()

    assert dev.finish(signal.SIGTERM) == 143
    assert [name for name, pid in pids.items() if not gone(pid)] == []


def test_dev_kills_process_left_behind_when_it_outlives_its_shell(project, start):
    ready = project.root / "stubborn.ready"
    stubborn = (
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path('{ready.name}').touch(); time.sleep(120)"
    )
    # Started in the background with its output elsewhere: honcho sees the shell end
    # on SIGTERM and has no pipe left to wait on, while python ignores SIGTERM.
    dev = start(
        f'{PROCFILE}stubborn: python -c "{stubborn}" >/dev/null 2>&1 & sleep 120\n'
    )
    dev.ready()
    wait_until(ready.exists)
    pids = dev.pids()

    assert dev.finish(signal.SIGINT, group=True) == 130
    assert [name for name, pid in pids.items() if not gone(pid)] == []
    assert "stubborn.1 left processes running; sent them SIGKILL" in "\n".join(
        dev.lines
    )


def test_dev_stops_the_others_and_exits_with_its_code_when_a_process_dies(start):
    dev = start(
        "explorer: chainops explorer --port 0\n"
        "boom: python -c 'import sys; sys.exit(3)'\n",
        name="Procfile.boom",
    )

    assert dev.finish() == 3
    pids = dev.pids()
    assert "explorer.1" in pids
    assert gone(pids["explorer.1"])
    assert "boom.1 stopped (rc=3)" in "\n".join(dev.lines)


def test_dev_refuses_to_start_when_applied_file_edited(project, start):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.write({"001-schema/001-a.sql": TABLE_A + "-- edited\n"})
    dev = start()

    assert dev.finish() == 4
    output = "\n".join(dev.lines)
    assert "✗ Hash mismatch for 001-schema/001-a.sql" in output
    assert "nothing was applied" in output
    assert dev.pids() == {}


def test_dev_starts_with_template_pending_when_watcher_will_wait(project, start):
    project.write({"001-schema/001-a.sql": "-- Migration: a\n-- Your SQL here\n"})
    dev = start()

    dev.ready()
    dev.wait_for(r"\| ○ 001-schema/001-a\.sql waits for SQL")

    assert dev.finish(signal.SIGINT, group=True) == 130
    assert "○ starting anyway" in "\n".join(dev.lines)


@pytest.fixture
def fresh_clone() -> Iterator[Path]:
    """A copy of the repository's project files in a private folder, no .env.

    Under root the embedded server runs as its own user, which cannot reach
    pytest's temporary folders (see tests/integration/test_server.py).
    """
    folder = Path(tempfile.mkdtemp(prefix="chainops-dev-"))
    root = folder / "project"
    root.mkdir()
    shutil.copy(REPO / "pyproject.toml", root)
    shutil.copytree(REPO / "migrations", root / "migrations")
    procfile = (REPO / "Procfile.dev").read_text()
    assert "--port" not in procfile  # $PORT, or a free port when it is taken
    (root / "Procfile.dev").write_text(procfile)
    try:
        yield root
    finally:
        server.stop(root)
        shutil.rmtree(folder, ignore_errors=True)


def test_dev_serves_explorer_on_embedded_database_when_nothing_configured(
    fresh_clone,
):
    dev = Dev(fresh_clone, environment())
    try:
        url = dev.ready()
        doc = json.loads(fetch(url + "api/chain"))
        pids = dev.pids()
        code = dev.finish(signal.SIGINT, group=True)
    finally:
        if dev.proc.poll() is None:
            dev.kill()

    assert code == 130
    assert len(doc["blocks"]) == 5
    assert doc["ok"] is True
    # The header reads as when the explorer runs alone on the embedded server.
    assert doc["database"] == "embedded PostgreSQL, database app"
    assert "started the embedded PostgreSQL" in "\n".join(dev.lines)
    assert [name for name, pid in pids.items() if not gone(pid)] == []


def test_dev_leaves_no_process_behind_when_terminal_hangs_up(start):
    dev = start()
    dev.ready()
    pids = dev.pids()

    # A closed terminal sends SIGHUP to the whole foreground process group.
    assert dev.finish(signal.SIGHUP, group=True) == 129
    assert [name for name, pid in pids.items() if not gone(pid)] == []


def test_dev_leaves_no_process_behind_when_ctrl_c_also_ends_its_reader(project):
    """`inv dev 2>&1 | tee log` and Ctrl-C: tee dies with the same signal, so every
    line honcho prints while stopping meets a closed pipe."""
    (project.root / "Procfile.dev").write_text(PROCFILE)
    env = environment(DATABASE_URL=project.db_url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), "dev"],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []

    def read_until_ready() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "○ watching migrations/" in line:
                return

    reader = threading.Thread(target=read_until_ready)
    reader.start()
    reader.join(TIMEOUT)
    pids = {m.group(1): int(m.group(2)) for ln in lines if (m := STARTED.search(ln))}
    try:
        assert set(pids) == {"explorer.1", "migrations.1"}, lines
        assert proc.stdout is not None
        proc.stdout.close()  # the reader is gone

        os.killpg(proc.pid, signal.SIGINT)

        assert proc.wait(TIMEOUT) == 130
        assert [name for name, pid in pids.items() if not gone(pid)] == []
    finally:
        for pid in [proc.pid, *pids.values()]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        proc.wait(TIMEOUT)


def test_dev_serves_explorer_on_free_port_when_port_is_taken(project, start):
    """`PORT=N inv dev` with the repository's Procfile.dev, N held elsewhere."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        dev = start((REPO / "Procfile.dev").read_text(), port=str(taken))

        url = dev.ready()
        assert not url.endswith(f":{taken}/")
        assert f"; port {taken} was taken" in "\n".join(dev.lines)
        assert json.loads(fetch(url + "api/chain"))["ok"] is True
        assert dev.finish(signal.SIGINT, group=True) == 130


def test_dev_keeps_watcher_running_when_explorer_fails(project, start):
    dev = start(
        "explorer: chainops explorer --port 70000\nmigrations: chainops watch\n"
    )
    dev.wait_for(r"\| ○ watching migrations/")
    dev.wait_for(r"explorer\.1 +\| ○ the explorer is off")

    project.write({"001-schema/001-a.sql": TABLE_A})

    dev.wait_for(r"\| ✓ applied #1001 001-a\.sql")
    assert dev.proc.poll() is None
    assert "PORT='70000' is not a port number" in "\n".join(dev.lines)
    assert dev.finish(signal.SIGINT, group=True) == 130
