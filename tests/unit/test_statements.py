"""Unit tests for chainops.statements: splitting and classifying migration SQL."""

from __future__ import annotations

import pytest
from pglast.parser import ParseError

from chainops.errors import MigrationFileError
from chainops.source import statements
from chainops.source.statements import (
    EmptyMigration,
    Plan,
    check_syntax,
    locate,
    plan_migration,
)

PATH = "001-schema/004-x.sql"


def texts(sql: str) -> list[str]:
    return [statement.text for statement in plan_migration(sql, PATH).statements]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        pytest.param(
            "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
            "SELECT 2;",
            [
                "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
                "SELECT 2",
            ],
            id="dollar-quoted",
        ),
        pytest.param(
            "CREATE FUNCTION f() RETURNS text AS $fn$ SELECT $$;$$ || ';'; $fn$"
            " LANGUAGE sql; SELECT 2",
            [
                "CREATE FUNCTION f() RETURNS text AS $fn$ SELECT $$;$$ || ';'; $fn$"
                " LANGUAGE sql",
                "SELECT 2",
            ],
            id="tagged-dollar-quoted",
        ),
        pytest.param(
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql\n"
            "BEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND;\nSELECT 3;",
            [
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql\n"
                "BEGIN ATOMIC\n  SELECT 1;\n  SELECT 2;\nEND",
                "SELECT 3",
            ],
            id="begin-atomic",
        ),
        pytest.param(
            "DO $$\nBEGIN\n  PERFORM 1;\n  RAISE NOTICE 'a;b';\nEND\n$$;\nSELECT 3;",
            ["DO $$\nBEGIN\n  PERFORM 1;\n  RAISE NOTICE 'a;b';\nEND\n$$", "SELECT 3"],
            id="do-block",
        ),
        pytest.param(
            "SELECT 'a;b', E'c\\';d', $$e;f$$;\nSELECT 2;",
            ["SELECT 'a;b', E'c\\';d', $$e;f$$", "SELECT 2"],
            id="strings",
        ),
        pytest.param(
            'CREATE TABLE "a;b" ("c;d" int);\nSELECT 2;',
            ['CREATE TABLE "a;b" ("c;d" int)', "SELECT 2"],
            id="quoted-identifiers",
        ),
        pytest.param(
            "-- lead;\nSELECT 1 /* ; */;\n-- ;\nSELECT 2; /* a /* ; */ ; */ SELECT 3",
            ["SELECT 1 /* ; */", "SELECT 2", "SELECT 3"],
            id="comments",
        ),
        pytest.param(
            "SELECT 1;\nSELECT 2\n\n",
            ["SELECT 1", "SELECT 2"],
            id="last-without-semicolon",
        ),
        pytest.param(
            ";;SELECT 1;;\n;SELECT 2;;", ["SELECT 1", "SELECT 2"], id="empty-statements"
        ),
        pytest.param(
            "SELECT 1 AS a\u00a0;SELECT 2",
            ["SELECT 1 AS a\u00a0", "SELECT 2"],
            id="unicode-space-ends-identifier",
        ),
    ],
)
def test_split_keeps_statements_whole_when_semicolons_are_quoted(sql, expected):
    assert texts(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "-- CREATE INDEX CONCURRENTLY i ON t (a);\nCREATE INDEX i ON t (a);",
        "/* VACUUM; */ CREATE INDEX i ON t (a);",
        "SELECT 'CREATE INDEX CONCURRENTLY i ON t (a)';",
        "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$\n"
        "BEGIN EXECUTE 'CREATE INDEX CONCURRENTLY i ON t (a)'; END $$;",
        "DO $$ BEGIN RAISE NOTICE 'VACUUM'; END $$;",
        'CREATE TABLE "concurrently" (vacuum int);',
        "ANALYZE t;",
        "CLUSTER t USING i;",
        "REINDEX TABLE t;",
        "REINDEX (CONCURRENTLY false) TABLE t;",
        "DROP INDEX i;",
        "ALTER DATABASE d SET work_mem = '1MB';",
        "ALTER TABLE p DETACH PARTITION c;",
        "DISCARD PLANS;",
        "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (connect = false);",
        "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot = off);",
        "ALTER SUBSCRIPTION s SET PUBLICATION p WITH (refresh = false);",
        "ALTER SUBSCRIPTION s DISABLE;",
        "COPY t FROM '/srv/data.csv';",
    ],
)
def test_plan_is_transactional_when_nothing_needs_autocommit(sql):
    plan = plan_migration(sql, PATH)
    assert plan.transactional
    assert plan.reason is None
    assert not any(s.no_transaction or s.transaction_control for s in plan.statements)


