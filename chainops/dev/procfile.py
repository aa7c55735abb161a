"""`inv dev`'s processes: read Procfile.dev and run it with honcho's Manager in this
process, so Ctrl-C and SIGTERM reach honcho's handlers and stop every process. The
only importer of honcho; output goes through honcho's printer (coloured on a tty).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from chainops.config import Settings, read_dotenv

if TYPE_CHECKING:
    from honcho.manager import Manager
from chainops.errors import ConfigError, Refused
from chainops.output import Guarded

PROCFILE = "Procfile.dev"
UNDER_DEV = "CHAINOPS_UNDER_DEV"  # set for the processes: optional ones stay up
BASE_PORT = 5000  # honcho's: each process gets PORT, 100 more per Procfile line
_HANGUP = 129  # 128 + SIGHUP, as a shell reports it


def read_procfile(settings: Settings, name: str = PROCFILE) -> dict[str, str]:
    """The processes to run, by name, from a Procfile relative to the project root.

    Refuses production, where the watcher must not apply files as they are saved.
    """
    if settings.is_production:
        raise Refused(
            "CHAINOPS_ENV is production, and inv dev is for development; apply with "
            "inv migrate and start the app on its own"
        )
    path = settings.project_root / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{name} does not exist; create it with one `name: command` line per "
            "process (for example `web: python app.py`), or pass --procfile"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{name} cannot be read ({err}); fix the file") from err
    from honcho.environ import PROCFILE_LINE

    processes: dict[str, str] = {}
    for line in text.splitlines():
        match = PROCFILE_LINE.match(line)
        if not match:
            continue
        if match.group(1) in processes:
            raise ConfigError(
                f"{name} names the process {match.group(1)!r} twice; rename one"
            )
        processes[match.group(1)] = match.group(2)
    if not processes:
        raise ConfigError(
            f"{name} has no `name: command` line; add one per process, for example "
            "`web: python app.py`"
        )
    return processes


def environment(
    settings: Settings, conninfo: str, environ: Mapping[str, str]
) -> dict[str, str]:
    """The processes' environment: `.env`, then real variables, then the database.

    Every process gets the database `inv dev` migrated, so the app, the watcher and
    the explorer never disagree, and the tools of the Python that runs chainops.
    """
    env = read_dotenv(settings.project_root)
    env.update(environ)
    if conninfo:
        env["DATABASE_URL"] = conninfo
    env["CHAINOPS_MIGRATIONS_DIR"] = str(settings.migrations_dir)
    env["CHAINOPS_LEDGER_SCHEMA"] = settings.ledger_schema
    env["CHAINOPS_ENV"] = settings.environment
    env[UNDER_DEV] = "1"
    env.setdefault("PYTHONUNBUFFERED", "1")  # lines reach honcho as they are printed
    tools = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([tools, env.get("PATH", os.defpath)])
    return env


def run(processes: Mapping[str, str], env: Mapping[str, str], cwd: Path) -> int:
    """Run the processes until one stops or a signal arrives; return the exit code.

    The code is the first process's own when it stopped by itself, 130 after Ctrl-C,
    143 after SIGTERM, 129 after a hang-up.
    """
    from honcho.environ import expand_processes
    from honcho.manager import KILL_WAIT, Manager
    from honcho.printer import Message, Printer

    # honcho prints from its signal handlers too; an output that went away (a
    # closed terminal, `| tee` ended by the same Ctrl-C) must not stop its loop
    # before it has stopped the processes.
    port = env.get("PORT") or str(BASE_PORT)
    if not port.isdigit():
        raise ConfigError(f"PORT={port!r} is not a port number; use 1 to 65535")
    printer = Printer(Guarded(sys.stdout), colour=not env.get("NO_COLOR"))
    manager = Manager(printer)
    for params in expand_processes(dict(processes), env=dict(env), port=int(port)):
        manager.add_process(params.name, params.cmd, env=params.env, cwd=str(cwd))
    parent = os.getpid()

    def hang_up(signum: int, frame: object) -> None:
        if os.getpid() != parent:
            return  # honcho's forked readers inherit this; they end with their process
        if manager.returncode is None:
            manager.returncode = _HANGUP
        manager.terminate()

    # honcho's loop handles SIGINT and SIGTERM itself and never restores them.
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    if hasattr(signal, "SIGHUP"):  # POSIX: the terminal closed
        saved[signal.SIGHUP] = signal.signal(signal.SIGHUP, hang_up)
    finished = False
    try:
        manager.loop()
        finished = True
    finally:
        # honcho waits for the shells only; a command's own process may still be
        # shutting down (or hang), and must not outlive inv dev, nor may any
        # process when honcho's loop itself failed.
        groups = process_groups(manager)
        if not finished:
            _signal_groups(list(groups), signal.SIGTERM)
        for group in _reap(list(groups), time.monotonic() + KILL_WAIT):
            text = f"{groups[group]} left processes running; sent them SIGKILL\n"
            printer.write(Message("line", text, datetime.now(), "system", None))
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    code = int(manager.returncode or 0)
    return 128 - code if code < 0 else code  # killed by a signal: 128 + its number


def process_groups(manager: Manager) -> dict[int, str]:
    """The process group of each process honcho started, by leader pid.

    honcho keeps the pids in a private table only; this adapter is the one reader,
    pinned by tests/unit/test_procfile.py.
    """
    table = manager._processes
    return {p["pid"]: name for name, p in table.items() if "pid" in p}


def _signal_groups(groups: list[int], signum: int) -> None:
    for group in groups:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signum)


def _reap(groups: list[int], deadline: float) -> list[int]:
    """Wait for the process groups to empty; SIGKILL those left at the deadline."""
    while (groups := [g for g in groups if _has_members(g)]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.05)
    _signal_groups(groups, signal.SIGKILL)
    return groups


def _has_members(group: int) -> bool:
    """Whether a process group has a member that has not exited.

    An exited member stays a zombie until its new parent reaps it, which PID 1 of
    a container may never do, so Linux's process table is read for the state.
    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").is_file():
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp ...; comm may itself hold ") ".
            state, _, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue  # the process exited while the table was read
        if int(pgrp) == group and state != "Z":
            return True
    return False
