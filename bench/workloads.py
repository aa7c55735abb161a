"""The workloads: which tools run in each, what is prepared (untimed) before each run.

A Group's cells are run round-robin (one warm-up round, then the measured rounds), so
a burst of load from elsewhere on the machine hits every tool alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench import tools
from bench.database import Server
from bench.generate import Layout, write_big, write_tiny
from bench.measure import BenchError, run_once, tail
from bench.peers import Peer

Prepare = Callable[[], tools.Command]
PSQL_TX = "psql -1, all files in one transaction (floor)"  # apply and big reference
PSQL_ONE = "psql, all files in one (floor)"  # autocommit: a commit per statement
PSQL_PER_FILE = "psql -f per file (floor)"
PER_FILE_LIMIT = 100  # one psql per file: 45 s at 1000, so measured up to 100 only


@dataclass(frozen=True)
class Cell:
    tool: str
    prepare: Prepare | None  # builds the command, after untimed set-up (fresh DB)
    missing: str = ""  # why this cell cannot run (peer not installed, module absent)
    timeout: float = 600.0  # a run still going then is stopped and reported


@dataclass(frozen=True)
class Group:
    key: str  # e.g. apply-1000
    title: str
    cells: tuple[Cell, ...]
    reference: str = ""  # the tool the others are compared with
    compare: str = "ratio"  # ratio or delta (ms)


@dataclass
class Context:
    server: Server
    peers: dict[str, Peer]
    work: Path  # scratch folder for migrations and logs
    repeat_limit: float = 20.0  # seconds: a slower cell is measured once


def _peer_cell(
    ctx: Context,
    tool: str,
    peer: str,
    make: Callable[[Peer], Prepare],
) -> Cell:
    found = ctx.peers.get(peer)
    if found is None or found.missing:
        return Cell(
            tool, None, missing=f"missing: {found.missing if found else 'not set up'}"
        )
    return Cell(tool, make(found))


def setup(ctx: Context, command: tools.Command, what: str) -> None:
    """Run an untimed set-up command; raise BenchError with its last lines on error."""
    log = ctx.work / "logs" / "setup.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    sample = run_once(command.argv, command.env, command.cwd, log)
    if sample.code != 0:
        raise BenchError(f"{what} failed (exit {sample.code}): {tail(log)}")


def _fresh(ctx: Context, name: str, make: Callable[[str], tools.Command]) -> Prepare:
    return lambda: make(ctx.server.fresh(f"chainops_bench_{name}"))


def apply_cells(ctx: Context, layout: Layout, key: str) -> list[Cell]:
    """chainops and its peers each applying `layout` to a fresh, checkpointed DB."""
    return [
        Cell(
            "chainops migrate",
            _fresh(
                ctx,
                f"{key}_chainops",
                lambda u: tools.chainops("migrate", u, layout.chainops),
            ),
        ),
        _peer_cell(
            ctx,
            "dbmate migrate",
            "dbmate",
            lambda p: _fresh(
                ctx,
                f"{key}_dbmate",
                lambda u: tools.dbmate(p, "migrate", u, layout.dbmate),
            ),
        ),
        _peer_cell(
            ctx,
            "graphile-migrate migrate",
            "graphile-migrate",
            lambda p: _fresh(
                ctx,
                f"{key}_graphile",
                lambda u: tools.graphile(p, "migrate", u, layout.graphile),
            ),
        ),
        _peer_cell(
            ctx,
            "yoyo apply",
            "yoyo",
            lambda p: _fresh(
                ctx, f"{key}_yoyo", lambda u: tools.yoyo(p, "apply", u, layout.yoyo)
            ),
        ),
    ]


def psql_cells(
    ctx: Context,
    layout: Layout,
    key: str,
    per_file: bool = True,
    autocommit: bool = True,
) -> list[Cell]:
    """The psql floors: the single-transaction one always, the others on request."""
    cells = []
    if per_file:
        cells.append(
            _peer_cell(
                ctx,
                PSQL_PER_FILE,
                "psql",
                lambda p: _fresh(
                    ctx,
                    f"{key}_psqlf",
                    lambda u: tools.psql_per_file(p, u, layout.root / "plain"),
                ),
            )
        )
    if autocommit:
        cells.append(
            _peer_cell(
                ctx,
                PSQL_ONE,
                "psql",
                lambda p: _fresh(
                    ctx,
                    f"{key}_psql",
                    lambda u: tools.psql_single(p, u, layout.concatenated),
                ),
            )
        )
    cells.append(
        _peer_cell(
            ctx,
            PSQL_TX,
            "psql",
            lambda p: _fresh(
                ctx,
                f"{key}_psql1",
                lambda u: tools.psql_single(p, u, layout.concatenated, True),
            ),
        )
    )
    return cells


def apply_group(ctx: Context, n: int) -> Group:
    layout = write_tiny(ctx.work / f"tiny-{n}", n)
    key = f"apply{n}"
    cells = apply_cells(ctx, layout, key) + psql_cells(
        ctx, layout, key, per_file=n <= PER_FILE_LIMIT
    )
    return Group(
        f"apply-{n}", f"apply {n} from an empty database", tuple(cells), PSQL_TX
    )


@dataclass(frozen=True)
class Applied:
    """Databases with every migration of one layout applied, one per tool."""

    layout: Layout
    urls: dict[str, str]


def applied_databases(ctx: Context, n: int) -> Applied:
    """Apply N tiny migrations once with each tool (untimed), for noop and status."""
    layout = write_tiny(ctx.work / f"tiny-{n}", n)
    urls = {"chainops": ctx.server.fresh(_noop_db(n, "chainops"))}
    setup(
        ctx,
        tools.chainops("migrate", urls["chainops"], layout.chainops),
        "chainops set-up",
    )
    appliers: dict[str, Callable[[Peer, str], tools.Command]] = {
        "dbmate": lambda p, u: tools.dbmate(p, "migrate", u, layout.dbmate),
        "graphile-migrate": lambda p, u: tools.graphile(
            p, "migrate", u, layout.graphile
        ),
        "yoyo": lambda p, u: tools.yoyo(p, "apply", u, layout.yoyo),
    }
    for name, apply in appliers.items():
        peer = ctx.peers.get(name)
        if peer and not peer.missing:
            url = urls[name] = ctx.server.fresh(_noop_db(n, name))
            setup(ctx, apply(peer, url), f"{name} set-up")
    for name in urls:
        ctx.server.settle(_noop_db(n, name))
    return Applied(layout, urls)


def _noop_db(n: int, tool: str) -> str:
    return f"chainops_bench_noop{n}_{tool.replace('-', '_')}"


def _floors(ctx: Context, url: str) -> list[Cell]:
    return [
        Cell(
            "floor: python, import psycopg, 1 query",
            lambda: tools.python_floor(url, tools.FLOOR_PSYCOPG),
        ),
        Cell(
            "floor: python, import invoke+psycopg, 1 query",
            lambda: tools.python_floor(url, tools.FLOOR_INVOKE),
        ),
    ]


def _on(applied: Applied, tool: str, make: Callable[[str], tools.Command]) -> Prepare:
    return lambda: make(applied.urls[tool])


def noop_group(ctx: Context, applied: Applied) -> Group:
    a, n = applied, applied.layout.count
    cells = [
        Cell(
            "chainops migrate",
            _on(
                a, "chainops", lambda u: tools.chainops("migrate", u, a.layout.chainops)
            ),
        ),
        Cell(
            "inv migrate",
            _on(a, "chainops", lambda u: tools.inv("migrate", u, a.layout.chainops)),
        ),
        _peer_cell(
            ctx,
            "dbmate migrate",
            "dbmate",
            lambda p: _on(
                a, "dbmate", lambda u: tools.dbmate(p, "migrate", u, a.layout.dbmate)
            ),
        ),
        _peer_cell(
            ctx,
            "graphile-migrate migrate",
            "graphile-migrate",
            lambda p: _on(
                a,
                "graphile-migrate",
                lambda u: tools.graphile(p, "migrate", u, a.layout.graphile),
            ),
        ),
        _peer_cell(
            ctx,
            "yoyo apply",
            "yoyo",
            lambda p: _on(
                a, "yoyo", lambda u: tools.yoyo(p, "apply", u, a.layout.yoyo)
            ),
        ),
        *_floors(ctx, a.urls["chainops"]),
    ]
    return Group(
        f"noop-{n}",
        f"noop: all {n} applied (dev restart)",
        tuple(cells),
        "floor: python, import psycopg, 1 query",
        "delta",
    )


def status_group(ctx: Context, applied: Applied) -> Group:
    a, n = applied, applied.layout.count
    cells = [
        Cell(
            "chainops status",
            _on(
                a, "chainops", lambda u: tools.chainops("status", u, a.layout.chainops)
            ),
        ),
        Cell(
            "inv migrate.status",
            _on(
                a,
                "chainops",
                lambda u: tools.inv("migrate.status", u, a.layout.chainops),
            ),
        ),
        _peer_cell(
            ctx,
            "dbmate status",
            "dbmate",
            lambda p: _on(
                a, "dbmate", lambda u: tools.dbmate(p, "status", u, a.layout.dbmate)
            ),
        ),
        # Exits 1 while committed migrations are pending, 0 once all are applied
        # and migrations/current.sql is empty or absent, as here.
        _peer_cell(
            ctx,
            "graphile-migrate status",
            "graphile-migrate",
            lambda p: _on(
                a,
                "graphile-migrate",
                lambda u: tools.graphile(p, "status", u, a.layout.graphile),
            ),
        ),
        _peer_cell(
            ctx,
            "yoyo list",
            "yoyo",
            lambda p: _on(a, "yoyo", lambda u: tools.yoyo(p, "list", u, a.layout.yoyo)),
        ),
        *_floors(ctx, a.urls["chainops"]),
    ]
    return Group(
        f"status-{n}",
        f"status: all {n} applied",
        tuple(cells),
        "floor: python, import psycopg, 1 query",
        "delta",
    )


def big_group(ctx: Context, size: int) -> Group:
    layout = write_big(ctx.work / "big", size)
    cells = apply_cells(ctx, layout, "big") + psql_cells(
        ctx, layout, "big", per_file=False, autocommit=False
    )
    mb = size / (1 << 20)
    return Group(
        "big",
        f"big: one {mb:.0f} MiB seed file of multi-row INSERTs",
        tuple(cells),
        PSQL_TX,
    )


def verify_group(ctx: Context, n: int) -> Group:
    layout = write_tiny(ctx.work / f"tiny-{n}", n)
    url = ctx.server.fresh(f"chainops_bench_verify{n}")
    # Blocks recorded without running the files: verify reads the same ledger and
    # files either way, and 10,000 empty tables would only slow down the set-up.
    # Baseline adopts only a database that holds something: give it one table.
    with psycopg.connect(ctx.server.conninfo_for(f"chainops_bench_verify{n}")) as conn:
        conn.execute("CREATE TABLE adopted (id int)")
    through = str(layout.last_number)
    setup(
        ctx,
        tools.chainops("baseline", url, layout.chainops, "--through", through),
        "chainops set-up",
    )
    ctx.server.settle(f"chainops_bench_verify{n}")
    cells = (
        Cell("chainops verify", lambda: tools.chainops("verify", url, layout.chainops)),
        Cell(
            "inv migrate.verify",
            lambda: tools.inv("migrate.verify", url, layout.chainops),
        ),
        Cell(
            "chainops migrate (noop)",
            lambda: tools.chainops("migrate", url, layout.chainops),
        ),
        *_floors(ctx, url),
    )
    return Group(
        f"verify-{n}",
        f"verify {n} applied files",
        cells,
        "floor: python, import psycopg, 1 query",
        "delta",
    )
