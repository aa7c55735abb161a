"""Time the schema fingerprint on a large schema: 500 tables, 5,000 columns, 1,000
indexes (plus the 500 primary keys) and 300 functions in a throwaway database.

`python -m bench.fingerprint [--url URL]`; without --url it uses DATABASE_URL, else the
project's embedded PostgreSQL. Prints the median of 5 runs of read_snapshot+fingerprint.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from chainops.store import catalog as schema
from chainops.store import connection as db
from chainops.store import ledger, server

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "chainops_bench_fingerprint"
TABLES, COLUMNS_PER_TABLE, INDEXES_PER_TABLE, FUNCTIONS = 500, 10, 2, 300
RUNS = 5

_TABLE = """CREATE TABLE {table} (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id bigint REFERENCES {parent} (id),
    name text NOT NULL DEFAULT '',
    amount numeric(12, 2) NOT NULL DEFAULT 0 CHECK (amount >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    active boolean NOT NULL DEFAULT true,
    payload jsonb,
    code varchar(50),
    day date,
    note text
);
CREATE INDEX {by_name} ON {table} (name, created_at DESC);
CREATE INDEX {by_code} ON {table} (lower(code)) WHERE active;
"""
_FUNCTION = """CREATE FUNCTION {function}(p_id bigint, p_min numeric DEFAULT 0)
RETURNS numeric LANGUAGE plpgsql STABLE AS $$
DECLARE
    total numeric;
BEGIN
    SELECT coalesce(sum(amount), 0) INTO total FROM {table}
     WHERE parent_id = p_id AND amount >= p_min;
    RETURN total;
END
$$;
"""


def build(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """Create the schema in one transaction."""
    with conn.transaction():
        for n in range(TABLES):
            table = sql.Identifier(f"t{n:03d}")
            parent = sql.Identifier(f"t{max(n - 1, 0):03d}")
            conn.execute(
                sql.SQL(_TABLE).format(
                    table=table,
                    parent=parent,
                    by_name=sql.Identifier(f"t{n:03d}_name_idx"),
                    by_code=sql.Identifier(f"t{n:03d}_code_idx"),
                )
            )
        for n in range(FUNCTIONS):
            conn.execute(
                sql.SQL(_FUNCTION).format(
                    function=sql.Identifier(f"f{n:03d}"),
                    table=sql.Identifier(f"t{n % TABLES:03d}"),
                )
            )


def measure(conn: psycopg.Connection[tuple[object, ...]]) -> list[float]:
    tables = (ledger.TABLE, ledger.HISTORY, ledger.META)
    seconds = []
    for _ in range(RUNS):
        start = time.perf_counter()
        schema.fingerprint(schema.read_snapshot(conn, "public", tables))
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default=os.environ.get("DATABASE_URL"))
    url = parser.parse_args().url
    if not url:
        url = server.ensure_running(ROOT, dbname="postgres").conninfo
    with psycopg.connect(url, autocommit=True) as admin:
        version = admin.execute("SHOW server_version").fetchone()
        db.drop_database(admin, DATABASE)
        db.create_database(admin, DATABASE)
    try:
        with psycopg.connect(make_conninfo(url, dbname=DATABASE)) as conn:
            conn.autocommit = True
            build(conn)
            snapshot = schema.read_snapshot(conn, "public", ())
            counts = {kind: len(snapshot.objects[kind]) for kind in schema.KINDS}
            seconds = measure(conn)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            db.drop_database(admin, DATABASE)
    print(f"PostgreSQL {version[0] if version else '?'}")
    print(", ".join(f"{n} {kind}" for kind, n in counts.items() if n))
    print(
        f"snapshot: {len(snapshot.canonical()):,} bytes canonical JSON, "
        f"{len(schema.compress(snapshot)):,} bytes compressed"
    )
    median = statistics.median(seconds) * 1000
    runs = ", ".join(f"{s * 1000:.0f}" for s in seconds)
    print(f"read_snapshot + fingerprint: median {median:.0f} ms of {RUNS} ({runs} ms)")


if __name__ == "__main__":
    main()
