"""The fleet workload: N databases over three servers, 20 small migrations each.

`python -m bench.fleet [N] [PARALLEL]` (default 500 and 8) starts two embedded
PostgreSQL servers beside the common one (CHAINOPS_BENCH_URL, else 127.0.0.1:5432),
spreads N fresh databases over the three, and times, from the same fresh state:

- `chainops fleet migrate --parallel PARALLEL --per-server 3`;
- a shell loop of `chainops migrate --database-url URL` over the same targets, the
  way teams run a migration tool across a fleet without fleet mode.

For each: wall time, the peak resident memory of the biggest process, and the most
chainops connections seen at once on any one server (sampled every 5 ms). Database
creation is untimed. Prints a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bench.generate import chainops_path, tiny_sql

MIGRATIONS = 20
PREFIX = "chainops_bench_fleet_"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    parallel = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    common = os.environ.get(
        "CHAINOPS_BENCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    with tempfile.TemporaryDirectory() as scratch, _servers(common) as admins:
        root = Path(scratch)
        urls = [
            make_conninfo(admins[i % len(admins)], dbname=f"{PREFIX}{i}")
            for i in range(n)
        ]
        project = _project(root, urls)
        chainops = str(Path(sys.executable).with_name("chainops"))
        runs = {
            f"chainops fleet migrate --parallel {parallel} --per-server 3": [
                chainops, "fleet", "migrate", "--parallel", str(parallel),
                "--per-server", "3",
            ],
            "shell loop of chainops migrate": [
                "bash", "-c",
                f"for url in \"$@\"; do {shlex.quote(chainops)} migrate --no-backup"
                " --database-url \"$url\" >/dev/null || exit 1; done",
                "loop", *urls,
            ],
        }  # fmt: skip
        rows = []
        for name, argv in runs.items():
            _fresh(admins, n)
            with _Peak(admins) as peak:
                seconds, rss_kb, code = _timed(argv, project)
            if code != 0:
                raise SystemExit(f"{name} exited {code}")
            rows.append((name, seconds, rss_kb / 1024, max(peak.seen.values())))
            _check(urls)
        _drop(admins, n)
    print(f"\n{n} databases on 3 servers, {MIGRATIONS} migrations each\n")
    print("| run | wall | peak RSS | peak connections on one server |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds, rss, conns in rows:
        print(f"| {name} | {seconds:.1f} s | {rss:.0f} MiB | {conns} |")
    print(f"\nfleet mode is {rows[1][1] / rows[0][1]:.1f}x faster than the loop")


@contextmanager
def _servers(common: str) -> Iterator[list[str]]:
    from chainops.store import server

    roots = [Path(tempfile.mkdtemp(prefix="chainops-bench-fleet-")) for _ in (1, 2)]
    try:
        extra = [server.ensure_running(r, dbname="postgres").conninfo for r in roots]
        yield [common, *extra]
    finally:
        for root in roots:
            server.stop(root)
            shutil.rmtree(root, ignore_errors=True)


def _project(root: Path, urls: list[str]) -> Path:
    project = root / "project"
    (project / "migrations").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[project]\nname = "bench"\n')
    for i in range(MIGRATIONS):
        path = chainops_path(project / "migrations", i, f"t_{i + 1}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tiny_sql(i + 1))
    (project / "fleet.toml").write_text(
        "".join(
            f'[[target]]\nname = "db{i}"\nurl = "{u}"\n' for i, u in enumerate(urls)
        )
    )
    return project


def _each(admins: list[str], n: int, statement: str) -> None:
    for i, admin in enumerate(admins):
        with psycopg.connect(admin, autocommit=True) as conn:
            for k in range(i, n, len(admins)):
                name = sql.Identifier(f"{PREFIX}{k}")
                conn.execute(sql.SQL(statement).format(name))


def _fresh(admins: list[str], n: int) -> None:
    _drop(admins, n)
    _each(admins, n, "CREATE DATABASE {}")


def _drop(admins: list[str], n: int) -> None:
    _each(admins, n, "DROP DATABASE IF EXISTS {} WITH (FORCE)")


def _timed(argv: list[str], cwd: Path) -> tuple[float, int, int]:
    """Wall seconds, the biggest process's peak RSS in KiB, and the exit code."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss, process.returncode


def _check(urls: list[str]) -> None:
    """Every target reached the same number of blocks."""
    for url in urls[:: max(len(urls) // 20, 1)]:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM blockchain_migrations").fetchone()
        if not row or row[0] != MIGRATIONS:
            raise SystemExit(f"{url} holds {row} blocks, not {MIGRATIONS}")


class _Peak:
    """The most chainops connections seen at once on each server."""

    def __init__(self, admins: list[str]) -> None:
        self.admins = admins
        self.seen = dict.fromkeys(admins, 0)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        conns = [psycopg.connect(a, autocommit=True) for a in self.admins]
        while not self._done.is_set():
            for admin, conn in zip(self.admins, conns, strict=True):
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name LIKE 'chainops %'"
                ).fetchone()
                self.seen[admin] = max(self.seen[admin], int(row[0]) if row else 0)
            time.sleep(0.005)
        for conn in conns:
            conn.close()


if __name__ == "__main__":
    main()
