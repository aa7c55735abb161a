"""`python -m bench`: generate migrations, run chainops and its peers, print Markdown.

Progress goes to stderr; the tables go to stdout and to --output.
"""

from __future__ import annotations

import argparse
import compileall
import os
import sys
import time
from pathlib import Path

from bench import imports, machine, tools, workloads
from bench.database import server
from bench.measure import TIME, BenchError
from bench.peers import setup_all
from bench.runner import GroupResult, run_group
from bench.table import medians_table, targets_table

WORKLOADS = (
    "apply",
    "noop",
    "status",
    "big",
    "verify",
    "watch",
    "fingerprint",
    "lint",
    "imports",
    "explorer",
)
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 measured runs instead of 5, for iteration",
    )
    parser.add_argument(
        "--runs", type=int, help="measured runs per cell (default 5; 3 with --quick)"
    )
    parser.add_argument(
        "--sizes",
        default="100,1000",
        help="N for apply, noop and status (default 100,1000)",
    )
    parser.add_argument(
        "--only", help=f"comma-separated workloads out of {','.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--big-mb",
        type=float,
        default=50,
        help="size of the seed file in MiB (default 50)",
    )
    parser.add_argument(
        "--verify-files", type=int, default=10_000, help="files for the verify workload"
    )
    parser.add_argument(
        "--repeat-limit",
        type=float,
        default=20,
        help="a cell whose warm-up takes longer is measured once (default 20 s)",
    )
    parser.add_argument(
        "--server-url",
        default=os.environ.get("CHAINOPS_BENCH_URL", DEFAULT_URL),
        help="admin URL of the PostgreSQL every tool uses",
    )
    parser.add_argument(
        "--work",
        type=Path,
        default=Path("/tmp/chainops-bench"),
        help="scratch folder for generated migrations and logs",
    )
    parser.add_argument(
        "--output", type=Path, help="also write the Markdown report here"
    )
    return parser


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    runs = args.runs or (3 if args.quick else 5)
    only = set(args.only.split(",")) if args.only else set(WORKLOADS)
    unknown = only - set(WORKLOADS)
    if unknown:
        _parser().error(f"unknown workload {', '.join(sorted(unknown))}")
    sizes = [int(n) for n in args.sizes.split(",")]
    big_size = int(args.big_mb * (1 << 20))
    if not Path(TIME).exists():
        _say(f"✗ {TIME} is missing; install it (apt-get install time) and run again")
        return 1
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _say("setting up peers (idempotent) ...")
    peers = setup_all()
    # An editable install leaves chainops uncompiled; a regular install (and every
    # peer's) ships bytecode, and PYTHONDONTWRITEBYTECODE would keep it that way.
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "chainops", quiet=1)
    results: list[GroupResult] = []
    extra: list[tuple[str, str, bool | None]] = []
    with server(args.server_url) as srv:
        ctx = workloads.Context(srv, peers, args.work, args.repeat_limit)
        header = machine.describe(srv, peers)

        def measure(group: workloads.Group) -> None:
            _say(f"{group.key}: {group.title}")
            results.append(run_group(ctx, group, runs))

        try:
            if "apply" in only:
                for n in sizes:
                    measure(workloads.apply_group(ctx, n))
            for n in sizes if only & {"noop", "status", "imports"} else ():
                _say(f"set-up: applying {n} migrations with each tool")
                applied = workloads.applied_databases(ctx, n)
                if "noop" in only:
                    measure(workloads.noop_group(ctx, applied))
                if "status" in only:
                    measure(workloads.status_group(ctx, applied))
                if "imports" in only and n == max(sizes):
                    extra += _import_rows(applied)
            if "big" in only:
                measure(workloads.big_group(ctx, big_size))
            if "verify" in only:
                _say(
                    f"set-up: recording {args.verify_files} blocks (chainops baseline)"
                )
                measure(workloads.verify_group(ctx, args.verify_files))
            if "watch" in only:
                from bench import watch

                watched, rows = watch.measure(ctx, runs)
                results += [watched] if watched else []
                extra += rows
            if "lint" in only:
                from bench import lint

                measure(lint.group(ctx))
            if "explorer" in only:
                from bench import explorer

                _say(f"explorer: first paint on {explorer.BLOCKS} blocks in Chromium")
                if Path(explorer.CHROMIUM).exists():
                    painted = explorer.measure(srv, args.work, runs=runs)
                    extra.append(explorer.target_row(painted))
                else:  # measured where it can be; the rest of the run is kept
                    extra.append(explorer.missing_row())
            if "fingerprint" in only:
                from bench import catalog

                measure(catalog.group(ctx))
        except BenchError as err:
            _say(f"✗ {err}")
            return 1
    elapsed = time.monotonic() - started
    report = _report(header, results, big_size, extra, runs, args.repeat_limit, elapsed)
    print("\n".join(report))
    if args.output:
        args.output.write_text("\n".join(report) + "\n", encoding="utf-8")
    return 0


def _import_rows(applied: workloads.Applied) -> list[tuple[str, str, bool | None]]:
    url, folder = applied.urls["chainops"], applied.layout.chainops
    rows: list[tuple[str, str, bool | None]] = []
    for label, command in (
        ("chainops migrate", tools.chainops("migrate", url, folder)),
        ("inv migrate", tools.inv("migrate", url, folder)),
    ):
        found = imports.imports_of(command)
        heavy = ", ".join(found.heavy()) or "none"
        rows.append(
            (
                f"noop {label} imports none of {', '.join(imports.HEAVY)}, explorer",
                f"{len(found.modules)} modules, {found.total_ms:.0f} ms of imports; "
                f"heavy: {heavy}",
                heavy == "none",
            )
        )
    return rows


def _report(
    header: list[str],
    results: list[GroupResult],
    big_size: int,
    extra: list[tuple[str, str, bool | None]],
    runs: int,
    repeat_limit: float,
    seconds: float,
) -> list[str]:
    return [
        f"## Results ({time.strftime('%Y-%m-%d %H:%M %Z')})",
        "",
        *header,
        f"- Method: 1 warm-up + {runs} measured runs per cell, round-robin across "
        "tools; whole-process wall time, peak RSS and CPU from /usr/bin/time; fresh "
        "database and CHECKPOINT before every apply run; a cell slower than "
        f"{repeat_limit:g} s is run once; the run took {seconds / 60:.1f} min",
        "",
        *medians_table(results),
        "",
        "### Targets",
        "",
        *targets_table(results, big_size, extra),
    ]


if __name__ == "__main__":
    sys.exit(main())
