"""Every lint rule: a statement that fires it and a look-alike that must stay quiet
(the table created earlier in the run, the NOT VALID form, a constant default, the
version cut-over)."""

from __future__ import annotations

import pytest

from chainops.config import LintSettings
from chainops.lint.catalog import RULES
from chainops.lint.check import LintReport, Source, TableSize, analyze, judge


def lint(
    *files: str | tuple[str, str],
    version: int = 14,
    one_run: bool = True,
    settings: LintSettings | None = None,
    sizes: dict[str, TableSize] | None = None,
) -> LintReport:
    sources = [
        Source(*f) if isinstance(f, tuple) else Source(f"001-schema/{n:03d}-m.sql", f)
        for n, f in enumerate(files, start=1)
    ]
    found = analyze(sources, version, one_run=one_run)
    return judge(found, settings or LintSettings(), sizes)


def rules_of(*files: str | tuple[str, str], **options: object) -> list[str]:
    return [f.rule for f in lint(*files, **options).shown]  # type: ignore[arg-type]


FIRES = [
    ("index-not-concurrent", "CREATE INDEX i ON t (a);"),
    ("index-not-concurrent", "CREATE UNIQUE INDEX IF NOT EXISTS i ON app.t (a);"),
    ("drop-index-not-concurrent", "DROP INDEX i;"),
    (
        "concurrent-in-mixed-file",
        "CREATE INDEX CONCURRENTLY i ON t (a);\nALTER TABLE t ADD COLUMN b int;",
    ),
    ("reindex-not-concurrent", "REINDEX TABLE t;"),
    ("reindex-not-concurrent", "REINDEX INDEX i;"),
    ("add-required-column", "ALTER TABLE t ADD COLUMN b int NOT NULL;"),
    ("volatile-default", "ALTER TABLE t ADD COLUMN b uuid DEFAULT gen_random_uuid();"),
    ("volatile-default", "ALTER TABLE t ADD COLUMN b float8 DEFAULT random();"),
    (
        "volatile-default",
        "ALTER TABLE t ADD COLUMN b timestamptz DEFAULT clock_timestamp();",
    ),
    ("volatile-default", "ALTER TABLE t ADD COLUMN b bigserial;"),
    (
        "volatile-default",
        "ALTER TABLE t ADD COLUMN b bigint GENERATED ALWAYS AS IDENTITY;",
    ),
    (
        "volatile-default",
        "ALTER TABLE t ADD COLUMN b int GENERATED ALWAYS AS (a * 2) STORED;",
    ),
    ("column-type-rewrite", "ALTER TABLE t ALTER COLUMN a TYPE bigint;"),
    ("column-type-rewrite", "ALTER TABLE t ALTER COLUMN a TYPE text USING a::text;"),
    ("set-not-null", "ALTER TABLE t ALTER COLUMN a SET NOT NULL;"),
    (
        "constraint-not-valid",
        "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id);",
    ),
    ("constraint-not-valid", "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);"),
    ("unique-without-index", "ALTER TABLE t ADD CONSTRAINT k UNIQUE (a);"),
    ("unique-without-index", "ALTER TABLE t ADD PRIMARY KEY (a);"),
    ("unique-without-index", "ALTER TABLE t ADD COLUMN b int UNIQUE;"),
    (
        "validate-same-transaction",
        "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT c;",
    ),
    ("drop-table", "DROP TABLE t;"),
    ("drop-column", "ALTER TABLE t DROP COLUMN a;"),
    ("drop-schema", "DROP SCHEMA app CASCADE;"),
    ("truncate", "TRUNCATE t;"),
    ("rename-table", "ALTER TABLE t RENAME TO t2;"),
    ("rename-column", "ALTER TABLE t RENAME COLUMN a TO b;"),
    ("drop-not-null", "ALTER TABLE t ALTER COLUMN a DROP NOT NULL;"),
    ("prefer-timestamptz", "CREATE TABLE IF NOT EXISTS x (at timestamp);"),
    ("prefer-bigint-pk", "CREATE TABLE x (id serial PRIMARY KEY);"),
    ("prefer-bigint-pk", "CREATE TABLE x (id int, PRIMARY KEY (id));"),
    ("prefer-text", "CREATE TABLE x (name varchar(40));"),
    ("ban-char", "CREATE TABLE x (code char(3));"),
    ("dml-without-where", "UPDATE t SET a = 1;"),
    ("dml-without-where", "DELETE FROM t;"),
    (
        "backfill-with-ddl",
        "ALTER TABLE t ADD COLUMN b int;\nUPDATE t SET b = a WHERE b IS NULL;",
    ),
    ("lock-table", "LOCK TABLE t IN SHARE MODE;"),
    ("transaction-control", "BEGIN;\nCREATE TABLE x (a text);\nCOMMIT;"),
    ("set-without-local", "SET search_path = app;"),
    (
        "enum-value-used-same-file",
        "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE t SET m = 'meh' WHERE id = 1;",
    ),
    ("bad-lint-ignore", "-- chainops:lint-ignore=truncate\nTRUNCATE t;"),
    ("bad-lint-ignore", "-- chainops:lint-ignore=no-such-rule because\nSELECT 1;"),
    ("bad-lint-ignore", "-- chainops:lint-ignore\nSELECT 1;"),
]

