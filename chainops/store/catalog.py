"""The schema fingerprint: a canonical description of the live schema from pg_catalog.

Proves that the database is the one the chain built. Identity is by name, never by OID;
chainops' own tables and extension members are left out. Never writes to the database.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import sql

from chainops.errors import ConfigError, LedgerTampered
from chainops.store.connection import Conn

FORMAT = "chainops-schema-v1"

# Report order: containers before what they contain.
KINDS = (
    "extension",
    "schema",
    "type",
    "sequence",
    "table",
    "column",
    "constraint",
    "index",
    "view",
    "materialized view",
    "function",
    "procedure",
    "aggregate",
    "trigger",
)
RELATIONS = ("table", "view", "materialized view")

Objects = Mapping[str, Mapping[str, Mapping[str, str]]]


@dataclass(frozen=True)
class Snapshot:
    """Kind → object name → attribute → text; the same schema gives equal snapshots."""

    objects: Objects

    def canonical(self) -> bytes:
        """The exact bytes the fingerprint covers: sorted, compact JSON."""
        document = {"format": FORMAT, "objects": self.objects}
        text = json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return text.encode("utf-8")


def fingerprint(snapshot: Snapshot) -> str:
    return hashlib.sha256(snapshot.canonical()).hexdigest()


def compress(snapshot: Snapshot) -> bytes:
    return zlib.compress(snapshot.canonical(), 9)


def decompress(data: bytes) -> Snapshot:
    """Read a stored snapshot back; refuse one that is damaged or of another format."""
    try:
        document = json.loads(zlib.decompress(data).decode("utf-8"))
        objects = document["objects"]
        fmt = document["format"]
    except (zlib.error, UnicodeDecodeError, ValueError, KeyError, TypeError) as err:
        raise LedgerTampered(
            f"the ledger: a stored schema snapshot cannot be read ({err}); "
            "restore the ledger from a backup"
        ) from err
    if fmt != FORMAT:
        raise ConfigError(
            f"the ledger holds a schema snapshot of format {fmt!r}, which this "
            f"chainops does not understand ({FORMAT}); upgrade chainops"
        )
    return Snapshot(objects)


# One statement; every branch yields (kind, name, attributes). Names are quoted with
# quote_ident and rendered under an empty search_path, so that every reference is
# schema-qualified the same way whatever the caller's search_path.
_QUERY = """
WITH ext AS (
    SELECT classid, objid FROM pg_depend WHERE deptype = 'e'
), nsp AS (
    SELECT n.oid, quote_ident(n.nspname) AS name
    FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND n.nspname !~ '^pg_(toast_)?temp_'
      AND ({only}::text IS NULL OR n.nspname = {only})
      AND (n.oid, 'pg_namespace'::regclass::oid) NOT IN (SELECT objid, classid FROM ext)
), own AS (
    SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = {ledger_schema} AND c.relname = ANY({ledger_tables})
), rel AS (
    SELECT c.oid, c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity,
           c.relforcerowsecurity, c.relpartbound,
           nsp.name || '.' || quote_ident(c.relname) AS name
    FROM pg_class c JOIN nsp ON nsp.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'i', 'I')
      AND c.oid NOT IN (SELECT oid FROM own)
      AND (c.oid, 'pg_class'::regclass::oid) NOT IN (SELECT objid, classid FROM ext)
      AND NOT EXISTS (  -- the sequences of chainops' identity columns
          SELECT FROM pg_depend d
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_class'::regclass
            AND d.refobjid IN (SELECT oid FROM own))
)
SELECT 'schema', name, '{{}}'::jsonb FROM nsp
UNION ALL
SELECT 'extension', quote_ident(e.extname), jsonb_build_object(
    'version', e.extversion, 'schema', quote_ident(n.nspname))
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
UNION ALL
SELECT 'type', nsp.name || '.' || quote_ident(t.typname), jsonb_strip_nulls(
    jsonb_build_object(
    'kind', CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain'
                           WHEN 'r' THEN 'range' ELSE 'composite' END,
    'labels', (SELECT string_agg(quote_literal(e.enumlabel), ', '
                                 ORDER BY e.enumsortorder)
               FROM pg_enum e WHERE e.enumtypid = t.oid),
    'type', CASE t.typtype WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod)
                           WHEN 'r' THEN (SELECT format_type(r.rngsubtype, NULL)
                                          FROM pg_range r WHERE r.rngtypid = t.oid)
            END,
    'default', t.typdefault,
    'not_null', CASE WHEN t.typnotnull THEN 'true' END,
    'constraints', (SELECT string_agg(quote_ident(c.conname) || ' '
                                      || pg_get_constraintdef(c.oid), ', '
                                      ORDER BY c.conname)
                    FROM pg_constraint c
                    WHERE c.contypid = t.oid AND c.contype <> 'n'),
    'attributes', (SELECT string_agg(quote_ident(a.attname) || ' '
                                     || format_type(a.atttypid, a.atttypmod), ', '
                                     ORDER BY a.attnum)
                   FROM pg_attribute a
                   WHERE t.typtype = 'c' AND a.attrelid = t.typrelid
                     AND a.attnum > 0 AND NOT a.attisdropped)))
