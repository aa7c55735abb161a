"""An outsider recomputes every block from the README alone: its snippet, run as
printed, against a ledger holding every mode (two versions of a repeatable file
among them, and a revert with its file applied again) and both block formats, in
another schema and time zone."""

from __future__ import annotations

import re

from psycopg import sql

from chainops import api, revert_verb
from tests.fixtures.postgres import REPO


def readme_snippet() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    after = text.split("Recompute the chain yourself:", 1)[1]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert match, "the README's recompute snippet is missing"
    return match.group(1)


def test_readme_snippet_recomputes_every_mode_and_format_in_any_schema(project):
    where = project.target_with(ledger_schema="audit")
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (id int);\n"})
    project.query("CREATE TABLE a (id int)")
    api.baseline(where, 1001)  # baseline
    project.write({"001-schema/002-b.sql": "CREATE TABLE b (id int);\n"})
    api.apply(where)  # transaction
    # Those two as an older chainops wrote them; the next run upgrades the ledger.
    project.as_written_before_sealing("audit")
    project.query(
        "ALTER TABLE audit.blockchain_migrations DROP COLUMN block_format,"
        " DROP COLUMN sealed_schema; UPDATE audit.blockchain_migrations_meta"
        " SET value = '2' WHERE key = 'format_version'"
    )
    project.query("ALTER TABLE a ADD COLUMN note text")
    project.write({"001-schema/003-c.sql": "CREATE INDEX CONCURRENTLY c ON b (id);\n"})
    api.apply(where)  # drift, then no-transaction
    view = "002-functions/R-v.sql"
    project.write({view: "CREATE OR REPLACE VIEW v AS SELECT 1 AS n;\n"})
    api.apply(where)  # repeatable
    project.write({view: "CREATE OR REPLACE VIEW v AS SELECT 2 AS n;\n"})
    api.apply(where)  # its second version
    project.write(
        {
            "003-seed/001-rows.sql": "CREATE TABLE r (n int);\n"
            "COPY r FROM stdin;\n1\n\\.\n",
            "003-seed/001-rows.verify.sql": "SELECT count(*) = 1 FROM r;\n",
        }
    )
    api.apply(where)  # COPY data and a verify script: a transaction block
    project.write({"003-seed/001-rows.down.sql": "DROP TABLE r;\n"})
    revert_verb.revert(where)  # a revert block
    api.apply(where)  # the reverted file applied again: its number's second block
    dbname = str(project.query("SELECT current_database()")[0][0])
    project.query(
        sql.SQL("ALTER DATABASE {} SET timezone = 'Pacific/Chatham'")
        .format(sql.Identifier(dbname))
        .as_string()
    )
    blocks = project.query(
        "SELECT mode, block_format, sealed_schema IS NOT NULL"
        " FROM audit.blockchain_migrations ORDER BY height"
    )
    assert blocks == [
        ("baseline", 1, False),
        ("transaction", 1, False),
        ("drift", 2, True),  # seals the drifted schema
        ("no-transaction", 2, True),  # its run's newest block
        ("repeatable", 2, True),
        ("repeatable", 2, True),
        ("transaction", 2, True),
        ("revert", 2, True),
        ("transaction", 2, True),
    ]

    code = readme_snippet().replace('schema = "public"', 'schema = "audit"')
    exec(code, {"DATABASE_URL": project.db_url})  # asserts on every block