QUIET = [
    ("index-not-concurrent", "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);"),
    ("index-not-concurrent", "CREATE INDEX CONCURRENTLY i ON t (a);"),
    ("drop-index-not-concurrent", "DROP INDEX CONCURRENTLY i;"),
    (
        "drop-index-not-concurrent",
        "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nDROP INDEX i;",
    ),
    (
        "concurrent-in-mixed-file",
        "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY i ON t (a);",
    ),
    (
        "concurrent-in-mixed-file",
        "-- chainops:no-transaction\n"
        "CREATE INDEX CONCURRENTLY i ON t (a);\n"
        "CREATE INDEX CONCURRENTLY j ON t (b);",
    ),
    ("reindex-not-concurrent", "REINDEX TABLE CONCURRENTLY t;"),
    ("add-required-column", "ALTER TABLE t ADD COLUMN b int NOT NULL DEFAULT 0;"),
    (
        "add-required-column",
        "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int NOT NULL;",
    ),
    ("add-required-column", "ALTER TABLE t ADD COLUMN b int;"),
    (
        "volatile-default",
        "ALTER TABLE t ADD COLUMN b timestamptz NOT NULL DEFAULT now();",
    ),
    ("volatile-default", "ALTER TABLE t ADD COLUMN b int DEFAULT 0;"),
    ("volatile-default", "ALTER TABLE t ADD COLUMN b text DEFAULT NULL;"),
    (
        "volatile-default",
        "CREATE TABLE t (a int);\n"
        "ALTER TABLE t ADD COLUMN b uuid DEFAULT gen_random_uuid();",
    ),
    (
        "column-type-rewrite",
        "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;",
    ),
    (
        "set-not-null",
        "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a SET NOT NULL;",
    ),
    (
        "constraint-not-valid",
        "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id) NOT VALID;",
    ),
    ("constraint-not-valid", "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;"),
    ("constraint-not-valid", "ALTER TABLE t VALIDATE CONSTRAINT c;"),
    (
        "unique-without-index",
        "ALTER TABLE t ADD CONSTRAINT k UNIQUE USING INDEX k_idx;",
    ),
    (
        "unique-without-index",
        "ALTER TABLE t ADD CONSTRAINT k PRIMARY KEY USING INDEX k_idx;",
    ),
    (
        "unique-without-index",
        "CREATE TABLE t (a int);\nALTER TABLE t ADD PRIMARY KEY (a);",
    ),
    ("validate-same-transaction", "ALTER TABLE t VALIDATE CONSTRAINT c;"),
    ("drop-table", "CREATE TABLE t (a int);\nDROP TABLE t;"),
    ("drop-column", "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN a;"),
    ("truncate", "CREATE TABLE t (a int);\nTRUNCATE t;"),
    ("rename-column", "ALTER TABLE t ALTER COLUMN a SET DEFAULT 1;"),
    ("create-without-if-not-exists", "CREATE TABLE x (a text);"),
    ("prefer-timestamptz", "CREATE TABLE x (at timestamptz);"),
    (
        "prefer-bigint-pk",
        "CREATE TABLE x (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);",
    ),
    ("prefer-bigint-pk", "CREATE TABLE x (id int);"),
    ("prefer-text", "CREATE TABLE x (name varchar, note text);"),
    ("ban-char", "CREATE TABLE x (code text);"),
    ("dml-without-where", "UPDATE t SET a = 1 WHERE a IS NULL;"),
    ("dml-without-where", ("003-seed-data/001-m.sql", "DELETE FROM t;")),
    ("dml-without-where", "CREATE TABLE t (a int);\nUPDATE t SET a = 1;"),
    ("backfill-with-ddl", "UPDATE t SET b = a WHERE b IS NULL;"),
    (
        "backfill-with-ddl",
        "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nINSERT INTO t SELECT 1;",
    ),
    ("lock-table", "SELECT 1;"),
    ("transaction-control", "CREATE TABLE x (a text);"),
    ("set-without-local", "SET LOCAL search_path = app;"),
    ("set-without-local", "RESET search_path;"),
    (
        "set-without-local",
        "-- chainops:no-transaction\nSET lock_timeout = '1s';\nVACUUM t;",
    ),
    (
        "enum-value-used-same-file",
        "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE t SET m = 'sad' WHERE id = 1;",
    ),
    (
        "bad-lint-ignore",
        "-- chainops:lint-ignore=truncate the table is a cache\nTRUNCATE t;",
    ),
]


