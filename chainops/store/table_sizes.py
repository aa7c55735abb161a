"""How big the tables a migration locks are, from pg_class: the linter's one query.

Read-only and best effort: a failed read leaves the size-aware rule silent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import psycopg

from chainops.lint.check import TableSize
from chainops.store.connection import Conn

log = logging.getLogger(__name__)

# reltuples is the planner's estimate (-1 before the first VACUUM or ANALYZE, from
# PostgreSQL 14); pg_total_relation_size counts the heap, TOAST and indexes.
_QUERY = """
SELECT t.key, c.reltuples::bigint, pg_catalog.pg_total_relation_size(c.oid)
FROM unnest(%s::text[], %s::text[], %s::text[]) AS t(key, nsp, rel)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(
    CASE WHEN t.nsp = '' THEN pg_catalog.quote_ident(t.rel)
    ELSE pg_catalog.quote_ident(t.nsp) || '.' || pg_catalog.quote_ident(t.rel) END)
WHERE c.relkind IN ('r', 'p', 'm')
"""


def read_table_sizes(conn: Conn, tables: Iterable[str]) -> dict[str, TableSize]:
    """Sizes of the named tables (`name` or `schema.name`) that exist; the others
    are left out."""
    keys = sorted(set(tables))
    if not keys:
        return {}
    schemas = [key.rpartition(".")[0] for key in keys]
    names = [key.rpartition(".")[2] for key in keys]
    try:
        rows = conn.execute(_QUERY, (keys, schemas, names)).fetchall()
    except psycopg.Error as err:
        log.debug("table sizes not read: %s", err)
        return {}
    found = {}
    for key, estimate, size in rows:
        count = int(str(estimate)) if estimate is not None else -1
        found[str(key)] = TableSize(count if count >= 0 else None, int(str(size)))
    return found


def read_server_version(conn: Conn) -> int:
    """The server's major version, e.g. 16."""
    return int(conn.info.server_version) // 10000
