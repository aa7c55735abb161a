"""`chainops lint` and `inv migrate.lint` as a user runs them: a folder of dangerous
migrations, exit codes, output formats and bad input."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.test_commands import one_error_line, run

DANGEROUS = {
    "001-schema/001-orders.sql": (
        "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total int);\n"
    ),
    "001-schema/002-index.sql": "CREATE INDEX orders_user ON orders (user_id);\n",
    "001-schema/003-required.sql": (
        "-- a comment first\nALTER TABLE orders ADD COLUMN state text NOT NULL;\n"
    ),
    "001-schema/004-uuid.sql": (
        "ALTER TABLE orders ADD COLUMN ref uuid DEFAULT gen_random_uuid();\n"
    ),
    "001-schema/005-type.sql": "ALTER TABLE orders ALTER COLUMN total TYPE bigint;\n",
    "001-schema/006-fk.sql": (
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id)\n"
        "  REFERENCES users (id);\n"
    ),
    "001-schema/007-unique.sql": (
        "ALTER TABLE orders ADD CONSTRAINT orders_ref UNIQUE (ref);\n"
    ),
    "001-schema/008-not-null.sql": (
        "ALTER TABLE orders ALTER COLUMN user_id SET NOT NULL;\n"
    ),
}
EXPECTED = {
    ("002-index.sql", 1, "index-not-concurrent"),
    ("003-required.sql", 2, "add-required-column"),
    ("004-uuid.sql", 1, "volatile-default"),
    ("005-type.sql", 1, "column-type-rewrite"),
    ("006-fk.sql", 1, "constraint-not-valid"),
    ("007-unique.sql", 1, "unique-without-index"),
    ("008-not-null.sql", 1, "set-not-null"),
}
LINE = re.compile(
    r"^migrations/001-schema/(?P<file>[\w.-]+):(?P<line>\d+):1: error "
    r"(?P<rule>[a-z-]+) .+; fix: .+$"
)


@pytest.fixture
def dangerous(project):
    project.write(DANGEROUS)
    return project


def test_lint_reports_each_dangerous_migration_with_place_rule_and_fix(dangerous):
    result = run(dangerous, "lint", "--all")

    found = {
        (m["file"], int(m["line"]), m["rule"])
        for line in result.stdout.splitlines()
        if (m := LINE.match(line))
    }
    assert found == EXPECTED
    assert result.stdout.splitlines()[-1].startswith("8 files linted for PostgreSQL ")
    assert result.returncode == 8


def test_lint_pending_skips_applied_files_and_exits_zero_when_clean(project):
    project.write({"001-schema/001-orders.sql": DANGEROUS["001-schema/001-orders.sql"]})
    assert run(project, "migrate").returncode == 0
    project.write({"001-schema/002-note.sql": "ALTER TABLE orders ADD note text;\n"})

    result = run(project, "lint")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "1 file linted for PostgreSQL "
        + result.stdout.split("PostgreSQL ")[1].split(":")[0]
        + ": 0 errors, 0 warnings"
    ]


@pytest.mark.parametrize("flag", [["--json"], ["--format", "json"]])
def test_lint_json_parses_when_asked(dangerous, flag):
    result = run(dangerous, "lint", "--all", *flag)

    document = json.loads(result.stdout)
    assert {f["rule"] for f in document["findings"]} >= {r for _, _, r in EXPECTED}
    assert result.returncode == 8


def test_lint_sarif_and_github_formats_parse_when_asked(dangerous):
    sarif = json.loads(run(dangerous, "lint", "--all", "--format", "sarif").stdout)
    github = run(dangerous, "lint", "--all", "--format", "github").stdout.splitlines()

    assert sarif["version"] == "2.1.0"
    assert len(sarif["runs"][0]["results"]) == len(
        [g for g in github if g.startswith("::error ")]
    )
    assert github[0].startswith(
        "::error file=migrations/001-schema/002-index.sql,line=1,col=1,"
        "title=index-not-concurrent::"
    )


def test_lint_paths_lints_only_the_given_files_when_used_as_a_hook(dangerous):
    result = run(dangerous, "lint", "--offline", "migrations/001-schema/004-uuid.sql")

    assert result.stdout.startswith(
        "migrations/001-schema/004-uuid.sql:1:1: error volatile-default "
    )
    assert result.returncode == 8


def test_inv_migrate_lint_speaks_the_same_when_run_through_invoke(dangerous):
    result = run(dangerous, "migrate.lint", "--all", "--json", tool="inv")

    assert json.loads(result.stdout)["errors"] == len(EXPECTED)
    assert result.returncode == 8


@pytest.mark.parametrize(
    ("argv", "files", "code", "start"),
    [
        (["lint", "nope.sql"], {}, 2, "✗ nope.sql does not exist; "),
        (
            ["lint", "--all"],
            {"001-schema/001-bad.sql": "CREATE TABLE (;\n"},
            3,
            "✗ 001-schema/001-bad.sql:1:14: syntax error at or near",
        ),
        (["lint", "--all", "--format", "xml"], {}, 2, "✗ --format 'xml' is not"),
    ],
)
def test_lint_bad_input_is_one_clean_line_when_given(project, argv, files, code, start):
    project.write(files)

    result = run(project, *argv)

    assert result.returncode == code
    assert one_error_line(result).startswith(start)
