"""Turn results into text lines and JSON documents; pure, it never prints."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from chainops.chain import format_time
from chainops.errors import DriftError, short, with_more
from chainops.events import (
    Applied,
    BackedUp,
    DriftFound,
    Event,
    Linted,
    LockStale,
    OutOfOrderAllowed,
    SchemaFileWritten,
    Waiting,
)
from chainops.model import Finding, FindingKind, Mode, State
from chainops.results import (
    ApplyResult,
    Entry,
    LockReport,
    StatusReport,
    VerifyReport,
)

OK, PENDING, BAD, WAIT = "✓", "○", "✗", "…"
_COLOURS = {OK: "32", PENDING: "33", BAD: "31", WAIT: "36"}


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return (
        not os.environ.get("NO_COLOR") and hasattr(stream, "isatty") and stream.isatty()
    )


def _mark(symbol: str, colour: bool) -> str:
    return f"\x1b[{_COLOURS[symbol]}m{symbol}\x1b[0m" if colour else symbol


def _display_time(entry_time: Any) -> str:
    return format_time(entry_time)[:-4] + "Z"  # milliseconds, as in the design


def _label(number: int) -> str:
    """`#1005` for a numbered migration, `R` for a repeatable file (#1000 in JSON)."""
    return "R" if number % 1000 == 0 else f"#{number}"


def event_line(event: Event, colour: bool = False) -> str:
    if isinstance(event, Applied):
        extra = ", no transaction" if event.block.mode == Mode.NO_TRANSACTION else ""
        if event.block.is_repeatable or event.block.is_revert:
            extra = f", {event.block.mode}, block {event.block.height}"
        return (
            f"{_mark(OK, colour)} {_label(event.file.number)} {event.file.filename} "
            f"({event.duration_ms} ms{extra})"
        )
    if isinstance(event, Waiting):
        holder = event.holder
        if holder is None:
            return f"{_mark(WAIT, colour)} waiting for another run's ledger lock"
        since = f" since {holder.since:%H:%M:%S}" if holder.since else ""
        return (
            f"{_mark(WAIT, colour)} waiting for the ledger lock held by pid "
            f"{holder.pid} ({holder.application_name}){since}"
        )
    if isinstance(event, OutOfOrderAllowed):
        return (
            f"{_mark(PENDING, colour)} applying {event.file.path} out of order "
            f"(below the applied {event.applied_path}), as --allow-out-of-order asks"
        )
    if isinstance(event, DriftFound):
        lines = [
            f"{_mark(OK, colour)} {event.drift.message()}; recorded as drift "
            f"block {event.block.height}, so the chain shows who changed what"
        ]
        lines += [f"  {change}" for change in event.drift.changes[1:]]
        return "\n".join(lines)
    if isinstance(event, SchemaFileWritten):
        if event.error:
            return f"{_mark(BAD, colour)} {event.path} was not refreshed: {event.error}"
        return f"{_mark(OK, colour)} refreshed {event.path}"
    if isinstance(event, BackedUp):
        return (
            f"{_mark(OK, colour)} backed up to {event.path} (restore: {event.restore})"
        )
    if isinstance(event, Linted):  # lines read `path:line:col: severity rule ...`
        return "\n".join(
            f"{_mark(BAD if ': error ' in line else PENDING, colour)} {line}"
            for line in event.lines
        )
    if isinstance(event, LockStale):
        message = with_more(event.findings[0].message, len(event.findings) - 1)
        return (
            f"{_mark(PENDING, colour)} {message} "
            "(production refuses files that do not match chain.lock)"
        )
    return (
        f"{_mark(WAIT, colour)} started the embedded PostgreSQL {event.version} "
        f"with its data in {event.data_dir} (inv db.url prints how to connect, "
        "inv db.stop stops it)"
    )


def plan_lines(
    result: ApplyResult, show_sql: bool = False, colour: bool = False
) -> list[str]:
    """What a dry run would do, file by file."""
    lines = []
    for p in result.planned:
        how = "in one transaction"
        if not p.transactional:
            count = f"{p.statements} statements" if p.statements else "statements"
            how = f"{count} one by one without a transaction ({p.reason})"
        label = _label(p.file.number)
        lines.append(f"{_mark(PENDING, colour)} {label} {p.file.path}: {how}")
        if show_sql:
            lines += [f"    {line}" for line in p.file.text.rstrip().splitlines()]
    n = len(result.planned)
    lines.append(
        f"Dry run: {n} migration{'s' if n != 1 else ''} would be applied on top of "
        f"block {result.height}; nothing was changed"
    )
    return lines


def apply_summary(result: ApplyResult) -> str:
    head = f"chain head {short(result.head)} (block {result.height})"
    if not result.applied:
        return f"Nothing to apply: {result.migrations} migrations applied, {head}"
    ms = sum(a.duration_ms for a in result.applied)
    n = len(result.applied)
    return f"Applied {n} migration{'s' if n != 1 else ''} in {ms} ms; {head}"


_APPLIED = (State.APPLIED, State.CHANGED, State.MISSING)
_FAILED = (State.FAILED, State.RUNNING)
_STATE_TEXT = {
    State.PENDING: "pending",
    State.FAILED: "failed",
    State.RUNNING: "stopped midway",
    State.CHANGED: "edited after it was applied",
    State.MISSING: "applied, file missing",
}


def baseline_summary(result: ApplyResult) -> str:
    n = len(result.applied)
    return (
        f"Baselined {n} migration{'s' if n != 1 else ''} without running them; "
        f"chain head {short(result.head)} (block {result.height})"
    )


def status_lines(report: StatusReport, colour: bool = False) -> list[str]:
    digits = max((len(str(e.number)) for e in report.entries), default=4)
    labels = [
        f"{_label(e.number).ljust(digits + 1)} {e.path.rsplit('/', 1)[-1]}"
        for e in report.entries
    ]
    width = max((len(label) for label in labels), default=0) + 2
    lines = []
    for e, label in zip(report.entries, labels, strict=False):
        name = label.ljust(width)
        if e.state == State.APPLIED:
            symbol, text = OK, _display_time(e.applied_at)
        elif e.state == State.PENDING:
            symbol, text = PENDING, "pending"
            if e.block is not None:  # a repeatable file changed since this block
                text += f" (changed since block {e.block.height})"
        elif e.state == State.REVERTED and e.block is not None:
            symbol = PENDING
            text = f"reverted (block {e.block.height})"
            if e.block.is_revert:
                text = f"revert, block {e.block.height} {_display_time(e.applied_at)}"
        elif e.state == State.REMOVED and e.block is not None:
            symbol = PENDING
            text = f"removed, its objects stay (last applied in block {e.block.height})"
        else:
            symbol, text = BAD, _STATE_TEXT.get(e.state, e.state)
            if e.error:
                text += f": {e.error}"
        lines.append(f"{_mark(symbol, colour)} {name}{text}".rstrip())
    lines.append(
        f"{report.count(*_APPLIED)} applied, "
        f"{report.count(State.PENDING)} pending, "
        f"{report.count(*_FAILED)} failed; "
        f"chain head {short(report.head)} (block {report.height})"
    )
    return lines


def finding_lines(findings: Sequence[object], colour: bool = False) -> list[str]:
    lines: list[str] = []
    drift = [
        f for f in findings if isinstance(f, Finding) and f.kind == FindingKind.SCHEMA
    ]
    for f in findings:
        if not isinstance(f, Finding) or f.kind == FindingKind.SCHEMA:
            continue
        if f.kind == FindingKind.CHANGED:
            lines += [
                f"{_mark(BAD, colour)} Hash mismatch for {f.path}",
                f"  Expected: {short(f.expected)}",
                f"  Current:  {short(f.current)}",
                "  Solution: restore the file from git and put the change in a new "
                "migration (inv migrate.create)",
            ]
        else:
            lines.append(f"{_mark(BAD, colour)} {f.message}")
    if drift:
        lines += [
            f"{_mark(BAD, colour)} Schema drift: the live schema "
            f"({short(drift[0].current)}) differs from the head block's fingerprint "
            f"({short(drift[0].expected)})",
            *(f"  {f.message}" for f in drift),
            "  Solution: undo these changes, or record them with "
            "inv migrate --accept-drift",
        ]
    return lines


def verify_lines(report: VerifyReport, colour: bool = False) -> list[str]:
    if report.files_only:
        head = f"chain.lock head {short(report.lock_head)}"
        if report.ok:
            matches = f"chain.lock matches {_files(report.files)}"
            return [f"{_mark(OK, colour)} {matches}; head {short(report.lock_head)}"]
    else:
        head = f"chain head {short(report.head)} (block {report.height})"
        if report.ok:
            lock = " and chain.lock" if report.lock_head else ""
            return [
                f"{_mark(OK, colour)} Chain intact: {_count(report.height, 'block')} "
                f"verified against {_files(report.files)}{lock}; "
                f"head {short(report.head)}"
            ]
    n = len(report.findings)
    return [
        *finding_lines(report.findings, colour),
        f"{n} problem{'s' if n != 1 else ''} found; {head}",
    ]


def _files(n: int) -> str:
    return _count(n, "file")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def head_line(report: VerifyReport) -> str:
    """The verified head alone, for deploy logs: the ledger's, or the lock's offline."""
    return (report.lock_head if report.files_only else report.head) or ""


def lock_lines(result: LockReport, colour: bool = False) -> list[str]:
    """What `lock` wrote, and each path it added, removed or re-hashed."""
    summary = f"{_files(result.files)}, head {short(result.head)}"
    c = result.changes
    if result.previous == "missing":
        return [
            f"{_mark(OK, colour)} wrote chain.lock: {summary}; commit it with the "
            "migrations"
        ]
    if result.previous == "unreadable":
        return [f"{_mark(OK, colour)} rewrote the unreadable chain.lock: {summary}"]
    if not (c.added or c.removed or c.changed):
        return [f"{_mark(OK, colour)} chain.lock was up to date: {summary}"]
    return [
        f"{_mark(OK, colour)} updated chain.lock: {summary}",
        *(f"  + {p}" for p in c.added),
        *(f"  - {p}" for p in c.removed),
        *(f"  ~ {p} (content changed since it was locked)" for p in c.changed),
    ]


def display_path(path: Path, cwd: Path) -> str:
    """A path relative to the working folder when it lies inside it."""
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "kind": str(f.kind),
        "path": f.path,
        "message": f.message,
        "expected": f.expected,
        "current": f.current,
    }


