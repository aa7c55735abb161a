"""Migrate many targets at once, each with its own ledger and lock, through `api`.

A scheduler starts targets while both the overall limit and the target's server
limit allow (connections are what runs out first), canaries and tagged waves
before the rest. Every failure stays with its target; too many stop new starts.
Ctrl-C lets each running target finish the file in flight and starts nothing new.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial

from chainops import api
from chainops.config import Settings, password_of, redact
from chainops.errors import (
    CannotConnect,
    ChainopsError,
    ConfigError,
    DriftError,
    LedgerTampered,
    LintFailed,
    LockHeld,
    LockTimeout,
    MigrationFailed,
    SchemaDrift,
)
from chainops.events import Applied, Event
from chainops.fleet.targets import FleetTarget
from chainops.model import MigrationFile, Target
from chainops.store.connection import NOT_A_URL, URL_ADVICE

OK = ("migrated", "up to date", "planned")
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class FleetOptions:
    parallel: int = 8
    per_server: int = 4
    canary: int = 0
    waves: tuple[str, ...] = ()  # tags, each a wave before the untagged rest
    max_failures: float = 0.1  # of all targets; once more failed, nothing starts
    dry_run: bool = False
    backup: bool | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one target in a run."""

    name: str
    status: str  # migrated, up to date, planned, failed, not started, interrupted
    kind: str = ""  # for failures: unreachable, migration, drift, tampered, ...
    applied: int = 0
    height: int = 0
    head: str = ""
    seconds: float = 0.0
    message: str = ""
    migrations: int = 0  # applied in all, the same on every target at the head

    @property
    def ok(self) -> bool:
        return self.status in OK


Progress = Callable[[Outcome], None]


def for_target(message: str, target: FleetTarget) -> str:
    """A message in a target's words: its URL came from the targets file, not
    DATABASE_URL; never its password."""
    message = message.replace(URL_ADVICE, "check the target's URL")
    message = message.replace(NOT_A_URL, "the target's URL is not a connection string")
    return redact(message, password_of(target.conninfo))


def to_api_target(settings: Settings, target: FleetTarget) -> Target:
    """The API's Target for one fleet target: its URL, and for a tenant its schema
    as the ledger schema and the session's search_path."""
    from psycopg.conninfo import make_conninfo

    conninfo, schema = target.conninfo, settings.ledger_schema
    if target.schema is not None:
        if not _SCHEMA.match(target.schema):
            raise ConfigError(
                f"target {target.name}: tenant schema {target.schema!r} must be a "
                "lower-case name (letters, digits, _)"
            )
        conninfo = make_conninfo(conninfo, options=f"-c search_path={target.schema}")
        schema = target.schema
    changed = replace(
        settings,
        database_url=conninfo,
        ledger_schema=schema,
        fingerprint_scope=target.schema,
    )
    return Target(changed, conninfo, target.description)


def order(targets: Sequence[FleetTarget], options: FleetOptions) -> list[list[int]]:
    """Waves of target indexes: the canaries, each tag's targets, then the rest."""
    left = list(range(len(targets)))
    waves: list[list[int]] = []
    if options.canary:
        waves.append(left[: options.canary])
        left = left[options.canary :]
    for tag in options.waves:
        wave = [i for i in left if tag in targets[i].tags]
        left = [i for i in left if i not in wave]
        waves.append(wave)
    return [w for w in [*waves, left] if w]