FROM pg_type t JOIN nsp ON nsp.oid = t.typnamespace
WHERE (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT relkind FROM pg_class
                                WHERE oid = t.typrelid) = 'c'))
  AND (t.oid, 'pg_type'::regclass::oid) NOT IN (SELECT objid, classid FROM ext)
UNION ALL
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                      ELSE 'table' END,
       c.name, jsonb_strip_nulls(jsonb_build_object(
    'kind', CASE c.relkind WHEN 'p' THEN 'partitioned' WHEN 'f' THEN 'foreign' END,
    'unlogged', CASE WHEN c.relpersistence = 'u' THEN 'true' END,
    'row_level_security', CASE WHEN c.relrowsecurity THEN 'true' END,
    'force_row_level_security', CASE WHEN c.relforcerowsecurity THEN 'true' END,
    'options', (SELECT string_agg(o, ', ' ORDER BY o) FROM unnest(c.reloptions) o),
    'partition_key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
    'partition_bound', pg_get_expr(c.relpartbound, c.oid),
    'inherits', (SELECT string_agg(p.name, ', ' ORDER BY i.inhseqno)
                 FROM pg_inherits i JOIN rel p ON p.oid = i.inhparent
                 WHERE i.inhrelid = c.oid),
    'definition', CASE WHEN c.relkind IN ('v', 'm')
                       THEN pg_get_viewdef(c.oid, true) END))
FROM rel c WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm')
UNION ALL
SELECT 'column', c.name || '.' || quote_ident(a.attname), jsonb_strip_nulls(
    jsonb_build_object(
    'table', c.name,
    'position', row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum)::text,
    'type', format_type(a.atttypid, a.atttypmod),
    'not_null', CASE WHEN a.attnotnull THEN 'true' END,
    'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
    'generated', CASE a.attgenerated
        WHEN 's' THEN '(' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
        WHEN 'v' THEN '(' || pg_get_expr(d.adbin, d.adrelid) || ') VIRTUAL' END,
    'identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS'
                                   WHEN 'd' THEN 'BY DEFAULT' END,
    'collation', CASE WHEN a.attcollation <> t.typcollation THEN
        (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
         FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
         WHERE co.oid = a.attcollation) END))
FROM rel c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relkind IN ('r', 'p', 'f')
UNION ALL
-- contype 'n': PostgreSQL 18 also lists NOT NULL as constraints (see attnotnull);
-- 't': constraint triggers, listed as triggers.
SELECT 'constraint', c.name || '.' || quote_ident(k.conname), jsonb_build_object(
    'table', c.name, 'definition', pg_get_constraintdef(k.oid))
FROM pg_constraint k JOIN rel c ON c.oid = k.conrelid
WHERE k.contype NOT IN ('n', 't')
UNION ALL
SELECT 'index', c.name, jsonb_strip_nulls(jsonb_build_object(
    'table', r.name,
    'definition', pg_get_indexdef(i.indexrelid),
    'invalid', CASE WHEN NOT i.indisvalid THEN 'true' END))
