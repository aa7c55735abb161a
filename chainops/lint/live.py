"""Lint files against a database when there is one: its version and table sizes.

The one place `execute` (before applying) and the lint verb share.
"""

from __future__ import annotations

from collections.abc import Sequence

from chainops.config import Settings
from chainops.lint.check import DEFAULT_VERSION, LintReport, Source, analyze, judge
from chainops.model import MigrationFile
from chainops.store.connection import Conn
from chainops.store.table_sizes import read_server_version, read_table_sizes


def sources_of(files: Sequence[MigrationFile]) -> list[Source]:
    return [Source(file.path, file.text) for file in files]


def lint_files(
    conn: Conn | None,
    settings: Settings,
    sources: Sequence[Source],
    *,
    one_run: bool,
    note: str | None = None,
    skip_unparsable: bool = False,
) -> LintReport:
    """Lint `sources` for the configured PostgreSQL version, else the server's;
    with a connection the size-aware rule weighs each blocking lock."""
    version = settings.lint.target_version
    if version is None:
        version = read_server_version(conn) if conn is not None else DEFAULT_VERSION
    analysis = analyze(
        sources, version, one_run=one_run, skip_unparsable=skip_unparsable
    )
    sizes = {}
    if conn is not None and analysis.locking:
        sizes = read_table_sizes(conn, {lock.table for lock in analysis.locking})
    report = judge(analysis, settings.lint, sizes)
    if note:
        from dataclasses import replace

        report = replace(report, note=note)
    return report
