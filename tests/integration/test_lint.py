"""The linter against a real PostgreSQL: pending files from the ledger, table sizes
from pg_class, and migrate refusing an unsuppressed lint error in production."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chainops import api
from chainops.config import LintSettings
from chainops.errors import LintFailed
from chainops.events import Linted
from chainops.lint import verb

BIG = "001-schema/001-orders.sql"
ORDERS = "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(12,2));\n"
ADD_NOTE = (
    "ALTER TABLE orders ADD COLUMN note text;\n"  # lints clean: only size matters
)


def fill_orders(project, rows: int) -> None:
    project.write({BIG: ORDERS})
    api.apply(project.target)
    project.query(
        "INSERT INTO orders SELECT g, g FROM generate_series(1, %s) g", (rows,)
    )
    project.query("ANALYZE orders")


def test_lint_names_lock_rows_and_size_when_a_pending_file_locks_a_big_table(project):
    fill_orders(project, 20_000)
    project.write({"001-schema/002-note.sql": ADD_NOTE})
    settings = replace(project.settings, lint=LintSettings(large_table_rows=10_000))

    report = verb.lint(settings)

    assert report.files == 1  # only the pending file
    [finding] = report.shown
    assert finding.rule == "large-table-lock"
    assert (finding.path, finding.line, finding.column) == (
        "001-schema/002-note.sql",
        1,
        1,
    )
    assert finding.lock == "ACCESS EXCLUSIVE"
    assert "takes ACCESS EXCLUSIVE on orders (about 20,000 rows" in finding.message
    assert (
        " MB in the connected database" in finding.message or " kB" in finding.message
    )


def test_lint_is_quiet_when_the_table_is_under_the_thresholds(project):
    fill_orders(project, 500)
    project.write({"001-schema/002-note.sql": ADD_NOTE})
    settings = replace(project.settings, lint=LintSettings(large_table_rows=10_000))

    assert verb.lint(settings).shown == ()


def test_lint_uses_the_server_version_when_no_target_version_is_set(project):
    project.write({BIG: ORDERS})
    version = int(str(project.query("SHOW server_version_num")[0][0])) // 10000

    assert verb.lint(project.settings).version == version


def test_lint_offline_lints_every_file_without_sizes_when_asked(project):
    fill_orders(project, 20_000)
    project.write({"001-schema/002-note.sql": ADD_NOTE})
    settings = replace(project.settings, lint=LintSettings(large_table_rows=10_000))

    report = verb.lint(settings, offline=True)

    assert report.files == 2
    assert report.shown == ()
    assert report.note is not None
    assert report.note.startswith("--offline")


def test_lint_falls_back_to_every_file_when_the_database_is_unreachable(project):
    project.write({BIG: ORDERS})
    settings = replace(project.settings, database_url="postgresql://u@127.0.0.1:1/x")

    report = verb.lint(settings)

    assert report.note is not None
    assert report.note.startswith("cannot connect to 127.0.0.1:1/x")
    assert report.files == 1


DANGEROUS = "CREATE INDEX orders_total ON orders (total);\n"


def test_migrate_refuses_an_unsuppressed_lint_error_when_in_production(project):
    fill_orders(project, 10)
    project.write({"001-schema/002-index.sql": DANGEROUS})
    production = project.target_with(environment="production")
    events: list[object] = []

    with pytest.raises(LintFailed) as caught:
        api.apply(production, on_event=events.append, backup=False)

    assert str(caught.value).startswith(
        "001-schema/002-index.sql:1:1: index-not-concurrent CREATE INDEX takes SHARE"
    )
    assert caught.value.exit_code == 8
    assert next(e for e in events if isinstance(e, Linted)).errors == 1
    assert project.query("SELECT to_regclass('orders_total')")[0][0] is None


def test_migrate_refuses_a_lint_error_when_the_ledger_says_production(project):
    project.write({BIG: ORDERS})
    api.apply(project.target_with(environment="production"), backup=False)  # marks
    project.write({"001-schema/002-index.sql": DANGEROUS})

    with pytest.raises(LintFailed):
        api.apply(project.target_with(environment="development"), backup=False)

    assert project.query("SELECT to_regclass('orders_total')")[0][0] is None


def test_migrate_applies_a_suppressed_finding_when_in_production(project):
    fill_orders(project, 10)
    project.write(
        {
            "001-schema/002-index.sql": "-- chainops:lint-ignore=index-not-concurrent "
            "orders is tiny and written once a day\n" + DANGEROUS
        }
    )
    production = project.target_with(environment="production")

    result = api.apply(production, backup=False)

    assert [a.file.path for a in result.applied] == ["001-schema/002-index.sql"]


def test_migrate_prints_findings_and_applies_when_not_in_production(project):
    fill_orders(project, 10)
    project.write({"001-schema/002-index.sql": DANGEROUS})
    events: list[object] = []

    result = api.apply(project.target, on_event=events.append)

    [linted] = [e for e in events if isinstance(e, Linted)]
    assert linted.lines[0].startswith(
        "001-schema/002-index.sql:1:1: error index-not-concurrent "
    )
    assert len(result.applied) == 1
    assert events.index(linted) < next(
        i for i, e in enumerate(events) if type(e).__name__ == "Applied"
    )


def test_migrate_lints_nothing_when_nothing_is_pending(project, monkeypatch):
    fill_orders(project, 10)
    import chainops.lint.live as live

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("linted with nothing pending")

    monkeypatch.setattr(live, "lint_files", refuse)

    assert api.apply(project.target).applied == ()


def test_noop_migrate_imports_neither_parser_nor_catalog_when_nothing_is_pending(
    project,
):
    import subprocess
    import sys

    fill_orders(project, 10)
    code = (
        "import sys\n"
        "from chainops import api\n"
        "from chainops.config import load_settings\n"
        f"settings = load_settings(database_url={project.db_url!r})\n"
        "assert api.apply(api.target(settings)).applied == ()\n"
        "heavy = ('pglast', 'chainops.lint', 'chainops.store.catalog')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert done.stdout.strip() == "[]"


def test_lint_pending_includes_a_changed_repeatable_file_as_migrate_does(project):
    project.write({BIG: ORDERS})
    api.apply(project.target)
    project.write({"002-functions/R-idx.sql": "CREATE INDEX o_i ON orders (id);\n"})

    report = verb.lint(project.settings)

    assert report.files == 1
    assert [f.rule for f in report.shown] == ["index-not-concurrent"]
