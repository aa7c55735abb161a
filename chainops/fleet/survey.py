"""`fleet status` and `fleet verify`: every target read in parallel, applying nothing.

Each target gets one row: its height and head, what is pending, and the verifier's
verdict, or the one line that says why it could not be read.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from chainops import api
from chainops.config import Settings
from chainops.errors import ChainopsError
from chainops.fleet.run import FleetOptions, for_target, to_api_target
from chainops.fleet.targets import FleetTarget
from chainops.model import State


@dataclass(frozen=True)
class TargetState:
    name: str
    ok: bool
    height: int = 0
    head: str = ""
    pending: int = 0
    problem: str = ""
    migrations: int = (
        0  # applied  # the first finding, or why the target could not be read
    )


def survey(
    settings: Settings,
    targets: Sequence[FleetTarget],
    options: FleetOptions,
    *,
    verify: bool,
) -> list[TargetState]:
    """Read every target (`verify`: also check its schema for drift), in order."""
    limits = {t.server: threading.Semaphore(options.per_server) for t in targets}

    def read(target: FleetTarget) -> TargetState:
        with limits[target.server]:
            try:
                return _read(settings, target, verify)
            except ChainopsError as err:
                line = for_target(str(err).splitlines()[0], target)
                return TargetState(target.name, False, problem=line)

    with ThreadPoolExecutor(max_workers=options.parallel) as pool:
        return list(pool.map(read, targets))


def _read(settings: Settings, target: FleetTarget, verify: bool) -> TargetState:
    where = to_api_target(settings, target)
    status = api.status(where)
    pending = sum(1 for e in status.entries if e.state in (State.PENDING, State.FAILED))
    findings = list(status.findings)
    if verify:
        findings = list(api.verify(where).findings)
    problem = findings[0].message if findings else ""
    applied = sum(1 for e in status.entries if e.state == State.APPLIED)
    return TargetState(target.name, not findings, status.height, status.head,
                       pending, problem, applied)  # fmt: skip
