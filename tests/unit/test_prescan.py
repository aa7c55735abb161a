"""Unit tests for chainops.prescan: which files may skip the parser.

The promise is a superset: whatever the parser would run outside a transaction,
refuse, or call empty, the scan flags. The property test checks it against the
parser itself on files built from awkward pieces.
"""

from __future__ import annotations

import pytest

from chainops.source import scan as prescan
from chainops.source.scan import needs_parse

# Statements the parser runs outside a transaction, or refuses, or that control it.
SPECIAL = [
    "CREATE INDEX CONCURRENTLY i ON t (a);",
    "create unique index concurrently if not exists i on t (a);",
    "DROP INDEX CONCURRENTLY i;",
    "REINDEX TABLE CONCURRENTLY t;",
    "REINDEX SCHEMA public;",
    "VACUUM t;",
    "Vacuum (analyze) t;",
    "CLUSTER;",
    "ALTER DATABASE d SET TABLESPACE s;",
    "CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p;",
    "ALTER SUBSCRIPTION s REFRESH PUBLICATION;",
    "DROP SUBSCRIPTION s;",
    "ALTER TABLE t DETACH PARTITION p CONCURRENTLY;",
    "DISCARD ALL;",
    "CREATE DATABASE d;",
    "DROP DATABASE d;",
    "CREATE TABLESPACE s LOCATION '/x';",
    "ALTER SYSTEM SET work_mem = '1MB';",
    "BEGIN;",
    "START TRANSACTION;",
    "COMMIT;",
    "END;",
    "ROLLBACK;",
    "ABORT;",
    "SAVEPOINT a;",
    "RELEASE a;",
    "PREPARE TRANSACTION 'x';",
    "COPY t FROM STDIN;",
    "COPY t (a) TO stdout;",
]

PLAIN = [
    "CREATE TABLE t_1 (id int primary key, v text);\n"
    "INSERT INTO t_1 VALUES (1, 'x');\n",
    "CREATE TABLE seed (id int, v text);\n"
    + "INSERT INTO seed VALUES\n(1, 'seed value 1'),\n(2, 'a; b');\n" * 3,
    "CREATE TABLE my_database (system_id int, stdin_note text);",
    "SELECT 'Vacuum'; SELECT 'x' AS \"End\"; SELECT 1 AS évacuum;",
    "ALTER TABLE t ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();",
    "CREATE INDEX i ON t (a); /* COMMIT */ -- VACUUM\n",
    "INSERT INTO t VALUES (1); -- chainops-like words: begin commit\n",
    "CREATE TABLE t (note text DEFAULT ';'); CREATE INDEX i ON t (a);",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;",
]


@pytest.mark.parametrize("sql", SPECIAL)
def test_needs_parse_when_statement_is_special(sql):
    assert needs_parse(sql.encode())
    assert needs_parse(f"SELECT 1;\n/* before */ -- a comment\n  {sql}\n".encode())


@pytest.mark.parametrize(
    "sql",
    [
        "-- chainops:no-transaction\nCREATE TABLE t ();",
        "-- chainops:lock-timeout=30s\nCREATE TABLE t ();",
        "SELECT 1;\n  \\i other.sql\n",
        "\\set x 1\nSELECT 1;",
        "-- Migration: x\n-- Your SQL here\n",
        ";\n;",
        "/* only */ /* comments */",
        "SELECT 1; /* a /* nested */ comment */ VACUUM;",
        "/* unterminated",
        "-- CHAINOPS:No-Transaction\nCREATE TABLE t ();",
        "SELECT 1; \\i other.sql",
        "SELECT 'CREATE DATABASE x' \\gexec",
        "UPDATE t SET v = E'a\\\\b';",
        'ALTER TABLE t DETACH PARTITION "p;x" CONCURRENTLY;',
        "CREATE INDEX CONCURRENTLY i ON t (a) WHERE b <> ';';",
    ],
)
def test_needs_parse_when_scan_cannot_rule_it_out(sql):
    assert needs_parse(sql.encode())


@pytest.mark.parametrize("sql", PLAIN)
def test_skips_parse_when_sql_is_plain(sql):
    assert not needs_parse(sql.encode())


def test_big_file_needs_parse_only_for_a_backslash_first_on_its_line(monkeypatch):
    # A big seed's E'' strings and JSON hold backslashes; psql meta-commands start
    # their line.
    monkeypatch.setattr(prescan, "_SMALL", 10)
    rows = b"INSERT INTO t VALUES (E'a\\\\b', '{\"k\": \"\\\\u00e9\"}');\n" * 3
    assert not needs_parse(rows)
    assert needs_parse(rows + b"  \\i more.sql\n")
    assert needs_parse(b"\\set x 1\n" + rows)
