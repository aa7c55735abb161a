"""The `fleet` commands for both front ends: targets read, the run, its record, and
the output in the format asked for. `cli` hands over the parsed options and its
two writers; every failure of the fleet as a whole is one ChainopsError."""

from __future__ import annotations

import argparse
import itertools
import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from chainops import api
from chainops.config import Settings
from chainops.errors import ConfigError, FleetIncomplete, Interrupted, LintFailed
from chainops.fleet import record, report
from chainops.fleet.run import FleetOptions, FleetRun, Outcome
from chainops.fleet.survey import survey
from chainops.fleet.targets import FLEET_FILE, FleetTarget, read_targets
from chainops.source import lockfile

Write = Callable[[str], None]
FORMATS = ("text", "json", "junit")


def run(args: argparse.Namespace, settings: Settings, out: Write) -> int:
    """The `fleet` action asked for."""
    return (migrate if args.action == "migrate" else check)(args, settings, out)


def migrate(args: argparse.Namespace, settings: Settings, out: Write) -> int:
    """`fleet migrate`: verify and migrate every target; a record of the run."""
    fmt = _format(args)
    listed = _targets(args, settings)
    root = settings.project_root
    previous = record.load(root, args.resume) if args.resume else None
    files = api.load_files(settings)
    lock = lockfile.read_lock(settings.migrations_dir)
    targets = listed
    if previous is not None:
        targets = _left_to_resume(previous, listed, lock.head if lock else "")
    options = _options(args)
    if args.lint:
        _lint_once(settings, out if fmt == "text" else _quiet_line)
    finished = itertools.count(1)  # progress: one numbered line per finished target

    def show(outcome: Outcome) -> None:
        if fmt == "text":
            out(f"[{next(finished)}/{len(targets)}] {report.outcome_line(outcome)}")

    fleet = FleetRun(settings, targets, files, options, show)
    outcomes = fleet.run()
    done = record.RunRecord(
        previous.run_id if previous else record.new_run_id(),
        previous.started_at if previous else datetime.now(timezone.utc).isoformat(),
        lock.head if lock else "",
        str(_targets_path(args, settings)),
        record.merge(previous, outcomes, [t.name for t in listed])
        if previous
        else tuple(outcomes),
    )
    if not options.dry_run:
        path = record.save(root, done)
        shown = os.path.relpath(path, Path.cwd())
    else:
        shown = "dry run, not recorded"
    if fmt == "json":
        out(report.run_json(done))
    elif fmt == "junit":
        out(report.run_junit(done))
    else:
        out(report.run_summary(done, shown))
    if fleet.interrupted:
        raise Interrupted(
            f"interrupted: {len(done.unfinished)} of {len(done.outcomes)} targets did "
            "not finish, every running one stopped after its file in flight; resume "
            f"with inv fleet.migrate --resume {done.run_id}"
        )
    if done.unfinished:
        raise FleetIncomplete(
            f"{len(done.unfinished)} of {len(done.outcomes)} targets did not finish "
            f"({_some(done.unfinished)}); fix them, then run inv fleet.migrate "
            f"--resume {done.run_id}"
        )
    return 0


def check(args: argparse.Namespace, settings: Settings, out: Write) -> int:
    """`fleet status` and `fleet verify`: one row per target, nothing applied."""
    fmt = _format(args)
    verify = args.action == "verify"
    states = survey(settings, _targets(args, settings), _options(args), verify=verify)
    if fmt == "json":
        out(report.states_json(states))
    elif fmt == "junit":
        out(report.states_junit(states, f"chainops fleet {args.action}"))
    else:
        for line in report.state_lines(states):
            out(line)
    bad = [s.name for s in states if not s.ok]
    if bad:
        raise FleetIncomplete(
            f"{len(bad)} of {len(states)} targets did not verify ({_some(bad)}); "
            "see the rows above"
        )
    return 0


def _left_to_resume(
    previous: record.RunRecord, targets: list[FleetTarget], lock_head: str
) -> list[FleetTarget]:
    """The targets a resume runs: those that did not finish, and those added to the
    targets file since. Migrations changed since the run start a new run instead:
    the targets that finished would be left behind."""
    if lock_head != previous.lock_head:
        raise ConfigError(
            f"chain.lock changed since fleet run {previous.run_id}, so its finished "
            "targets are behind; start a new run: inv fleet.migrate"
        )
    known = {o.name for o in previous.outcomes}
    left = set(previous.unfinished)
    return [t for t in targets if t.name in left or t.name not in known]


def _lint_once(settings: Settings, out: Write) -> None:
    """Every file's static findings once, before any target: an error stops it all."""
    from chainops.lint import report as lint_report
    from chainops.lint import verb

    found = verb.lint(settings, all_files=True, offline=True)
    for line in lint_report.text_lines(found):
        out(line)
    if found.errors:
        errors = f"{found.errors} lint error{'s' if found.errors > 1 else ''}"
        raise LintFailed(
            f"{errors} in the migrations, so no target was started; fix them or "
            "suppress each with -- chainops:lint-ignore=<rule> <reason>",
            tuple(found.shown),
        )


def _quiet_line(_line: str) -> None:
    """JSON and JUnit documents carry no lint lines."""


def _some(names: list[str]) -> str:
    return ", ".join(names[:3]) + (" …" if len(names) > 3 else "")


def _format(args: argparse.Namespace) -> str:
    fmt = "json" if args.json else (args.output_format or "text")
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt} is unknown; use text, json or junit")
    return fmt


def _targets_path(args: argparse.Namespace, settings: Settings) -> Path:
    return Path(args.targets) if args.targets else settings.project_root / FLEET_FILE


def _targets(args: argparse.Namespace, settings: Settings) -> list[FleetTarget]:
    from chainops.store import catalog_query

    if args.database_url:
        raise ConfigError(
            "a fleet takes its databases from the targets file, not --database-url; "
            "list it there with url_env"
        )
    return read_targets(_targets_path(args, settings), os.environ, catalog_query.rows)


def _options(args: argparse.Namespace) -> FleetOptions:
    parallel = 8 if args.parallel is None else args.parallel
    per_server = min(parallel, 4) if args.per_server is None else args.per_server
    if parallel < 1 or per_server < 1:
        raise ConfigError("--parallel and --per-server must be 1 or more")
    canary = getattr(args, "canary", None) or 0
    if canary < 0:
        raise ConfigError("--canary is a number of targets, 0 or more")
    given = getattr(args, "max_failures", None)
    ratio = 0.1 if given is None else given
    if not 0 <= ratio <= 1:
        raise ConfigError("--max-failures is a ratio between 0 and 1, e.g. 0.05")
    return FleetOptions(
        parallel=parallel,
        per_server=per_server,
        canary=canary,
        waves=tuple(w for w in (getattr(args, "waves", None) or "").split(",") if w),
        max_failures=ratio,
        dry_run=bool(getattr(args, "dry_run", False)),
        backup=getattr(args, "backup", None),
    )
