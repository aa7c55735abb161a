"""Suppression, settings, and the four output formats of the linter."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest

from chainops.config import LintSettings, parse_lint_settings
from chainops.errors import ConfigError
from chainops.lint import report
from chainops.lint.catalog import RULES, Severity
from chainops.lint.check import LintReport, Source, analyze, judge
from chainops.source.directives import parse_directives, parse_lint_ignores
from chainops.source.template import TEMPLATE

DOCS = Path(__file__).resolve().parents[2] / "docs" / "lint.md"
DANGER = "ALTER TABLE t ADD COLUMN b int NOT NULL;\nDROP TABLE old;\n"


def lint(text: str, settings: LintSettings | None = None) -> LintReport:
    found = analyze([Source("001-schema/001-m.sql", text)], 14, one_run=True)
    return judge(found, settings or LintSettings())


# --- suppression ------------------------------------------------------------------


def test_ignore_above_a_statement_suppresses_only_that_statement_when_it_has_a_reason():
    text = (
        "SELECT 1;\n"
        "-- chainops:lint-ignore=drop-table nothing reads it since v3\n"
        "DROP TABLE old;\nDROP TABLE older;\n"
    )
    found = lint(text)

    assert [(f.line, f.suppressed) for f in found.findings] == [
        (3, "nothing reads it since v3"),
        (4, None),
    ]
    assert [f.line for f in found.shown] == [4]


def test_ignore_at_the_top_suppresses_the_whole_file_when_it_names_the_rules():
    text = (
        "-- chainops:lint-ignore=drop-table,add-required-column empty table\n" + DANGER
    )
    found = lint(text)

    assert found.shown == ()
    assert found.errors == 0
    assert len(found.findings) == 2


def test_ignore_without_reason_suppresses_nothing_and_is_an_error_when_linted():
    found = lint("-- chainops:lint-ignore=drop-table\n" + DANGER)

    assert {f.rule for f in found.shown} == {
        "bad-lint-ignore",
        "add-required-column",
        "drop-table",
    }
    bad = next(f for f in found.shown if f.rule == "bad-lint-ignore")
    assert (bad.line, bad.severity) == (1, Severity.ERROR)
    assert "gives no reason" in bad.message


def test_ignore_inside_a_statement_covers_that_statement_when_placed_in_it():
    text = (
        "ALTER TABLE t\n"
        "  -- chainops:lint-ignore=drop-column column unused\n"
        "  DROP COLUMN a;\n"
    )

    assert lint(text).shown == ()


def test_lint_ignore_line_is_a_known_directive_when_migrate_parses_the_file():
    text = (
        "-- chainops:lint-ignore=truncate cache table\n"
        "-- chainops:lint-ignore=truncate\n"
    )

    parse_directives(text, "x.sql")  # does not refuse either line
    assert [i.rules for i in parse_lint_ignores(text)] == [("truncate",), ("truncate",)]


# --- settings ---------------------------------------------------------------------


def test_settings_disable_rules_and_change_severities_when_configured():
    settings = parse_lint_settings(
        {"disable": ["add-required-column"], "severity": {"drop-table": "error"}}
    )
    found = lint(DANGER, settings)

    assert [(f.rule, f.severity) for f in found.shown] == [
        ("drop-table", Severity.ERROR)
    ]
    assert found.errors == 1


def test_settings_enable_an_off_by_default_rule_when_named():
    settings = parse_lint_settings({"enable": ["create-without-if-not-exists"]})

    assert "create-without-if-not-exists" in [
        f.rule for f in lint("CREATE TABLE x (a text);", settings).shown
    ]
    assert lint("CREATE TABLE x (a text);").shown == ()


@pytest.mark.parametrize(
    "table",
    [
        {"disable": "drop-table"},
        {"severity": {"drop-table": "fatal"}},
        {"target_version": "sixteen"},
        {"large_table_bytes": "lots"},
        {"colour": True},
    ],
)
def test_bad_lint_settings_are_one_config_error_when_read(table):
    with pytest.raises(ConfigError, match=r"^\[tool\.chainops\.lint\]"):
        parse_lint_settings(table)


def test_unknown_rule_in_settings_is_a_config_error_when_linting():
    with pytest.raises(ConfigError, match="unknown rule 'drop-tabel'"):
        lint(DANGER, parse_lint_settings({"disable": ["drop-tabel"]}))


@pytest.mark.parametrize(("given", "size"), [(5, 5), ("2kB", 2048), ("1 GB", 1 << 30)])
def test_size_threshold_reads_units_when_given_as_text(given, size):
    assert parse_lint_settings({"large_table_bytes": given}).large_table_bytes == size


def test_create_template_lints_clean_when_written():
    text = TEMPLATE.format(name="x", date="2026-01-01", description="d")

    assert lint(text).findings == ()


# --- output -----------------------------------------------------------------------

_LINE = re.compile(
    r"^(?P<path>[\w./-]+):(?P<line>\d+):(?P<col>\d+): "
    r"(error|warning) ([a-z-]+) .+; fix: .+$"
)


def test_text_lines_read_file_line_col_severity_rule_message_and_fix_when_rendered():
    lines = report.render(lint(DANGER), "text")

    assert all(_LINE.match(line) for line in lines[:-1]), lines
    assert lines[0].startswith("001-schema/001-m.sql:1:1: error add-required-column ")
    assert lines[-1] == "1 file linted for PostgreSQL 14: 1 error, 1 warning"


def test_json_parses_and_keeps_suppressed_findings_when_rendered():
    found = lint("-- chainops:lint-ignore=drop-table gone since v2\n" + DANGER)
    document = json.loads(report.render(found, "json")[0])

    assert document["errors"] == 1
    assert [(f["rule"], f["suppressed"]) for f in document["findings"]] == [
        ("add-required-column", None),
        ("drop-table", "gone since v2"),
    ]


# The part of the SARIF 2.1.0 schema (docs.oasis-open.org/sarif/sarif/v2.1.0) that
# chainops writes, with its required properties and enums. The official schema is
# not vendored; docs/lint.md says how it was checked against it.
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {
                                                            "enum": [
                                                                "none",
                                                                "note",
                                                                "warning",
                                                                "error",
                                                            ]
                                                        },
                                                        "enabled": {"type": "boolean"},
                                                    },
                                                    "additionalProperties": False,
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": {"type": "object", "required": ["text"]},
                                "locations": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "properties": {
                                                            "uri": {"type": "string"}
                                                        },
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "properties": {
                                                            "startLine": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            },
                                                            "startColumn": {
                                                                "type": "integer",
                                                                "minimum": 1,
                                                            },
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                                "suppressions": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "required": ["kind"],
                                        "properties": {
                                            "kind": {"enum": ["inSource", "external"]},
                                            "justification": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_sarif_validates_against_the_sarif_schema_when_rendered():
    found = lint("-- chainops:lint-ignore=drop-table gone since v2\n" + DANGER)
    document = json.loads(report.render(found, "sarif")[0])

    jsonschema.Draft7Validator(SARIF_SUBSET).validate(document)
    rules = document["runs"][0]["tool"]["driver"]["rules"]
    results = document["runs"][0]["results"]
    assert [r["id"] for r in rules] == list(RULES)
    assert [rules[r["ruleIndex"]]["id"] for r in results] == [
        r["ruleId"] for r in results
    ]
    assert results[1]["suppressions"] == [
        {"kind": "inSource", "justification": "gone since v2"}
    ]


def test_github_annotations_escape_their_properties_when_rendered():
    found = LintReport(lint(DANGER).findings[:1], 1, 14, base="migrations/a,b:c/")
    line = report.render(found, "github")[0]

    assert line.startswith(
        "::error file=migrations/a%2Cb%3Ac/001-schema/001-m.sql,line=1,col=1,"
    )
    assert "title=add-required-column::" in line


def test_unknown_format_is_a_config_error_when_rendered():
    with pytest.raises(ConfigError, match="--format 'xml'"):
        report.render(lint(DANGER), "xml")


def test_docs_describe_every_rule_when_the_catalog_changes():
    headings = re.findall(r"^### `([a-z-]+)`", DOCS.read_text(encoding="utf-8"), re.M)

    assert headings == list(RULES)


def test_time_of_day_is_not_in_any_output_when_rendered():
    # Output is stable across runs and servers: nothing depends on the clock.
    year = str(datetime.now(timezone.utc).year)
    for fmt in ("text", "json", "sarif", "github"):
        assert year not in "\n".join(report.render(lint(DANGER), fmt))


def test_migrate_event_marks_errors_and_warnings_when_the_watcher_prints_it():
    from chainops import report as main_report
    from chainops.events import Linted

    lines = tuple(report.finding_line(f) for f in lint(DANGER).shown)
    text = main_report.event_line(Linted(lines, 1, 1))

    assert text.splitlines() == [f"✗ {lines[0]}", f"○ {lines[1]}"]