@pytest.mark.parametrize(
    ("sql", "label"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE INDEX CONCURRENTLY"),
        (
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)",
            "CREATE INDEX CONCURRENTLY",
        ),
        ("DROP INDEX CONCURRENTLY IF EXISTS i", "DROP INDEX CONCURRENTLY"),
        ("REINDEX TABLE CONCURRENTLY t", "REINDEX CONCURRENTLY"),
        ("REINDEX (CONCURRENTLY) INDEX i", "REINDEX CONCURRENTLY"),
        ("REINDEX SCHEMA s", "REINDEX SCHEMA"),
        ("REINDEX DATABASE d", "REINDEX DATABASE"),
        ("REINDEX SYSTEM", "REINDEX SYSTEM"),
        ("VACUUM", "VACUUM"),
        ("vacuum analyze t", "VACUUM"),
        ("VACUUM (FULL, ANALYZE) t", "VACUUM"),
        ("CREATE DATABASE d", "CREATE DATABASE"),
        ("DROP DATABASE IF EXISTS d WITH (FORCE)", "DROP DATABASE"),
        ("ALTER DATABASE d SET TABLESPACE x", "ALTER DATABASE SET TABLESPACE"),
        ("CREATE TABLESPACE x LOCATION '/srv/x'", "CREATE TABLESPACE"),
        ("DROP TABLESPACE x", "DROP TABLESPACE"),
        ("ALTER SYSTEM SET work_mem = '1MB'", "ALTER SYSTEM"),
        ("ALTER SYSTEM RESET ALL", "ALTER SYSTEM"),
        ("CLUSTER", "CLUSTER without a table name"),
        ("CLUSTER (VERBOSE)", "CLUSTER without a table name"),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
            "CREATE SUBSCRIPTION creating a slot",
        ),
        (
            "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p WITH (create_slot)",
            "CREATE SUBSCRIPTION creating a slot",
        ),
        ("DROP SUBSCRIPTION s", "DROP SUBSCRIPTION"),
        ("ALTER SUBSCRIPTION s REFRESH PUBLICATION", "ALTER SUBSCRIPTION ... REFRESH"),
        ("ALTER SUBSCRIPTION s ADD PUBLICATION p", "ALTER SUBSCRIPTION with refresh"),
        (
            "ALTER SUBSCRIPTION s SET (failover = true)",
            "ALTER SUBSCRIPTION ... SET (failover or two_phase)",
        ),
        (
            "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
            "DETACH PARTITION CONCURRENTLY",
        ),
        ("DISCARD ALL", "DISCARD ALL"),
    ],
)
def test_plan_is_not_transactional_when_statement_refuses_transactions(sql, label):
    plan = plan_migration(f"CREATE TABLE t (a int);\n{sql};\nSELECT 1;", PATH)
    assert not plan.transactional
    assert plan.reason == f"{label} at line 2"
    assert [s.no_transaction for s in plan.statements] == [False, True, False]


@pytest.mark.parametrize(
    ("sql", "label"),
    [
        ("BEGIN", "BEGIN"),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "START TRANSACTION"),
        ("COMMIT", "COMMIT"),
        ("END", "COMMIT"),
        ("ROLLBACK", "ROLLBACK"),
        ("ABORT", "ROLLBACK"),
        ("SAVEPOINT s", "SAVEPOINT"),
        ("RELEASE SAVEPOINT s", "RELEASE"),
        ("ROLLBACK TO s", "ROLLBACK TO"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("COMMIT PREPARED 'x'", "COMMIT PREPARED"),
        ("ROLLBACK PREPARED 'x'", "ROLLBACK PREPARED"),
    ],
)
def test_plan_manages_own_transaction_when_file_controls_transactions(sql, label):
    plan = plan_migration(f"CREATE TABLE t (a int);\n{sql};", PATH)
    assert not plan.transactional
    assert plan.reason == f"manages its own transaction ({label} at line 2)"
    assert [s.transaction_control for s in plan.statements] == [False, True]