@pytest.mark.parametrize(
    ("rule", "sql"), FIRES, ids=[f"{r}-{n}" for n, (r, _) in enumerate(FIRES)]
)
def test_rule_fires_when_statement_is_dangerous(rule, sql):
    assert rule in rules_of(sql)


@pytest.mark.parametrize(
    ("rule", "sql"), QUIET, ids=[f"{r}-{n}" for n, (r, _) in enumerate(QUIET)]
)
def test_rule_stays_quiet_when_statement_is_a_safe_look_alike(rule, sql):
    assert rule not in rules_of(sql)


def test_every_rule_has_a_firing_and_a_quiet_case_when_the_catalog_grows():
    fired = {rule for rule, _ in FIRES} | {
        "large-table-lock",
        "create-without-if-not-exists",
    }
    quiet = {rule for rule, _ in QUIET} | {
        "large-table-lock",
        "drop-schema",
        "rename-table",
        "drop-not-null",
    }

    assert fired == set(RULES)
    assert quiet <= set(RULES)


def test_index_on_table_from_earlier_pending_file_is_quiet_when_files_are_one_run():
    files = ("CREATE TABLE t (a int);", "CREATE INDEX i ON t (a);")

    assert "index-not-concurrent" not in rules_of(*files, one_run=True)
    assert "index-not-concurrent" in rules_of(*files, one_run=False)


@pytest.mark.parametrize(
    ("old", "new", "rewrites"),
    [
        ("varchar(10)", "text", False),
        ("varchar(10)", "varchar(20)", False),
        ("varchar(10)", "varchar", False),
        ("text", "varchar", False),
        ("numeric(10,2)", "numeric(12,2)", False),
        ("varchar(20)", "varchar(10)", True),
        ("numeric(10,2)", "numeric(10,3)", True),
        ("int", "bigint", True),
        ("text", "int", True),
        ("timestamp", "timestamptz", True),
    ],
)
def test_type_change_rewrites_only_when_not_binary_coercible(old, new, rewrites):
    found = rules_of(
        f"CREATE TABLE t (c {old});",
        f"ALTER TABLE t ALTER COLUMN c TYPE {new};",
        one_run=False,
    )

    assert ("column-type-rewrite" in found) is rewrites


