"""Fleet results as text lines, JSON and JUnit XML (one test case per target)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from xml.etree import ElementTree

from chainops.errors import short
from chainops.fleet.record import RunRecord
from chainops.fleet.run import Outcome
from chainops.fleet.survey import TargetState

_MARK = {"migrated": "✓", "up to date": "✓", "planned": "○", "not started": "·"}


def outcome_line(o: Outcome) -> str:
    mark = _MARK.get(o.status, "✗")
    if o.status == "migrated":
        what = f"{o.applied} applied, now at {o.migrations} (head {short(o.head)})"
    elif o.status == "up to date":
        what = f"up to date at {o.migrations} (head {short(o.head)})"
    elif o.status == "planned":
        what = f"{o.applied} would be applied"
    elif o.status == "not started":
        what = "not started"
    else:
        what = f"{o.status} ({o.kind}): {o.message}"
    took = f" in {o.seconds:.1f} s" if o.seconds else ""
    return f"{mark} {o.name}: {what}{took}"


def run_summary(record: RunRecord, path: str) -> str:
    counts = Counter(o.status for o in record.outcomes)
    parts = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    return (
        f"fleet run {record.run_id}: {len(record.outcomes)} targets: {parts} ({path})"
    )


def run_json(record: RunRecord) -> str:
    return json.dumps(
        {
            "run_id": record.run_id,
            "started_at": record.started_at,
            "lock_head": record.lock_head,
            "ok": not record.unfinished,
            "targets": [o.__dict__ | {"ok": o.ok} for o in record.outcomes],
        },
        indent=2,
    )


def state_lines(states: Sequence[TargetState]) -> list[str]:
    """A matrix: one row per target; every healthy target shows the same count."""
    width = max((len(s.name) for s in states), default=6)
    lines = [f"  {'target':<{width}}  applied  pending  head          verify"]
    for s in states:
        verdict = "ok" if s.ok else s.problem
        head = short(s.head) if s.head else "-"
        lines.append(
            f"{'✓' if s.ok else '✗'} {s.name:<{width}}  {s.migrations:>7}  "
            f"{s.pending:>7}  {head:<12}  {verdict}"
        )
    return [*lines, _where_they_are(states)]


def _where_they_are(states: Sequence[TargetState]) -> str:
    fine = [s for s in states if s.ok]
    counts = Counter(s.migrations for s in fine)
    if len(counts) == 1:
        (count,) = counts
        at = f"all at {count} migrations"
    else:
        at = "at " + ", ".join(
            f"{c} migrations ({n})" for c, n in sorted(counts.items())
        )
    return f"{len(fine)} of {len(states)} targets verified" + (
        f"; {at}" if fine else ""
    )


def states_json(states: Sequence[TargetState]) -> str:
    return json.dumps(
        {"ok": all(s.ok for s in states), "targets": [s.__dict__ for s in states]},
        indent=2,
    )


def junit(suite: str, cases: Sequence[tuple[str, bool, str, float]]) -> str:
    """JUnit XML: one test case per target, a failure carrying its one line."""
    failures = sum(1 for _, ok, _, _ in cases if not ok)
    root = ElementTree.Element(
        "testsuite", name=suite, tests=str(len(cases)), failures=str(failures)
    )
    for name, ok, message, seconds in cases:
        case = ElementTree.SubElement(
            root, "testcase", classname=suite, name=name, time=f"{seconds:.3f}"
        )
        if not ok:
            ElementTree.SubElement(case, "failure", message=message).text = message
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def run_junit(record: RunRecord) -> str:
    cases = [(o.name, o.ok, outcome_line(o), o.seconds) for o in record.outcomes]
    return junit("chainops fleet migrate", cases)


def states_junit(states: Sequence[TargetState], suite: str) -> str:
    return junit(suite, [(s.name, s.ok, s.problem, 0.0) for s in states])