class FleetRun:
    """One run over the targets; `outcomes` fills in as targets finish."""

    def __init__(
        self,
        settings: Settings,
        targets: Sequence[FleetTarget],
        files: Sequence[MigrationFile],
        options: FleetOptions,
        progress: Progress,
    ) -> None:
        self.settings, self.targets, self.files = settings, targets, files
        self.options, self.progress = options, progress
        self.outcomes: dict[str, Outcome] = {}
        self._stop = threading.Event()  # set by Ctrl-C: nothing new starts
        self._changed = threading.Condition()
        self._running: Counter[str] = Counter()

    @property
    def interrupted(self) -> bool:
        return self._stop.is_set()

    def run(self) -> list[Outcome]:
        """Every target's outcome, in the file's order."""
        with ThreadPoolExecutor(max_workers=self.options.parallel) as pool:
            try:
                for wave in order(self.targets, self.options):
                    self._run_wave(pool, wave)
                    if self._halted():
                        break
            except KeyboardInterrupt:
                self._stop.set()  # running targets finish their file, then stop
                with self._changed:
                    self._changed.wait_for(lambda: not self._running.total())
        return [
            self.outcomes.get(t.name, Outcome(t.name, "not started"))
            for t in self.targets
        ]

    def _run_wave(self, pool: ThreadPoolExecutor, wave: list[int]) -> None:
        futures: list[Future[None]] = []
        for i in wave:
            target = self.targets[i]
            with self._changed:
                self._changed.wait_for(partial(self._has_room, target))
                if self._halted():
                    break
                self._running[target.server] += 1
            futures.append(pool.submit(self._one, target))
        for future in futures:
            while not future.done():  # a timeout keeps Ctrl-C deliverable
                with self._changed:
                    self._changed.wait(0.2)

    def _has_room(self, target: FleetTarget) -> bool:
        if self._halted():
            return True
        return (
            self._running.total() < self.options.parallel
            and self._running[target.server] < self.options.per_server
        )

    def _halted(self) -> bool:
        if self._stop.is_set():
            return True
        done = list(self.outcomes.values())
        failed = sum(1 for o in done if not o.ok)
        if failed and self.options.canary and len(done) <= self.options.canary:
            return True  # a failing canary stops the rest
        return failed > self.options.max_failures * len(self.targets)

    def _one(self, target: FleetTarget) -> None:
        started = time.perf_counter()
        try:
            outcome = self._migrate(target)
        except ChainopsError as err:
            outcome = _failure(target.name, err, self._stop.is_set())
        except Exception as err:  # one target's bug must not end the fleet
            line = f"{type(err).__name__}: {err}".splitlines()[0]
            outcome = Outcome(target.name, "failed", "unexpected", message=line)
        outcome = replace(
            outcome,
            seconds=round(time.perf_counter() - started, 3),
            message=for_target(outcome.message, target),
        )
        with self._changed:
            self.outcomes[target.name] = outcome
            self._running[target.server] -= 1
            self._changed.notify_all()
        self.progress(outcome)

    def _migrate(self, target: FleetTarget) -> Outcome:
        where = to_api_target(self.settings, target)
        result = api.apply(
            where,
            dry_run=self.options.dry_run,
            backup=self.options.backup,
            on_event=self._stopper,
            files=self.files,
        )
        if self.options.dry_run:
            status = "planned"
        else:
            status = "migrated" if result.applied else "up to date"
        count = len(result.planned) if self.options.dry_run else len(result.applied)
        return Outcome(target.name, status, "", count, result.height, result.head,
                       migrations=result.migrations)  # fmt: skip

    def _stopper(self, event: Event) -> None:
        """After a file commits, a stopped run ends this target's work there."""
        if isinstance(event, Applied) and self._stop.is_set():
            raise _StoppedError(event)


class _StoppedError(ChainopsError):
    """Ctrl-C reached the fleet: this target stopped after a committed file."""

    def __init__(self, event: Applied) -> None:
        super().__init__(
            f"stopped after {event.file.path} (block {event.block.height})"
        )
        self.block = event.block


_KINDS: tuple[tuple[type[ChainopsError], str], ...] = (
    (CannotConnect, "unreachable"),
    (MigrationFailed, "migration"),
    (LedgerTampered, "tampered"),
    (SchemaDrift, "drift"),
    (DriftError, "verify"),
    (LockHeld, "locked"),
    (LockTimeout, "locked"),
    (LintFailed, "lint"),
    (ConfigError, "config"),
)


def _failure(name: str, err: ChainopsError, stopping: bool) -> Outcome:
    """A target's error as its outcome: what kind of failure, in one line."""
    if isinstance(err, _StoppedError):
        return Outcome(name, "interrupted", "stopped", 0, err.block.height,
                       err.block.block_hash, message=str(err))  # fmt: skip
    kind = next((k for cls, k in _KINDS if isinstance(err, cls)), "error")
    status = "interrupted" if stopping and kind == "error" else "failed"
    return Outcome(name, status, kind, message=str(err).splitlines()[0])