def entry_json(entry: Entry) -> dict[str, Any]:
    """One migration as `status --json` and the explorer's JSON show it."""
    block = entry.block
    return {
        "number": entry.number,
        "path": entry.path,
        "state": str(entry.state),
        "applied_at": format_time(entry.applied_at) if entry.applied_at else None,
        "height": block.height if block else None,
        "block_hash": block.block_hash if block else None,
        "previous_hash": block.previous_hash if block else None,
        "content_hash": block.content_hash if block else None,
        "mode": block.mode if block else None,
        "duration_ms": block.duration_ms if block else None,
        "applied_by": block.applied_by if block else None,
        "error": entry.error,
    }


def status_document(report: StatusReport) -> dict[str, Any]:
    return {
        "migrations": [entry_json(e) for e in report.entries],
        "summary": {
            "applied": report.count(*_APPLIED),
            "pending": report.count(State.PENDING),
            "failed": report.count(*_FAILED),
            "head": report.head,
            "height": report.height,
        },
        "problems": [finding_json(f) for f in report.findings],
    }


def status_json(report: StatusReport) -> str:
    return json.dumps(status_document(report), indent=2)


def verify_json(report: VerifyReport) -> str:
    return json.dumps(
        {
            "ok": report.ok,
            "head": None if report.files_only else report.head,
            "height": None if report.files_only else report.height,
            "files": report.files,
            "lock_head": report.lock_head,
            "files_only": report.files_only,
            "problems": [finding_json(f) for f in report.findings],
        },
        indent=2,
    )


def error_lines(err: Exception, colour: bool = False) -> list[str]:
    """Lines for a ChainopsError: one problem, one message.

    An error that names its first finding is not printed after the findings again:
    a finding of one line is the error itself; otherwise the findings are followed
    by how many there were and what happened (nothing was applied).
    """
    line = f"{_mark(BAD, colour)} {err}"
    if not isinstance(err, DriftError) or not err.findings:
        return [line]
    found = [f for f in err.findings if isinstance(f, Finding)]
    subject = found[0].message.partition("; ")[0] if found else None
    if not subject or not str(err).startswith(subject):
        return [*finding_lines(err.findings, colour), line]
    detailed = (FindingKind.CHANGED, FindingKind.SCHEMA)
    if len(err.findings) == 1 and found[0].kind not in detailed:
        return [line]
    n = len(err.findings)
    outcome = str(err).rpartition("; ")[2]
    return [
        *finding_lines(err.findings, colour),
        f"{n} problem{'s' if n != 1 else ''} found; {outcome}",
    ]
