"""The lint verb: which files (pending, all, or the paths given), and the database
when one is configured and reachable. A sibling of `api`, taking Settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from chainops import api, plan
from chainops.config import Settings
from chainops.errors import CannotConnect, ConfigError, MigrationFileError
from chainops.lint.check import LintReport, Source
from chainops.lint.live import lint_files, sources_of
from chainops.model import MigrationFile
from chainops.source.files import normalise
from chainops.store import ledger


def lint(
    settings: Settings,
    paths: Sequence[str] = (),
    *,
    all_files: bool = False,
    offline: bool = False,
) -> LintReport:
    """Lint the pending migrations (one run, in order), every file, or `paths`.

    Pending files need the ledger: without a database (none configured, `offline`,
    or unreachable) every file is linted instead and the report says so.
    """
    if paths:
        sources = read_paths(paths)
        return _with_database(settings, sources, offline, one_run=False)
    return replace(_folder(settings, all_files, offline), base=_base(settings))


def _folder(settings: Settings, all_files: bool, offline: bool) -> LintReport:
    files = api.load_files(settings)
    if all_files:
        return _with_database(settings, sources_of(files), offline, one_run=False)
    if offline:
        return _every(settings, files, "--offline: no ledger to tell what is pending")
    if not _has_database(settings):
        return _every(settings, files, "no DATABASE_URL: the ledger cannot tell what "
                      "is pending")  # fmt: skip
    where = api.target(settings)
    try:
        with api.open_session(where, "lint") as conn:
            snapshot = ledger.read_snapshot(conn, settings.ledger_schema)
            pending = plan.find_pending(snapshot.blocks, files) + [
                step.file for step in plan.plan_repeatables(snapshot.blocks, files)
            ]  # in the order migrate applies them: repeatables last
            return lint_files(conn, settings, sources_of(pending), one_run=True)
    except CannotConnect:
        return _every(settings, files, f"cannot connect to {where.description}")


def _base(settings: Settings) -> str:
    """The migrations folder as seen from here, so printed paths open in an editor."""
    folder = settings.migrations_dir.resolve()
    here = Path.cwd().resolve()
    shown = folder.relative_to(here) if folder.is_relative_to(here) else folder
    return f"{shown.as_posix()}/"


def _every(settings: Settings, files: Sequence[MigrationFile], why: str) -> LintReport:
    note = f"{why}; linted every file, each as its own deploy, without the database"
    return lint_files(None, settings, sources_of(files), one_run=False, note=note)


def _has_database(settings: Settings) -> bool:
    return bool(settings.database_url or settings.uses_libpq_env)


def _with_database(
    settings: Settings, sources: Sequence[Source], offline: bool, *, one_run: bool
) -> LintReport:
    """Use the database for its version and table sizes when it is reachable."""
    if offline or not _has_database(settings):
        return lint_files(None, settings, sources, one_run=one_run)
    where = api.target(settings)
    try:
        with api.open_session(where, "lint") as conn:
            return lint_files(conn, settings, sources, one_run=one_run)
    except CannotConnect:
        note = f"cannot connect to {where.description}; linted without the database"
        return lint_files(None, settings, sources, one_run=one_run, note=note)


def read_paths(paths: Sequence[str]) -> list[Source]:
    """The files named on the command line (folders: their .sql files), in order."""
    sources: list[Source] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.sql") if p.is_file())
        elif path.is_file():
            found = [path]
        else:
            raise ConfigError(
                f"{given} does not exist; pass migration files or folders to lint"
            )
        sources += [_read(file) for file in found]
    return sources


def _read(path: Path) -> Source:
    shown = path.as_posix()  # as given: a hook's annotations point at its files
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MigrationFileError(
            f"{shown} cannot be read ({err.strerror}); check its permissions"
        ) from err
    return Source(shown, normalise(data, shown).decode("utf-8"))