FROM pg_index i
JOIN rel c ON c.oid = i.indexrelid
JOIN rel r ON r.oid = i.indrelid
UNION ALL
SELECT 'sequence', c.name, jsonb_strip_nulls(jsonb_build_object(
    'table', o.tbl,
    'owned_by', o.tbl || '.' || o.col,
    'unlogged', CASE WHEN c.relpersistence = 'u' THEN 'true' END,
    'type', format_type(s.seqtypid, NULL),
    'start', s.seqstart::text,
    'increment', s.seqincrement::text,
    'min', s.seqmin::text,
    'max', s.seqmax::text,
    'cache', s.seqcache::text,
    'cycle', CASE WHEN s.seqcycle THEN 'true' END))
FROM pg_sequence s
JOIN rel c ON c.oid = s.seqrelid
LEFT JOIN LATERAL (  -- the column that owns it: serial, identity or OWNED BY
    SELECT quote_ident(n.nspname) || '.' || quote_ident(t.relname) AS tbl,
           quote_ident(a.attname) AS col
    FROM pg_depend d
    JOIN pg_class t ON t.oid = d.refobjid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
      AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
      AND d.refobjsubid > 0
) o ON true
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                      ELSE 'function' END,
       nsp.name || '.' || quote_ident(p.proname) || '('
       || coalesce((SELECT string_agg(format_type(u.t, NULL), ', ' ORDER BY u.n)
                    FROM unnest(p.proargtypes) WITH ORDINALITY AS u(t, n)), '')
       || ')',
       jsonb_strip_nulls(jsonb_build_object(
    'arguments', pg_get_function_arguments(p.oid),
    'returns', pg_get_function_result(p.oid),
    'language', l.lanname,
    'window', CASE WHEN p.prokind = 'w' THEN 'true' END,
    'volatility', CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable'
                                     ELSE 'volatile' END,
    'strict', CASE WHEN p.proisstrict THEN 'true' END,
    'security_definer', CASE WHEN p.prosecdef THEN 'true' END,
    'leakproof', CASE WHEN p.proleakproof THEN 'true' END,
    'parallel', CASE p.proparallel WHEN 's' THEN 'safe' WHEN 'r' THEN 'restricted'
                                   ELSE 'unsafe' END,
    'cost', p.procost::text,
    'rows', CASE WHEN p.proretset THEN p.prorows::text END,
    'config', array_to_string(p.proconfig, ', '),
    'library', p.probin,
    'body', CASE WHEN p.prokind = 'a' THEN NULL
                 WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid)
                 ELSE p.prosrc END,
    'aggregate', (SELECT concat_ws(', ',
                      'sfunc = ' || g.aggtransfn::regprocedure::text,
                      'stype = ' || format_type(g.aggtranstype, NULL),
                      'finalfunc = ' || nullif(g.aggfinalfn, 0)::regprocedure::text,
                      'initcond = ' || quote_literal(g.agginitval))
                  FROM pg_aggregate g WHERE g.aggfnoid = p.oid)))
FROM pg_proc p
JOIN nsp ON nsp.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE (p.oid, 'pg_proc'::regclass::oid) NOT IN (SELECT objid, classid FROM ext)
  AND NOT EXISTS (  -- a range type's constructors
      SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
        AND d.objid = p.oid AND d.deptype = 'i')
UNION ALL
SELECT 'trigger', c.name || '.' || quote_ident(t.tgname), jsonb_strip_nulls(
    jsonb_build_object(
    'table', c.name,
    'definition', pg_get_triggerdef(t.oid),
    'disabled', CASE WHEN t.tgenabled = 'D' THEN 'true' END,
    'fires', CASE t.tgenabled WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END))
