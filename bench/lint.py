"""The lint workload: `chainops lint --all --offline` over 1,000 typical migrations.

Each file mixes what migrations hold: a table, indexes, added columns, a foreign
key, a backfill and seed rows, with its error-level findings suppressed with a
reason (so the command exits 0, as a clean CI run does) and a few warnings left.
`python -m bench.lint [N]` times the same lint in one process, without start-up.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import tools
from bench.generate import chainops_path
from bench.workloads import Cell, Context, Group

FILES = 1000
RUNS = 5
FLOOR = "floor: python, import chainops.cli"


def lint_sql(i: int) -> str:
    """One typical migration; t_{i-1} is a table an earlier file made."""
    j = max(i - 1, 0)
    return f"""-- Migration: lint-bench-{i}
-- chainops:lint-ignore=index-not-concurrent,constraint-not-valid bench tables are empty
CREATE TABLE IF NOT EXISTS t_{i} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    created timestamptz NOT NULL DEFAULT now(),
    note varchar(200)
);
CREATE INDEX t_{i}_created ON t_{i} (created);
ALTER TABLE t_{i} ADD COLUMN score int DEFAULT 0;
ALTER TABLE t_{j} ADD COLUMN ref_{i} bigint;
ALTER TABLE t_{j} ADD CONSTRAINT t_{j}_ref_{i} FOREIGN KEY (ref_{i})
    REFERENCES t_{i} (id) NOT VALID;
CREATE INDEX t_{j}_ref_{i} ON t_{j} (ref_{i});
UPDATE t_{j} SET ref_{i} = NULL WHERE id < 0;
INSERT INTO t_{i} (name) VALUES ('first'), ('second');
"""


def write_lint_files(root: Path, n: int = FILES) -> Path:
    """Write `n` migrations in chainops' layout under root/chainops; return it."""
    base = root / "chainops"
    if base.exists():
        shutil.rmtree(base)
    for i in range(n):
        path = chainops_path(base, i, f"lint-{i}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(lint_sql(i), encoding="utf-8")
    return base


def group(ctx: Context, n: int = FILES) -> Group:
    folder = write_lint_files(ctx.work / f"lint-{n}", n)
    url = ctx.server.url  # --offline: never connects
    cells = (
        Cell(
            "chainops lint --all --offline",
            lambda: tools.chainops("lint", url, folder, "--all", "--offline"),
        ),
        Cell(FLOOR, lambda: tools.python_floor(url, "import chainops.cli")),
    )
    return Group(f"lint-{n}", f"lint {n} files (static rules)", cells, FLOOR, "delta")


def main() -> None:
    from chainops.config import load_settings
    from chainops.lint import verb

    n = int(sys.argv[1]) if len(sys.argv) > 1 else FILES
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_lint_files(Path(scratch), n)
        settings = load_settings(cwd=Path(scratch), migrations_dir=folder)
        seconds = []
        for _ in range(RUNS + 1):  # the first run also imports pglast
            started = time.perf_counter()
            report = verb.lint(settings, all_files=True, offline=True)
            seconds.append(time.perf_counter() - started)
    warm = seconds[1:]
    shown = len(report.shown)
    print(
        f"lint {n} files in one process: first {seconds[0] * 1000:.0f} ms, then "
        f"median {statistics.median(warm) * 1000:.0f} ms of {RUNS}; "
        f"{len(report.findings)} findings, {shown} shown, {report.errors} errors"
    )


if __name__ == "__main__":
    main()
