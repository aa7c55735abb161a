"""Lint findings as text lines, JSON, SARIF 2.1.0 and GitHub workflow commands.

Reads a LintReport; never prints.
"""

from __future__ import annotations

import json
from typing import Any

from chainops import __version__
from chainops.errors import ConfigError
from chainops.lint.catalog import RULES, LintFinding
from chainops.lint.check import LintReport

FORMATS = ("text", "json", "sarif", "github")
DOCS = "docs/lint.md"
_SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def render(report: LintReport, output_format: str | None) -> list[str]:
    """The report in one of FORMATS (text when None), as lines to print."""
    chosen = output_format or "text"
    if chosen == "json":
        return [json_text(report)]
    if chosen == "sarif":
        return [sarif_text(report)]
    if chosen == "github":
        return [*github_lines(report), *text_lines(report)[-1:]]
    if chosen != "text":
        raise ConfigError(
            f"--format {chosen!r} is not a lint output format; use one of "
            f"{', '.join(FORMATS)}"
        )
    return text_lines(report)


def finding_line(finding: LintFinding, base: str = "") -> str:
    """`file:line:col: severity rule-id message; fix`, the form editors jump to."""
    return (
        f"{base}{finding.path}:{finding.line}:{finding.column}: {finding.severity} "
        f"{finding.rule} {finding.message}; fix: {finding.fix}"
    )


def text_lines(report: LintReport) -> list[str]:
    """One line per unsuppressed finding, then a summary line."""
    lines = [finding_line(f, report.base) for f in report.shown]
    errors = report.errors
    warnings = len(report.shown) - errors
    hidden = len(report.findings) - len(report.shown)
    summary = (
        f"{report.files} file{'s' if report.files != 1 else ''} linted for "
        f"PostgreSQL {report.version}: {errors} error{'s' if errors != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
    if hidden:
        summary += f", {hidden} suppressed with a reason"
    if report.note:
        lines.insert(0, f"○ {report.note}")
    return [*lines, summary]


def finding_json(finding: LintFinding, base: str = "") -> dict[str, Any]:
    return {
        "path": base + finding.path,
        "line": finding.line,
        "column": finding.column,
        "severity": str(finding.severity),
        "rule": finding.rule,
        "message": finding.message,
        "fix": finding.fix,
        "lock": finding.lock,
        "suppressed": finding.suppressed,
    }


def json_text(report: LintReport) -> str:
    return json.dumps(
        {
            "files": report.files,
            "postgresql": report.version,
            "errors": report.errors,
            "note": report.note,
            "findings": [finding_json(f, report.base) for f in report.findings],
        },
        indent=2,
        ensure_ascii=False,
    )


def github_lines(report: LintReport) -> list[str]:
    """GitHub Actions workflow commands: annotations on the pull request's lines."""
    lines = []
    for f in report.shown:
        level = "error" if f.is_error else "warning"
        where = f"file={_escape(report.base + f.path, True)},line={f.line}"
        text = _escape(f"{f.message}; fix: {f.fix}", False)
        lines.append(f"::{level} {where},col={f.column},title={f.rule}::{text}")
    return lines


def _escape(text: str, property_value: bool) -> str:
    # The escapes of @actions/core's toCommandValue / escapeProperty.
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def sarif_text(report: LintReport) -> str:
    """A SARIF 2.1.0 log: one run, every rule, suppressed findings marked so."""
    rules = [
        {
            "id": rule.id,
            "shortDescription": {"text": rule.summary},
            "help": {"text": f"fix: {rule.fix}"},
            "helpUri": f"{DOCS}#{rule.id}",
            "defaultConfiguration": {
                "level": str(rule.severity),
                "enabled": rule.enabled,
            },
        }
        for rule in RULES.values()
    ]
    index = {rule_id: n for n, rule_id in enumerate(RULES)}
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": index[f.rule],
            "level": str(f.severity),
            "message": {"text": f"{f.message}; fix: {f.fix}"},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": report.base + f.path},
                        "region": {"startLine": f.line, "startColumn": f.column},
                    }
                }
            ],
        }
        if f.suppressed is not None:
            result["suppressions"] = [
                {"kind": "inSource", "justification": f.suppressed}
            ]
        results.append(result)
    log = {
        "$schema": _SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "chainops lint",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False)