def test_plan_flags_each_statement_when_file_wraps_itself_in_begin_commit():
    sql = "BEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\nVACUUM t;\n"
    plan = plan_migration(sql, PATH)
    assert plan.reason == "manages its own transaction (BEGIN at line 1)"
    flags = [(s.transaction_control, s.no_transaction) for s in plan.statements]
    assert flags == [(True, False), (False, False), (True, False), (False, True)]


@pytest.mark.parametrize(
    ("line", "honoured"),
    [
        ("-- chainops:no-transaction", True),
        ("--chainops:no-transaction", True),
        ("  --   CHAINOPS:No-Transaction \t", True),
        ("\t-- chainops: no-transaction", True),
        ("SELECT 2; -- chainops:no-transaction", False),
        ("-- see chainops:no-transaction", False),
    ],
)
def test_plan_honours_directive_when_line_is_exactly_the_directive(line, honoured):
    plan = plan_migration(f"SELECT 1;\n{line}\nSELECT 3;", PATH)
    assert plan.transactional is not honoured
    if honoured:
        assert plan.reason == "-- chainops:no-transaction directive at line 2"


@pytest.mark.parametrize(
    "line",
    [
        "-- chainops:no-transactions",
        "-- CHAINOPS:bogus",
        "-- Chainops:lock-timeout=soon",
    ],
)
def test_plan_refuses_directive_when_name_or_value_is_unknown(line):
    with pytest.raises(MigrationFileError, match=rf"^{PATH}:2: "):
        plan_migration(f"SELECT 1;\n{line}\nSELECT 3;", PATH)


@pytest.mark.parametrize(
    ("sql", "where", "command"),
    [
        ("\\i other.sql\n", "1:1", "\\i"),
        ("SELECT 1;\n\\set x 1\nSELECT :x;", "2:1", "\\set"),
        ("SELECT 'é';\n  \\copy t from 'f.csv'\n", "2:3", "\\copy"),
        ("SELECT 1 \\gexec", "1:10", "\\gexec"),
        ("\\\x01", "1:1", "\\\\x01"),  # found by I2's fuzzing: shown escaped
    ],
)
def test_check_syntax_refuses_meta_command_when_line_holds_one(sql, where, command):
    with pytest.raises(MigrationFileError) as caught:
        check_syntax(sql, PATH)
    message = str(caught.value)
    assert message.startswith(f"{PATH}:{where}: psql meta-command {command} is not ")
    assert "\n" not in message
    assert isinstance(caught.value.__cause__, ParseError)


def test_check_syntax_explains_meta_command_when_it_is_include():
    with pytest.raises(MigrationFileError) as caught:
        check_syntax("SELECT 1;\n\\i other.sql\n", PATH)
    assert str(caught.value) == (
        f"{PATH}:2:1: psql meta-command \\i is not supported; chainops sends plain SQL"
        " to the server, so write the SQL it stands for inline"
    )


@pytest.mark.parametrize(
    "sql",
    ["SELECT E'a\n\\i b';", "SELECT $$\n\\set x 1\n$$;", "/*\n\\i x\n*/ SELECT 1;"],
)
def test_check_syntax_accepts_backslash_when_inside_string_or_comment(sql):
    check_syntax(sql, PATH)


