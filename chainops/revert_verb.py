"""The revert verb (issue 17): undo the newest applied migrations with their down
scripts, newest first, each in its own transaction as a revert block; what a dry
run would do; and the lines both front ends print.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chainops import api, execute, plan, reverts, verify
from chainops.errors import Refused, short
from chainops.events import Applied, Event
from chainops.model import Block, LedgerSnapshot, MigrationFile, Target
from chainops.store import ledger


@dataclass(frozen=True)
class RevertResult:
    """The revert blocks appended, or (dry run) the blocks a revert would undo."""

    reverted: tuple[Applied, ...]
    planned: tuple[tuple[Block, str], ...]  # (block, its down script's path)
    head: str
    height: int


def revert(
    where: Target,
    *,
    last: int | None = None,
    to: int | None = None,
    dry_run: bool = False,
    confirmed: bool = False,
    on_event: api.OnEvent = api.ignore_events,
) -> RevertResult:
    """Revert the newest `last` (default 1) applied migrations, or every one
    numbered above `to`. Refused without a down script, for a block that a kept
    one comes after, and in production unless `confirmed`."""
    settings = where.settings
    files = api.load_files(settings)
    api.check_lock(settings, files, on_event)  # production runs only locked files

    def choose(snapshot: LedgerSnapshot) -> Sequence[tuple[Block, MigrationFile]]:
        chosen = reverts.plan_revert(snapshot.blocks, files, last=last, to=to)
        production = settings.is_production or snapshot.is_production
        if production and not confirmed and not dry_run:
            raise Refused(
                f"{where.description} is a production database and a revert runs "
                f"{len(chosen)} down script{'s' if len(chosen) != 1 else ''} "
                "against it; pass --yes to confirm, nothing was reverted"
            )
        return chosen

    with api.open_session(where, "revert") as conn:
        if dry_run:  # reads only: no lock
            snapshot = ledger.read_snapshot(conn, settings.ledger_schema)
            plan.refuse_old_format(snapshot)
            verify.raise_findings(verify.verify(snapshot, files))
            chosen = choose(snapshot)
            planned = tuple((b, f.down_script.path) for b, f in chosen if f.down_script)
            return RevertResult((), planned, snapshot.head, snapshot.height)
        result = execute.revert(conn, settings, files, choose, on_event)
    return RevertResult(result.applied, (), result.head, result.height)


def lines(result: RevertResult) -> list[str]:
    """What a dry run would revert, or the summary of a revert."""
    if result.planned:
        return [
            f"would revert block {b.height} (#{b.number} {b.path}) with {down}"
            for b, down in result.planned
        ] + [f"{len(result.planned)} to revert; nothing was changed (dry run)"]
    n = len(result.reverted)
    return [
        f"Reverted {n} migration{'s' if n != 1 else ''}; chain head "
        f"{short(result.head)} (block {result.height})"
    ]


def front(
    args: argparse.Namespace,
    target: Callable[[Callable[[Event], None]], Target],
    out: Callable[[str], None],
) -> int:
    """`revert` for both front ends: `target` resolves the database, telling an
    embedded start through the events it is given."""
    from chainops import report

    colour = report.use_colour(sys.stdout)

    def show(event: Event) -> None:
        out(report.event_line(event, colour))

    result = revert(
        target(show),
        last=args.last,
        to=args.to,
        dry_run=args.dry_run,
        confirmed=args.yes,
        on_event=show,
    )
    for line in lines(result):
        out(line)
    return 0
