"""Snapshots without a database: canonical bytes, storage, and the view normaliser."""

from __future__ import annotations

import zlib

import pytest

from chainops.errors import ConfigError, LedgerTampered
from chainops.store import catalog as schema

OBJECTS: dict[str, dict[str, dict[str, str]]] = {
    "table": {"public.b": {}, "public.a": {"unlogged": "true"}},
    "schema": {},
}


def test_fingerprint_is_equal_when_objects_were_inserted_in_another_order():
    reordered: dict[str, dict[str, dict[str, str]]] = {
        "schema": {},
        "table": {"public.a": {"unlogged": "true"}},
    }
    reordered["table"]["public.b"] = {}

    assert schema.fingerprint(schema.Snapshot(OBJECTS)) == schema.fingerprint(
        schema.Snapshot(reordered)
    )


def test_fingerprint_changes_when_an_attribute_changes():
    table: dict[str, dict[str, str]] = {"public.b": {}, "public.a": {}}
    changed = {**OBJECTS, "table": table}

    assert schema.fingerprint(schema.Snapshot(OBJECTS)) != schema.fingerprint(
        schema.Snapshot(changed)
    )


def test_decompress_returns_the_snapshot_when_compressed():
    snapshot = schema.Snapshot(OBJECTS)

    assert schema.decompress(schema.compress(snapshot)) == snapshot


@pytest.mark.parametrize(
    "data",
    [b"not zlib", zlib.compress(b"[1, 2]"), zlib.compress(b"\xff\xfe")],
    ids=["not-zlib", "not-a-snapshot", "not-utf8"],
)
def test_decompress_refuses_when_snapshot_is_damaged(data):
    with pytest.raises(LedgerTampered) as caught:
        schema.decompress(data)

    assert caught.value.message.startswith("the ledger: a stored schema snapshot")
    assert "\n" not in caught.value.message


def test_decompress_refuses_when_format_is_unknown():
    data = zlib.compress(b'{"format": "chainops-schema-v9", "objects": {}}')

    with pytest.raises(ConfigError, match="upgrade chainops"):
        schema.decompress(data)


# PostgreSQL 15's pg_get_viewdef output, and what 16 and later print for the same view.
VIEWS = {
    "single-table": (
        " SELECT t.id,\n    t.b || 'x.y'::text AS c\n   FROM public.t\n"
        "  WHERE t.a > 1\n  ORDER BY t.id;",
        " SELECT id,\n    b || 'x.y'::text AS c\n   FROM public.t\n"
        "  WHERE a > 1\n  ORDER BY id;",
    ),
    "alias": (
        " SELECT x.id, count(*) AS n\n   FROM public.t x\n  GROUP BY x.id;",
        " SELECT id, count(*) AS n\n   FROM public.t x\n  GROUP BY id;",
    ),
    "subquery-stays-qualified": (
        " SELECT t.id\n   FROM public.t\n  WHERE (EXISTS ( SELECT 1\n"
        "           FROM s.u\n          WHERE u.t_id = t.id));",
        " SELECT id\n   FROM public.t\n  WHERE (EXISTS ( SELECT 1\n"
        "           FROM s.u\n          WHERE u.t_id = t.id));",
    ),
    "whole-row-stays-qualified": (
        ' SELECT row_to_json(t.*) AS j,\n    t."Weird Col"\n   FROM public.t;',
        ' SELECT row_to_json(t.*) AS j,\n    "Weird Col"\n   FROM public.t;',
    ),
    "expressions-and-literals": (
        " SELECT EXTRACT(year FROM t.at) AS y,\n    t.a IS DISTINCT FROM 3 AS d,\n"
        "    't.a'::text AS lit,\n    'a'::public.t AS m\n   FROM ONLY public.t;",
        " SELECT EXTRACT(year FROM at) AS y,\n    a IS DISTINCT FROM 3 AS d,\n"
        "    't.a'::text AS lit,\n    'a'::public.t AS m\n   FROM ONLY public.t;",
    ),
    "join": (
        " SELECT t.id, u.x\n   FROM public.t\n     JOIN s.u ON u.t_id = t.id;",
        " SELECT t.id, u.x\n   FROM public.t\n     JOIN s.u ON u.t_id = t.id;",
    ),
    "two-relations": (
        " SELECT t.id, u.x\n   FROM public.t,\n    s.u;",
        " SELECT t.id, u.x\n   FROM public.t,\n    s.u;",
    ),
    "union": (
        " SELECT t.id\n   FROM public.t\nUNION\n SELECT u.id\n   FROM s.u;",
        " SELECT t.id\n   FROM public.t\nUNION\n SELECT u.id\n   FROM s.u;",
    ),
    "function-in-from": (
        " SELECT g.g\n   FROM generate_series(1, 3) g(g);",
        " SELECT g\n   FROM generate_series(1, 3) g(g);",
    ),
    "no-from": (" SELECT 1 AS one;", " SELECT 1 AS one;"),
}


@pytest.mark.parametrize(("legacy", "current"), VIEWS.values(), ids=VIEWS.keys())
def test_unqualify_prints_view_like_postgresql_16_when_given_15_output(legacy, current):
    assert schema._unqualify(legacy) == current
