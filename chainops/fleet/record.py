"""A fleet run's record, kept in `.chainops/fleet-runs/<run id>.json`: the chain.lock
head it ran, each target's outcome and timing. `--resume RUN` re-runs only the
targets that did not finish, each re-planned from its own ledger."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from chainops.errors import ConfigError
from chainops.fleet.run import Outcome

RUNS_DIR = Path(".chainops") / "fleet-runs"


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    started_at: str
    lock_head: str  # chain.lock's head line when the run began ("" without a lock)
    targets_file: str
    outcomes: tuple[Outcome, ...]

    @property
    def unfinished(self) -> list[str]:
        return [o.name for o in self.outcomes if not o.ok]


def new_run_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{moment}-{secrets.token_hex(2)}"


def save(root: Path, record: RunRecord) -> Path:
    """Write the record atomically, readable by its owner only."""
    folder = root / RUNS_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{record.run_id}.json"
    temporary = path.with_suffix(".tmp")
    data = asdict(record)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1)
        out.write("\n")
    os.replace(temporary, path)
    return path


def load(root: Path, run_id: str) -> RunRecord:
    """A saved record by id (`last`: the newest)."""
    folder = root / RUNS_DIR
    if run_id == "last":
        found = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not found:
            raise ConfigError("no fleet run to resume; run inv fleet.migrate first")
        path = found[-1]
    else:
        path = folder / f"{run_id}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        outcomes = tuple(Outcome(**o) for o in data.pop("outcomes"))
        return RunRecord(**data, outcomes=outcomes)
    except FileNotFoundError:
        raise ConfigError(
            f"no fleet run {run_id} in {RUNS_DIR}; pass a run id it lists, or last"
        ) from None
    except (ValueError, TypeError, KeyError) as err:
        raise ConfigError(f"{path.name} is not a fleet run record ({err})") from None


def merge(
    previous: RunRecord, fresh: Sequence[Outcome], listed: Sequence[str]
) -> tuple[Outcome, ...]:
    """The previous outcomes with the re-run targets' new ones in their place, the
    targets added since at the end; targets no longer `listed` are dropped."""
    by_name = {o.name: o for o in fresh}
    kept = [by_name.pop(o.name, o) for o in previous.outcomes if o.name in listed]
    return (*kept, *by_name.values())
