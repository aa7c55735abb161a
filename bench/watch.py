"""Watch latency under `inv dev`: from the last write of a new file to its block.

A scratch project runs `inv dev` with a Procfile.dev holding only the watcher; the
benchmark writes a new migration, then polls the ledger for its committed block.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import psycopg

from bench import tools
from bench.generate import chainops_path, tiny_sql, write_tiny
from bench.measure import Sample, load_average, read_rusage, summarise, timed
from bench.peers import ROOT
from bench.runner import GroupResult, Row
from bench.workloads import Context, Group

TARGET = "watch latency ≤ 100 ms after the writer closes the file"
EXISTING = 50  # applied before watching; new files land in the same folder
POLL = 0.002


def _wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(POLL)


def _has_block(conn: psycopg.Connection[tuple[object, ...]], number: int) -> bool:
    query = (
        "SELECT 1 FROM blockchain_migrations"
        " WHERE migration_number = %s AND status = 'completed'"
    )
    return conn.execute(query, (number,)).fetchone() is not None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C the whole `inv dev` process group, as a developer would."""
    for sig, grace in ((signal.SIGINT, 15), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def measure(
    ctx: Context, runs: int
) -> tuple[GroupResult | None, list[tuple[str, str, bool | None]]]:
    project = ctx.work / "watch-project"
    if project.exists():
        shutil.rmtree(project)
    source = write_tiny(ctx.work / f"tiny-{EXISTING}", EXISTING)
    migrations = project / "migrations"
    shutil.copytree(source.chainops, migrations)
    (project / "pyproject.toml").write_text("[tool.chainops]\n", encoding="utf-8")
    (project / "Procfile.dev").write_text(
        "migrations: chainops watch\n", encoding="utf-8"
    )
    url = ctx.server.fresh("chainops_bench_watch")
    command = tools.inv("dev", url, migrations)
    env = {
        **command.env,
        "PATH": f"{tools.VENV_BIN}{os.pathsep}{command.env.get('PATH', '')}",
    }
    argv = (command.argv[0], "--search-root", str(ROOT), "dev")
    log = ctx.work / "logs" / "watch-inv-dev.log"
    log.parent.mkdir(parents=True, exist_ok=True)  # also when run alone (--only watch)
    rusage = log.with_suffix(".rusage")
    group = Group(
        "watch",
        f"watch latency under inv dev ({EXISTING} applied, new file each run)",
        (),
    )
    result = GroupResult(
        group, [Row("inv dev: last write → block committed")], load_average()
    )
    with log.open("wb") as out, psycopg.connect(url, autocommit=True) as conn:
        proc = subprocess.Popen(
            timed(argv, rusage),
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait_for(
                lambda: b"watching" in log.read_bytes(),
                60,
                "inv dev never said it was watching",
            )
            samples: list[Sample] = []
            for k in range(1 + runs):
                i = EXISTING + k + 1
                target = chainops_path(migrations, i - 1, f"t_{i}")
                number = int(target.parent.name[:3]) * 1000 + int(target.name[:3])
                with target.open("w", encoding="utf-8") as handle:
                    handle.write(tiny_sql(i))
                written = time.perf_counter()
                _wait_for(
                    partial(_has_block, conn, number),
                    30,
                    f"{target.name} was never applied",
                )
                latency = time.perf_counter() - written
                if k:
                    samples.append(Sample(latency, 0, 0))
                time.sleep(0.5)
        except TimeoutError as err:
            result.rows[0].note = f"failed: {err} (see {log})"
            result.load_end = load_average()
            return result, [(TARGET, str(err), False)]
        finally:
            _stop(proc)
    summary = replace(summarise(samples), rss_kb=read_rusage(rusage)[0])
    result.rows[0].samples = samples
    result.rows[0].summary = summary
    result.load_end = load_average()
    low, high = summary.low * 1000, summary.high * 1000
    shown = f"{summary.wall * 1000:.0f} ms median ({low:.0f} to {high:.0f} ms)"
    return result, [(TARGET, shown, summary.wall <= 0.1)]