FROM pg_trigger t JOIN rel c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal
"""


def read_snapshot(
    conn: Conn,
    exclude_schema: str,
    exclude_tables: tuple[str, ...],
    only_schema: str | None = None,
) -> Snapshot:
    """Describe every object outside chainops' own tables, in one catalog query;
    with `only_schema`, the objects of that schema alone (a tenant's).

    The query runs with an empty search_path, which makes the catalog functions
    qualify every name they print. On an idle autocommit connection it goes in one
    simple-protocol message whose implicit transaction ends the setting with it, so
    an interrupt only cancels a read and leaves nothing to roll back; inside a
    caller's transaction the caller's search_path is put back afterwards.
    It only reads, but pg_get_viewdef takes ACCESS SHARE locks on what a view reads,
    so it waits behind an ALTER TABLE in progress.
    """
    if conn.info.server_version < 140000:  # prosqlbody and its deparser came in 14
        raise ConfigError(
            f"the schema fingerprint needs PostgreSQL 14 or newer, the server is "
            f"{conn.info.server_version // 10000}; upgrade the server"
        )
    set_path = sql.SQL("SELECT pg_catalog.set_config('search_path', {}, true);")
    parts = [
        set_path.format(sql.Literal("")),
        sql.SQL(_QUERY).format(
            ledger_schema=sql.Literal(exclude_schema),
            ledger_tables=sql.Literal(list(exclude_tables)),
            only=sql.Literal(only_schema),
        ),
    ]
    idle = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if not (conn.autocommit and idle):
        row = conn.execute("SHOW search_path").fetchone()
        parts.append(sql.SQL(";") + set_path.format(str(row[0]) if row else ""))
    cursor = conn.execute(sql.Composed(parts))
    cursor.nextset()
    rows = cursor.fetchall()
    objects: dict[str, dict[str, dict[str, str]]] = {kind: {} for kind in KINDS}
    for kind, name, attributes in rows:
        objects[str(kind)][str(name)] = attributes  # type: ignore[assignment]
    if conn.info.server_version < 160000:
        for kind in ("view", "materialized view"):
            for attributes in objects[kind].values():
                attributes["definition"] = _unqualify(attributes["definition"])
    return Snapshot(objects)


_WORD = re.compile(r'"(?:[^"]|"")*"|[A-Za-z_][\w$]*')
_SUBQUERY_STARTS = ("SELECT", "WITH", "VALUES")
_FROM_ENDS = frozenset(
    ["WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR"]
)


def _unqualify(definition: str) -> str:
    """Print a view of PostgreSQL 15 or older the way 16 and later print it.

    Up to 15 a view's query held two hidden range-table entries (OLD and NEW), so
    pg_get_viewdef qualified every column; from 16 a query that reads one relation
    prints its own columns bare. Subqueries and set operations stay qualified.
    """
    from chainops.source.statements import tokens_of  # PostgreSQL's own scanner

    tokens = tokens_of(definition)
    code = [i for i, token in enumerate(tokens) if not token.isspace()]
    depth: dict[int, int] = {}
    nested: dict[int, bool] = {}
    stack: list[bool] = []  # one entry per open parenthesis: does a subquery follow?
    for n, i in enumerate(code):
        if tokens[i] == ")" and stack:
            stack.pop()
        depth[i], nested[i] = len(stack), any(stack)
        if tokens[i] == "(":
            following = tokens[code[n + 1]].upper() if n + 1 < len(code) else ""
            stack.append(following in _SUBQUERY_STARTS)
    top = [i for i in code if depth[i] == 0]
    keyword = {i: tokens[i].upper() for i in top}
    if {"UNION", "INTERSECT", "EXCEPT"} & set(keyword.values()):
        return definition
    start = next(
        (
            i
            for n, i in enumerate(top)
            if keyword[i] == "FROM" and (n == 0 or keyword[top[n - 1]] != "DISTINCT")
        ),
        None,
    )
    if start is None:
        return definition
    end = next(
        (
            i
            for i in top
            if i > start and (keyword[i] in _FROM_ENDS or tokens[i] == ";")
        ),
        len(tokens),
    )
    source = [i for i in top if start < i < end]
    names = [tokens[i] for i in source if _WORD.fullmatch(tokens[i])]
    if not names or any(tokens[i] == "," or keyword[i] == "JOIN" for i in source):
        return definition
    refname = names[-1]
    dropped: set[int] = set()
    for n, i in enumerate(code[:-2]):
        after = [tokens[k] for k in code[n + 1 : n + 4]]
        if (
            tokens[i] == refname
            and not nested[i]
            and not start <= i < end
            and after[0] == "."
            and _WORD.fullmatch(after[1])
            and after[2:] != ["("]
            and (n == 0 or tokens[code[n - 1]] not in (".", ":"))
        ):
            dropped.update((i, code[n + 1]))
    return "".join(t for i, t in enumerate(tokens) if i not in dropped)