@pytest.mark.parametrize(("version", "fires"), [(10, True), (11, False), (18, False)])
def test_constant_default_rewrites_only_before_pg11_when_version_is_set(version, fires):
    found = rules_of(
        "ALTER TABLE t ADD COLUMN b int NOT NULL DEFAULT 0;", version=version
    )

    assert ("volatile-default" in found) is fires


@pytest.mark.parametrize(("version", "fires"), [(11, True), (12, False), (15, False)])
def test_set_not_null_after_validated_check_is_quiet_from_pg12_when_version_is_set(
    version, fires
):
    found = rules_of(
        "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;",
        "ALTER TABLE t VALIDATE CONSTRAINT t_a_nn;",
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        version=version,
        one_run=False,
    )

    assert ("set-not-null" in found) is fires


def test_set_not_null_fires_when_the_check_was_never_validated():
    found = rules_of(
        "ALTER TABLE t ADD CONSTRAINT t_a_nn CHECK (a IS NOT NULL) NOT VALID;",
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
    )

    assert "set-not-null" in found


@pytest.mark.parametrize(
    ("rows", "size", "fires"),
    [
        (2_000_000, 10, True),
        (10, 2 << 30, True),
        (None, 2 << 30, True),
        (500, 8192, False),
    ],
)
def test_large_table_lock_fires_when_the_connected_table_is_big(rows, size, fires):
    report = lint("ALTER TABLE t ADD COLUMN b int;", sizes={"t": TableSize(rows, size)})
    found = [f for f in report.shown if f.rule == "large-table-lock"]

    assert bool(found) is fires
    if fires:
        assert "takes ACCESS EXCLUSIVE on t" in found[0].message
        assert found[0].lock == "ACCESS EXCLUSIVE"


def test_large_table_lock_is_quiet_when_the_table_is_created_in_the_run():
    report = lint(
        "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int;",
        sizes={"t": TableSize(10**9, 10**12)},
    )

    assert "large-table-lock" not in [f.rule for f in report.findings]


@pytest.mark.parametrize(
    ("sql", "lock"),
    [
        ("CREATE INDEX i ON t (a);", "SHARE"),
        ("ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id);",
         "SHARE ROW EXCLUSIVE"),
        ("ALTER TABLE t ALTER COLUMN a SET NOT NULL;", "ACCESS EXCLUSIVE"),
        ("REINDEX TABLE t;", "SHARE"),
        ("LOCK TABLE t IN EXCLUSIVE MODE;", "EXCLUSIVE"),
        ("TRUNCATE t;", "ACCESS EXCLUSIVE"),
    ],
)  # fmt: skip
def test_finding_names_the_lock_when_the_statement_takes_one(sql, lock):
    findings = lint(sql).shown

    assert findings
    assert {f.lock for f in findings if f.lock} == {lock}


def test_unparsable_file_is_left_to_the_server_when_migrate_lints():
    from chainops.errors import MigrationFileError

    sources = [Source("001-schema/001-m.sql", "SELEC 1;")]
    with pytest.raises(MigrationFileError, match=r"^001-schema/001-m.sql:1:1: syntax"):
        analyze(sources, 14, one_run=True)

    assert analyze(sources, 14, one_run=True, skip_unparsable=True).findings == ()


def test_findings_are_the_same_when_the_server_is_15_or_18():
    files = [sql if isinstance(sql, str) else sql[1] for _, sql in FIRES]
    for sql in files:
        assert lint(sql, version=15).findings == lint(sql, version=18).findings
