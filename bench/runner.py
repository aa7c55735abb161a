"""Run each group's cells round-robin and keep the medians.

One warm-up round, then `runs` measured rounds; a cell that fails or overruns its
time limit is reported with the reason and not run again.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from bench.measure import Sample, Summary, load_average, run_once, summarise, tail
from bench.workloads import Context, Group


@dataclass
class Row:
    tool: str
    summary: Summary | None = None
    note: str = ""
    samples: list[Sample] = field(default_factory=list)


@dataclass
class GroupResult:
    group: Group
    rows: list[Row]
    load_start: float
    load_end: float = 0.0

    def row(self, tool: str) -> Row | None:
        return next((r for r in self.rows if r.tool == tool), None)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def run_group(ctx: Context, group: Group, runs: int, warmup: int = 1) -> GroupResult:
    """Measure every cell of `group`, round-robin.

    A cell whose warm-up run takes longer than `ctx.repeat_limit` seconds keeps that
    run as its only measurement: repeating it would blow the time budget, and its
    ranking does not hinge on a few percent of noise.
    """
    result = GroupResult(
        group, [Row(c.tool, note=c.missing) for c in group.cells], load_average()
    )
    live = {c.tool for c in group.cells if c.prepare is not None}
    failed: set[str] = set()
    logs = ctx.work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for round_no in range(warmup + runs):
        measured = round_no >= warmup
        label = f"run {round_no - warmup + 1}/{runs}" if measured else "warm-up"
        _say(f"  {group.key} {label} (load {load_average():.2f})")
        for cell, row in zip(group.cells, result.rows, strict=True):
            if cell.tool not in live or cell.prepare is None:
                continue
            command = cell.prepare()
            suffix = len(row.samples) if measured else "warmup"
            log = logs / f"{group.key}-{_slug(cell.tool)}-{suffix}.log"
            sample = run_once(command.argv, command.env, command.cwd, log, cell.timeout)
            if sample.code != 0:
                live.discard(cell.tool)
                failed.add(cell.tool)
                row.note = (
                    f"stopped after {cell.timeout:g} s (time limit)"
                    if sample.code == -1
                    else f"failed (exit {sample.code}): {tail(log, 1)}"
                )
                row.samples.clear()
            elif measured:
                row.samples.append(sample)
            elif sample.wall > ctx.repeat_limit:
                live.discard(cell.tool)
                row.samples.append(sample)
                row.note = f"1 run: slower than {ctx.repeat_limit:g} s, not repeated"
    for row in result.rows:
        if row.samples and row.tool not in failed:
            row.summary = summarise(row.samples)
    result.load_end = load_average()
    return result
