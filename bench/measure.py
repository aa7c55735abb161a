"""Run one command and measure it: whole-process wall time and peak RSS.

Wall time is perf_counter around spawn and a blocking reap. Peak RSS and CPU come from
/usr/bin/time, which forks the command from its own small process: a child forked
straight from this (large) Python process would inherit its high-water RSS.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    rss_kb: int  # peak resident set size of the largest process in the tree
    code: int  # exit status; -1 when stopped at the timeout
    cpu: float = 0.0  # user + system seconds of the whole tree: less load-sensitive


@dataclass(frozen=True)
class Summary:
    """Medians of the measured runs (the warm-up excluded)."""

    wall: float
    low: float
    high: float
    rss_kb: int
    runs: int
    cpu: float


class BenchError(Exception):
    """A set-up step failed; the benchmark stops with its message."""


TIME = "/usr/bin/time"
_FORMAT = "%M %U %S"  # peak RSS of the largest process in the tree (KiB), CPU seconds


def timed(argv: Sequence[str], rusage: Path) -> list[str]:
    """`argv` run under /usr/bin/time, which writes its rusage to `rusage`."""
    return [TIME, "-f", _FORMAT, "-o", str(rusage), *argv]


def read_rusage(rusage: Path) -> tuple[int, float]:
    """(peak RSS in KiB, user + system CPU seconds) from a `timed` run."""
    try:
        last = rusage.read_text(encoding="utf-8").strip().splitlines()[-1]
        rss, user, system = last.split()
        return int(rss), float(user) + float(system)
    except (OSError, IndexError, ValueError):
        return 0, 0.0  # killed before /usr/bin/time could write


def run_once(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    log: Path,
    timeout: float = 600.0,
) -> Sample:
    """Spawn `argv`, wait for it and return its wall time, peak RSS and CPU."""
    rusage = log.with_suffix(".rusage")
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            timed(argv, rusage),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # A blocking wait: Popen.wait(timeout) polls with sleeps of up to 50 ms,
        # which rounded every wall time up to the next 50 ms step.
        expired = threading.Event()

        def stop() -> None:
            expired.set()
            os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            code = proc.wait()
        finally:
            timer.cancel()
        wall = time.perf_counter() - start
        if expired.is_set():
            code = -1
    rss, cpu = read_rusage(rusage)
    return Sample(wall, rss, code, cpu)


def tail(log: Path, lines: int = 3) -> str:
    text = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return " | ".join(text[-lines:]) if text else "(no output)"


def summarise(samples: Sequence[Sample]) -> Summary:
    walls = [s.wall for s in samples]
    return Summary(
        statistics.median(walls),
        min(walls),
        max(walls),
        int(statistics.median(s.rss_kb for s in samples)),
        len(samples),
        statistics.median(s.cpu for s in samples),
    )


def load_average() -> float:
    return os.getloadavg()[0]
