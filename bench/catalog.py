"""The fingerprint workload: one process that reads and hashes a large schema's catalog.

The schema is the one bench/fingerprint.py builds (its in-process timing loop is
separate); measured only once chainops.schema offers read_snapshot and fingerprint.
"""

from __future__ import annotations

import importlib.util

import psycopg

from bench import tools
from bench.workloads import Cell, Context, Group

NOT_AVAILABLE = "not available yet (chainops.schema has no read_snapshot/fingerprint)"
FLOOR = "floor: python, import psycopg, 1 query"

_FINGERPRINT = (
    "import os, psycopg; from chainops import ledger, schema; "
    "conn = psycopg.connect(os.environ['DATABASE_URL'], autocommit=True); "
    "tables = (ledger.TABLE, ledger.HISTORY, ledger.META); "
    "print(schema.fingerprint(schema.read_snapshot(conn, 'public', tables)))"
)


def available() -> bool:
    if importlib.util.find_spec("chainops.schema") is None:
        return False
    from chainops.store import catalog as schema

    return hasattr(schema, "read_snapshot") and hasattr(schema, "fingerprint")


def group(ctx: Context) -> Group | None:
    if not available():
        return None
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
