"""The fingerprint workload: one process that reads and hashes a large schema's catalog.

The schema is the one bench/fingerprint.py builds (its in-process timing loop is
separate).
"""

from __future__ import annotations

import psycopg

from bench import tools
from bench.workloads import Cell, Context, Group

FLOOR = "floor: python, import psycopg, 1 query"

_FINGERPRINT = (
    "import os, psycopg; from chainops.store import catalog, ledger; "
    "conn = psycopg.connect(os.environ['DATABASE_URL'], autocommit=True); "
    "print(catalog.fingerprint(catalog.read_snapshot(conn, 'public', ledger.TABLES)))"
)


def group(ctx: Context) -> Group:
    from bench import fingerprint

    url = ctx.server.fresh("chainops_bench_schema")
    with psycopg.connect(url, autocommit=True) as conn:
        fingerprint.build(conn)
    ctx.server.checkpoint()
    tables = fingerprint.TABLES
    size = (
        f"{tables} tables, {tables * fingerprint.COLUMNS_PER_TABLE} columns, "
        f"{tables * fingerprint.INDEXES_PER_TABLE} indexes, "
        f"{fingerprint.FUNCTIONS} functions"
    )
    cells = (
        Cell(
            "python: read_snapshot + fingerprint",
            lambda: tools.python_floor(url, _FINGERPRINT),
        ),
        Cell(FLOOR, lambda: tools.python_floor(url, tools.FLOOR_PSYCOPG)),
    )
    return Group(
        "fingerprint", f"fingerprint of a large schema ({size})", cells, FLOOR, "delta"
    )
