"""Render results as Markdown: the medians table and the targets from the issue."""

from __future__ import annotations

from collections.abc import Sequence

from bench.runner import GroupResult, Row
from bench.workloads import PSQL_TX


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def fmt_mb(kb: int) -> str:
    return f"{kb / 1024:,.1f} MB"


def _compare(result: GroupResult, row: Row) -> str:
    ref = result.row(result.group.reference)
    if not (ref and ref.summary and row.summary) or row is ref:
        return "reference" if row is ref else ""
    if result.group.compare == "delta":
        delta = (row.summary.wall - ref.summary.wall) * 1000
        return f"{delta:+.0f} ms"
    return f"{row.summary.wall / ref.summary.wall:.2f}x"


def medians_table(results: Sequence[GroupResult]) -> list[str]:
    lines = [
        "| Workload | Tool | Wall (median) | Range | vs reference | CPU (median) "
        "| Peak RSS (median) | Load (1-min avg) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for result in results:
        for i, row in enumerate(result.rows):
            first = i == 0
            workload = f"**{result.group.title}**" if first else ""
            load = f"{result.load_start:.2f} → {result.load_end:.2f}" if first else ""
            if row.summary is None:
                note = row.note or "no data"
                lines.append(f"| {workload} | {row.tool} | {note} | | | | | {load} |")
                continue
            s = row.summary
            cells = (
                workload,
                row.tool,
                fmt_ms(s.wall),
                f"{fmt_ms(s.low)} to {fmt_ms(s.high)}" if s.runs > 1 else "1 run",
                _compare(result, row),
                fmt_ms(s.cpu) if s.cpu else "",
                fmt_mb(s.rss_kb),
                load,
            )
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def _wall(results: Sequence[GroupResult], key: str, tool: str) -> float | None:
    for result in results:
        if result.group.key == key:
            row = result.row(tool)
            if row and row.summary:
                return row.summary.wall
    return None


def _rss(results: Sequence[GroupResult], key: str, tool: str) -> int | None:
    for result in results:
        if result.group.key == key:
            row = result.row(tool)
            if row and row.summary:
                return row.summary.rss_kb
    return None


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("✓ met" if ok else "✗ not met")


PY_FLOOR = "floor: python, import psycopg, 1 query"
INV_FLOOR = "floor: python, import invoke+psycopg, 1 query"


def targets_table(
    results: Sequence[GroupResult],
    big_size: int,
    extra: Sequence[tuple[str, str, bool | None]] = (),
) -> list[str]:
    """The issue's targets, each computed from medians of the same run."""
    rows: list[tuple[str, str, bool | None]] = []

    def ratio(key: str, tool: str, ref: str, limit: float, label: str) -> None:
        a, b = _wall(results, key, tool), _wall(results, key, ref)
        if a is None or b is None:
            rows.append((label, "not measured", None))
        else:
            rows.append(
                (label, f"{a / b:.2f}x ({fmt_ms(a)} vs {fmt_ms(b)})", a / b <= limit)
            )

    def delta(key: str, tool: str, ref: str, limit_ms: float, label: str) -> None:
        a, b = _wall(results, key, tool), _wall(results, key, ref)
        if a is None or b is None:
            rows.append((label, "not measured", None))
        else:
            d = (a - b) * 1000
            rows.append(
                (label, f"{d:+.0f} ms ({fmt_ms(a)} vs {fmt_ms(b)})", d <= limit_ms)
            )

    for n in (100, 1000):
        ratio(
            f"apply-{n}",
            "chainops migrate",
            "dbmate migrate",
            1.0,
            f"apply {n}: at or below dbmate",
        )
    ratio(
        "apply-1000",
        "chainops migrate",
        PSQL_TX,
        1.15,
        "apply 1000: ≤ 1.15x psql -1 (one transaction)",
    )
    for key in ("noop-100", "noop-1000", "status-100", "status-1000"):
        verb = "migrate" if key.startswith("noop") else "status"
        task = "migrate" if verb == "migrate" else "migrate.status"
        delta(
            key,
            f"chainops {verb}",
            PY_FLOOR,
            25,
            f"{key}: chainops {verb} ≤ python+psycopg floor + 25 ms",
        )
        delta(
            key,
            f"inv {task}",
            INV_FLOOR,
            40,
            f"{key}: inv {task} ≤ python+invoke+psycopg floor + 40 ms",
        )
    ratio(
        "noop-1000",
        "chainops migrate",
        "yoyo apply",
        1.0,
        "noop-1000: chainops ahead of yoyo",
    )
    ratio(
        "noop-1000",
        "inv migrate",
        "yoyo apply",
        1.0,
        "noop-1000: inv migrate ahead of yoyo",
    )
    ratio("big", "chainops migrate", PSQL_TX, 1.2, "big: wall ≤ 1.2x psql -1")
    rss = _rss(results, "big", "chainops migrate")
    limit_kb = (2 * big_size + 60 * (1 << 20)) // 1024
    if rss is None:
        rows.append(("big: peak RSS ≤ 2x file + 60 MB", "not measured", None))
    else:
        rows.append(
            (
                f"big: peak RSS ≤ 2x file + 60 MB ({fmt_mb(limit_kb)})",
                fmt_mb(rss),
                rss <= limit_kb,
            )
        )
    wall = _wall(results, "verify-10000", "chainops verify")
    rows.append(
        (
            "verify 10,000 files < 0.5 s",
            "not measured" if wall is None else fmt_ms(wall),
            None if wall is None else wall < 0.5,
        )
    )
    rows.extend(extra)
    lines = ["| Target | Measured (medians) | Verdict |", "| --- | --- | --- |"]
    lines += [f"| {label} | {value} | {_verdict(ok)} |" for label, value, ok in rows]
    return lines