@pytest.mark.parametrize(
    ("sql", "where", "words"),
    [
        ("COPY t FROM stdin;", "1:1", "the data of COPY … FROM stdin has no line"),
        ("SELECT 1;\n COPY t FROM stdin;\n1\n", "2:2", "has no line \\. after it"),
        ("COPY t FROM stdin; SELECT 1;", "1:1", "COPY ... FROM STDIN has no data"),
        ("COPY (SELECT 1) TO STDOUT;", "1:1", "COPY ... TO STDOUT is not supported;"),
    ],
)
def test_check_syntax_refuses_copy_when_it_streams_through_the_client(
    sql, where, words
):
    with pytest.raises(MigrationFileError, match=r"^[^\n]*$") as caught:
        check_syntax(sql, PATH)
    assert str(caught.value).startswith(f"{PATH}:{where}: ")
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("sql", "where", "message"),
    [
        ("SELECT 1;\nSELEC 2;", "2:1", 'syntax error at or near "SELEC"'),
        ("SELECT 'é', 'ü';\nSELECT 1 FROM t WHERE;", "2:22", 'at or near ";"'),
        ("-- 😀 emoji ☕\nSELECT 'é😀' FROM t u v;", "2:22", 'at or near "v"'),
        ("SELECT 'é' FROM t u v;", "1:21", 'at or near "v"'),
        ("SELECT 1 +\n\n", "1:11", "syntax error at end of input"),
        (
            "SELECT 'abc\ndef",
            "1:8",
            'unterminated quoted string at or near "\'abc def"',
        ),
    ],
)
def test_check_syntax_points_at_error_when_sql_is_invalid(sql, where, message):
    with pytest.raises(MigrationFileError) as caught:
        check_syntax(sql, PATH)
    text = str(caught.value)
    assert text.startswith(f"{PATH}:{where}: ")
    assert message in text
    assert text.endswith("; fix the SQL and run inv migrate again")
    assert "\n" not in text
    assert isinstance(caught.value.__cause__, ParseError)


def test_check_syntax_formats_message_when_token_is_wrong():
    with pytest.raises(MigrationFileError) as caught:
        check_syntax("SELECT 1;\nSELEC 2;", PATH)
    assert str(caught.value) == (
        f'{PATH}:2:1: syntax error at or near "SELEC"; '
        "fix the SQL and run inv migrate again"
    )


@pytest.mark.parametrize(
    "sql", ["", "\n\n  \n", "-- template\n-- write here\n", "/* nothing */", ";;\n;"]
)
@pytest.mark.parametrize("function", [plan_migration, check_syntax])
def test_function_raises_empty_migration_when_file_has_no_statement(sql, function):
    with pytest.raises(EmptyMigration) as caught:
        function(sql, PATH)
    assert isinstance(caught.value, MigrationFileError)
    assert str(caught.value) == (
        f"{PATH} has no SQL statements yet; write the migration or delete the file"
    )


@pytest.mark.parametrize(
    "sql",
    [
        "-- café ☕ 😀\nSELECT 'é';\n  /* ü */ SELECT 2;\nSELECT '𝄞' AS \"ö\"",
        "SELECT 'ñ'; SELECT '😀😀'; SELECT 3;",
        "/* 😀\n😀 */\n\n\tCREATE TABLE ü (é text);\nINSERT INTO ü VALUES ('😀');",
    ],
)
def test_plan_locates_statements_when_non_ascii_text_precedes_them(sql):
    found = plan_migration(sql, PATH).statements
    assert found
    for statement in found:
        assert sql[statement.offset :].startswith(statement.text)
        assert locate(sql, statement.offset) == (statement.line, statement.column)


def test_plan_gives_character_positions_when_text_is_not_ascii():
    sql = "-- café ☕ 😀\nSELECT 'é';\n  /* ü */ SELECT 2;"
    second = plan_migration(sql, PATH).statements[1]
    assert (second.offset, second.line, second.column) == (34, 3, 11)


@pytest.mark.parametrize(
    ("text", "offset", "expected"),
    [
        ("", 0, (1, 1)),
        ("abc", 2, (1, 3)),
        ("a\nb", 2, (2, 1)),
        ("é\n😀x", 3, (2, 2)),
        ("a\n", 99, (2, 1)),
    ],
)
def test_locate_returns_line_and_column_when_given_offset(text, offset, expected):
    assert locate(text, offset) == expected


def test_split_falls_back_to_pglast_slices_when_gap_is_not_understood(monkeypatch):
    sql = "-- é\nSELECT 'ü';\nSELECT 2"
    expected = plan_migration(sql, PATH)
    monkeypatch.setattr(statements, "_skip_gap", lambda text, position: len(text))
    assert plan_migration(sql, PATH) == expected


def refuse_to_parse(*args: object, **kwargs: object) -> None:
    raise AssertionError("the parser must not run")


