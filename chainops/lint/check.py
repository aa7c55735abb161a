"""Lint a list of migration texts: parse, run the rules, weigh the locks against
table sizes, apply `[tool.chainops.lint]` and the files' lint-ignore lines.

Pure: the caller reads the files and, when it has a database, the table sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from chainops.config import LintSettings
from chainops.errors import ConfigError, MigrationFileError
from chainops.lint import locks, rules
from chainops.lint.catalog import RULES, LintFinding, Severity
from chainops.source.directives import parse_directives, parse_lint_ignores
from chainops.source.files import CATEGORY_RE, locate
from chainops.source.statements import PARSE_LIMIT, parse_tree

DEFAULT_VERSION = 14
"""The PostgreSQL major version assumed without a setting or a database."""


@dataclass(frozen=True)
class Source:
    """One file to lint; `path` relative to the migrations folder when inside it."""

    path: str
    text: str


@dataclass(frozen=True)
class TableSize:
    """A table in the connected database, from pg_class."""

    rows: int | None  # reltuples; None before the first ANALYZE
    bytes: int  # pg_total_relation_size


@dataclass(frozen=True)
class Locking:
    """A statement that blocks writes to a table that existed before the run."""

    path: str
    line: int
    column: int
    statement: str  # its first words, e.g. ALTER TABLE
    index: int  # its place in the file, for lint-ignore
    table: str
    lock: str
    level: int


@dataclass(frozen=True)
class _Scope:
    path: str
    index: int | None  # the statement it covers; None for the whole file
    rules: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Analysis:
    """What the rules found before configuration, sizes and suppression."""

    findings: tuple[tuple[int, LintFinding], ...]  # (statement index, finding)
    locking: tuple[Locking, ...]
    scopes: tuple[_Scope, ...]
    files: int
    version: int


@dataclass(frozen=True)
class LintReport:
    findings: tuple[LintFinding, ...]
    files: int
    version: int
    note: str | None = None  # how the files were chosen, when not as asked
    base: str = ""  # put before each path in output: the migrations folder

    @property
    def errors(self) -> int:
        return sum(f.is_error for f in self.findings)

    @property
    def shown(self) -> tuple[LintFinding, ...]:
        return tuple(f for f in self.findings if f.suppressed is None)


def analyze(
    sources: Sequence[Source],
    version: int,
    *,
    one_run: bool,
    skip_unparsable: bool = False,
) -> Analysis:
    """Run every rule over the files in order.

    `one_run`: the files are applied together (the pending ones), so a table one of
    them creates is new for the rest; otherwise each file is its own deploy.
    `skip_unparsable`: leave a file the parser refuses to the server (migrate does:
    the server places the error and records the failed attempt).
    """
    run = rules.Run()
    found: list[tuple[int, LintFinding]] = []
    locking: list[Locking] = []
    scopes: list[_Scope] = []
    for source in sources:
        if not one_run:
            run.created.clear()
            run.indexes.clear()
        if len(source.text) > PARSE_LIMIT:  # seed data: parsing it costs seconds
            continue
        try:
            spans = parse_tree(source.text, source.path)
        except MigrationFileError:
            if not skip_unparsable:
                raise
            continue
        directives = parse_directives(source.text, source.path)
        nodes = [node for _, _, node in spans]
        texts = [source.text[start:end] for start, end, _ in spans]
        category = CATEGORY_RE.match(source.path.rpartition("/")[0].rpartition("/")[2])
        facts = rules.FileFacts(
            source.path,
            nodes,
            texts,
            transactional=directives.no_transaction_line is None
            and rules.is_transactional(nodes),
            schema_category=bool(category and int(category.group(1)) == 1),
            version=version,
            no_transaction_directive=directives.no_transaction_line is not None,
        )
        hits, blocking = rules.check_file(facts, run)
        places = _places(source.text, [start for start, _, _ in spans])
        for hit in hits:
            rule = RULES[hit.rule]
            line, column = places[hit.index]
            touches = locks.touches(nodes[hit.index])
            strongest = max(touches, key=lambda t: t.level, default=None)
            finding = LintFinding(
                hit.rule, rule.severity, source.path, line, column, hit.message,
                rule.fix, strongest.name if strongest else None,
            )  # fmt: skip
            found.append((hit.index, finding))
        for index, touch in blocking:
            line, column = places[index]
            words = " ".join(texts[index].split()[:2]).upper()
            locking.append(
                Locking(source.path, line, column, words, index, touch.table,
                        touch.name, touch.level)
            )  # fmt: skip
        scopes += _scopes(source, spans, found)
    return Analysis(tuple(found), tuple(locking), tuple(scopes), len(sources), version)


def judge(
    analysis: Analysis,
    settings: LintSettings,
    sizes: Mapping[str, TableSize] | None = None,
) -> LintReport:
    """Add the size findings, then apply the settings and the lint-ignore lines."""
    _check_rule_names(settings)
    found = list(analysis.findings)
    for lock in analysis.locking:
        size = (sizes or {}).get(lock.table)
        if size is not None and _is_large(size, settings):
            found.append((lock.index, _large(lock, size)))
    overrides = dict(settings.severity)
    scopes: dict[str, list[_Scope]] = {}
    for scope in analysis.scopes:
        scopes.setdefault(scope.path, []).append(scope)
    kept: list[LintFinding] = []
    for index, finding in found:
        rule = RULES[finding.rule]
        on = rule.enabled or finding.rule in settings.enable
        if not on or finding.rule in settings.disable:
            continue
        if finding.rule in overrides:
            finding = replace(finding, severity=Severity(overrides[finding.rule]))
        reason = _suppressed(scopes.get(finding.path, ()), finding, index)
        kept.append(replace(finding, suppressed=reason) if reason else finding)
    kept.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    return LintReport(tuple(kept), analysis.files, analysis.version)


def _check_rule_names(settings: LintSettings) -> None:
    named = settings.disable | settings.enable | {r for r, _ in settings.severity}
    unknown = sorted(named - set(RULES))
    if unknown:
        raise ConfigError(
            f"[tool.chainops.lint] names an unknown rule {unknown[0]!r}; the rules "
            "are listed in docs/lint.md"
        )


def _is_large(size: TableSize, settings: LintSettings) -> bool:
    rows = size.rows if size.rows is not None else 0
    return rows > settings.large_table_rows or size.bytes > settings.large_table_bytes


def _large(lock: Locking, size: TableSize) -> LintFinding:
    rule = RULES["large-table-lock"]
    rows = "rows unknown" if size.rows is None else f"about {size.rows:,} rows"
    blocks = "reads and writes" if lock.level == locks.ACCESS_EXCLUSIVE else "writes"
    message = (
        f"{lock.statement} takes {lock.lock} on {lock.table} ({rows}, "
        f"{human_size(size.bytes)} in the connected database): {blocks} wait for it"
    )
    return LintFinding(
        rule.id, rule.severity, lock.path, lock.line, lock.column, message, rule.fix,
        lock.lock,
    )  # fmt: skip


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover - the loop returns


def _places(text: str, starts: Sequence[int]) -> list[tuple[int, int]]:
    """Line and column of each statement start, counted once through the text."""
    places, line, line_start, scanned = [], 1, 0, 0
    for offset in starts:
        if newlines := text.count("\n", scanned, offset):
            line += newlines
            line_start = text.rfind("\n", scanned, offset) + 1
        scanned = offset
        places.append((line, offset - line_start + 1))
    return places


def _scopes(
    source: Source,
    spans: Sequence[tuple[int, int, object]],
    found: list[tuple[int, LintFinding]],
) -> list[_Scope]:
    """The file's lint-ignore lines: above the first statement they cover the file,
    elsewhere the statement they precede or sit in. A bad one is a finding."""
    scopes = []
    first = spans[0][0] if spans else len(source.text)
    for ignore in parse_lint_ignores(source.text):
        if ignore.offset < first:
            index: int | None = None
        else:
            ends = (i for i, (_, end, _) in enumerate(spans) if end > ignore.offset)
            index = next(ends, len(spans) - 1)
        unknown = [r for r in ignore.rules if r not in RULES]
        problem = (
            "names no rule" if not ignore.rules
            else f"names the unknown rule {unknown[0]}" if unknown
            else "gives no reason" if not ignore.reason
            else None
        )  # fmt: skip
        if problem:
            rule = RULES["bad-lint-ignore"]
            line = locate(source.text, ignore.offset)[0]
            message = f"chainops:lint-ignore {problem}; nothing is suppressed by it"
            found.append((-1, LintFinding(rule.id, rule.severity, source.path, line, 1,
                                          message, rule.fix)))  # fmt: skip
            continue
        scopes.append(_Scope(source.path, index, ignore.rules, ignore.reason))
    return scopes


def _suppressed(
    scopes: Sequence[_Scope], finding: LintFinding, index: int
) -> str | None:
    if finding.rule == "bad-lint-ignore":
        return None
    for scope in scopes:
        if finding.rule not in scope.rules:
            continue
        if scope.index is None or scope.index == index:
            return scope.reason
    return None