def test_plan_skips_parsing_when_large_file_has_no_suspect_word(monkeypatch):
    sql = "INSERT INTO t VALUES (1, 'x');\n" * 20
    monkeypatch.setattr(statements, "PARSE_LIMIT", 100)
    monkeypatch.setattr(statements, "split", refuse_to_parse)
    monkeypatch.setattr(statements.syntax_tree, "parse", refuse_to_parse)
    assert plan_migration(sql, PATH) == Plan(
        transactional=True, reason=None, statements=()
    )


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (
            "CREATE INDEX CONCURRENTLY i ON t (a);",
            "CREATE INDEX CONCURRENTLY at line 21",
        ),
        ("vacuum t;", "VACUUM at line 21"),
        (
            "-- chainops:no-transaction",
            "-- chainops:no-transaction directive at line 21",
        ),
        ("commit;", "manages its own transaction (COMMIT at line 21)"),
    ],
)
def test_plan_parses_large_file_when_prefilter_matches(monkeypatch, tail, reason):
    sql = "INSERT INTO t VALUES (1, 'x');\n" * 20 + tail
    monkeypatch.setattr(statements, "PARSE_LIMIT", 100)
    plan = plan_migration(sql, PATH)
    assert plan.reason == reason
    assert len(plan.statements) == 20 + (not tail.startswith("--"))


@pytest.mark.parametrize(
    ("sql", "where"),
    [
        ("INSERT INTO t VALUES (1, 'x');\n" * 20 + "  \\i more.sql\n", "21:3"),
        ("\\set x 1\n" + "INSERT INTO t VALUES (1, 'x');\n" * 20, "1:1"),
    ],
)
def test_plan_refuses_meta_command_when_large_file_has_one(monkeypatch, sql, where):
    monkeypatch.setattr(statements, "PARSE_LIMIT", 100)
    with pytest.raises(MigrationFileError, match=f"^{PATH}:{where}: psql meta-command"):
        plan_migration(sql, PATH)


def test_check_syntax_parses_when_file_is_large(monkeypatch):
    monkeypatch.setattr(statements, "PARSE_LIMIT", 10)
    with pytest.raises(MigrationFileError, match=":2:1: syntax error"):
        check_syntax("INSERT INTO t VALUES (1);\nSELEC 1;", PATH)


@pytest.mark.parametrize("sql", ["SELECT 1;\n\0VACUUM;", "SELECT 1;\n\0"])
def test_check_syntax_refuses_nul_when_parser_would_stop_there(sql):
    with pytest.raises(MigrationFileError) as caught:
        check_syntax(sql, PATH)
    assert str(caught.value) == (
        f"{PATH}:2:1: NUL character in the SQL; PostgreSQL does not accept it, "
        "so remove it"
    )


@pytest.mark.parametrize(
    ("sql", "data"),
    [
        ("SELECT 1;\nCOPY t (a, b) FROM STDIN;\n1\tx\n\\.\n", ["1\tx\n"]),
        ("COPY t FROM stdin;\n\\.\n", [""]),
        ("COPY t FROM stdin; -- rows\n1\n\\.", ["1\n"]),
        (
            "COPY t FROM stdin WITH (FORMAT csv);\n1,';'\n\\.\n"
            "COPY u\n FROM stdin;\n2\n\\.\n",
            ["1,';'\n", "2\n"],
        ),
    ],
)
def test_plan_cuts_copy_data_when_copy_from_stdin_ends_its_line(sql, data):
    plan = plan_migration(sql, PATH)
    copies = [s for s in plan.statements if s.copy is not None]
    assert [sql[s.copy.data_start : s.copy.data_end] for s in copies] == data
    assert plan.transactional
    assert all(s.text.startswith("COPY") for s in copies)


@pytest.mark.parametrize(
    "sql",
    ["SELECT 'COPY t FROM stdin;\n';", "/* COPY t FROM stdin;\n*/ SELECT 1;"],
)
def test_plan_keeps_copy_words_when_inside_string_or_comment(sql):
    assert all(s.copy is None for s in plan_migration(sql, PATH).statements)


def test_parse_tree_skips_copy_data_when_file_holds_some():
    sql = "COPY t FROM stdin;\n1\tx y;\n\\.\nSELECT 2;\n"
    found = [(sql[start:end], type(node).__name__) for start, end, node in
             statements.parse_tree(sql, PATH)]  # fmt: skip
    assert found == [("COPY t FROM stdin", "CopyStmt"), ("SELECT 2", "SelectStmt")]
