"""The watcher against real files and a real database: a watchdog observer on the
project's migrations folder, applying on its own thread as `chainops watch` does.

Every wait is on a printed line with a timeout; an autouse fixture fails any test
that leaves a thread running.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest

from chainops.dev.watch import Watcher
from chainops.errors import Refused
from tests.fixtures.hashing import hash_text

TIMEOUT = 20.0
DELAY = 0.2  # shorter than the default: the tests wait for every apply
TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"
TEMPLATE = "-- Migration: b\n-- Description: later\n\n-- Your SQL here\n"


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Fail on a thread left running (as watchdog's own tests do)."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


class Lines:
    """What the watcher printed, with a wait for the line a test expects."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def say(self, line: str) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[str], bool], after: int = 0) -> str:
        """The first line from index `after` on that matches; fails after TIMEOUT."""
        found: list[str] = []

        def match() -> bool:
            found[:] = [ln for ln in self.lines[after:] if predicate(ln)]
            return bool(found)

        with self._changed:
            if not self._changed.wait_for(match, TIMEOUT):
                pytest.fail(f"no expected line within {TIMEOUT} s; got {self.lines}")
        return found[0]

    def starting(self, prefix: str, after: int = 0) -> str:
        return self.wait_for(lambda line: line.startswith(prefix), after)

    def mark(self) -> int:
        with self._changed:
            return len(self.lines)


@contextmanager
def watching_lines(project, delay: float = DELAY) -> Iterator[Lines]:
    """A watcher running on its own thread, as `chainops watch` runs it."""
    lines = Lines()
    with Watcher(project.settings, lines.say, delay=delay, hold=TIMEOUT) as watcher:
        thread = threading.Thread(target=watcher.run, name="test-watcher")
        thread.start()
        try:
            lines.starting("○ watching migrations/")
            yield lines
        finally:
            watcher.close()
            thread.join(TIMEOUT)


@pytest.fixture
def watching(project) -> Iterator[Lines]:
    with watching_lines(project) as lines:
        yield lines


def blocks(project) -> list[tuple[object, ...]]:
    return project.query(
        "SELECT path, hash FROM blockchain_migrations WHERE status = 'completed'"
        " ORDER BY height"
    )


def attempts(project, path: str) -> list[tuple[object, ...]]:
    return project.query(
        "SELECT outcome FROM blockchain_migrations_history WHERE path = %s ORDER BY id",
        (path,),
    )


def tables(project) -> set[str]:
    rows = project.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename NOT LIKE 'blockchain_migrations%'"
    )
    return {str(r[0]) for r in rows}


def test_watch_applies_new_file_when_written(project, watching):
    project.write({"001-schema/001-a.sql": TABLE_A})

    line = watching.starting("✓ applied #1001 001-a.sql (")

    assert line.endswith(" ms)")
    assert blocks(project) == [("001-schema/001-a.sql", hash_text(TABLE_A))]
    assert tables(project) == {"a"}


def test_watch_applies_a_file_once_its_writer_closes_it_without_the_quiet_period(
    project,
):
    # A quiet period far longer than the wait: only the close can trigger the apply
    # (inotify reports closes on Linux, where the tests run). The folder exists
    # first: files found in a folder created meanwhile come with no close.
    (project.migrations / "001-schema").mkdir()
    with watching_lines(project, delay=10 * TIMEOUT) as watching:
        mark = watching.mark()
        project.write({"001-schema/001-a.sql": TABLE_A})

        watching.starting("✓ applied #1001 001-a.sql (", mark)

    assert tables(project) == {"a"}


def test_watch_applies_the_whole_file_when_its_writer_closes_and_appends_at_once(
    project, watching
):
    # A shell's `> f` then `>> f`: the first close is not the end of the file.
    project.write({"001-schema/001-a.sql": TABLE_A})
    watching.starting("✓ applied #1001")
    # From a shell of its own, as a user's: the watcher's threads share this
    # process's interpreter, and could hold the test between its two writes.
    subprocess.run(
        "echo 'CREATE TABLE w1 (id int);' > 002-two.sql;"
        " echo 'CREATE TABLE w2 (id int);' >> 002-two.sql",
        shell=True, check=True, cwd=project.migrations / "001-schema",
    )  # fmt: skip

    watching.starting("✓ applied #1002 002-two.sql (")

    assert blocks(project)[1] == (
        "001-schema/002-two.sql",
        hash_text("CREATE TABLE w1 (id int);\nCREATE TABLE w2 (id int);\n"),
    )


def test_watch_prints_a_saved_files_lint_findings_then_applies_it(project, watching):
    project.write({"001-schema/001-a.sql": TABLE_A})
    watching.starting("✓ applied #1001")
    mark = watching.mark()
    project.write({"001-schema/002-i.sql": "CREATE INDEX a_id ON a (id);\n"})

    finding = watching.wait_for(lambda line: "index-not-concurrent" in line, mark)
    applied = watching.starting("✓ applied #1002 002-i.sql (", mark)

    assert "001-schema/002-i.sql:1:1: error index-not-concurrent" in finding
    assert watching.lines.index(finding) < watching.lines.index(applied)


def test_watch_applies_pending_files_when_started(project):
    project.write({"001-schema/001-a.sql": TABLE_A})  # written just now: it settles
    path = project.migrations / "001-schema/002-b.sql"
    path.write_text(TABLE_B)
    os.utime(path, (0, 0))  # and one written long ago

    with watching_lines(project) as lines:
        lines.starting("✓ applied #1001 001-a.sql (")
        lines.starting("✓ applied #1002 002-b.sql (")

    assert tables(project) == {"a", "b"}


def test_watch_waits_for_sql_then_applies_when_template_filled(project, watching):
    project.write({"001-schema/001-a.sql": TEMPLATE})
    watching.starting("○ 001-schema/001-a.sql waits for SQL")
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]

    project.write({"001-schema/001-a.sql": TEMPLATE + TABLE_A})

    watching.starting("✓ applied #1001 001-a.sql (")
    assert sum("waits for SQL" in line for line in watching.lines) == 1
    assert blocks(project) == [("001-schema/001-a.sql", hash_text(TEMPLATE + TABLE_A))]


def test_watch_waits_for_a_file_an_in_place_save_just_created_before_refusing_it(
    project,
):
    # A save in place creates the file empty, then writes it. A round that reads the
    # folder between the two must not call the file empty: once it has settled it is.
    project.write({"001-schema/001-a.sql": TABLE_A})
    lines = Lines()
    # Rounds are run here by hand, so each reads the folder exactly when meant to.
    with Watcher(project.settings, lines.say, delay=DELAY, hold=TIMEOUT) as watcher:
        (project.migrations / "001-schema/002-b.sql").write_bytes(b"")
        watcher.reconcile(frozenset())
        assert lines.lines == []

        threading.Event().wait(DELAY * 3)
        watcher.reconcile(frozenset({"001-schema/002-b.sql"}))

    assert lines.lines == [
        "✗ 001-schema/002-b.sql is empty; write the migration or delete the file"
    ]


def test_watch_holds_syntax_error_then_applies_when_fixed(project, watching):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a (;\n"})

    line = watching.starting("✗ 001-schema/001-a.sql:1:17: syntax error")
    assert line.endswith("; fix the SQL and save the file again")
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]

    project.write({"001-schema/001-a.sql": TABLE_A})

    watching.starting("✓ applied #1001 001-a.sql (")
    assert attempts(project, "001-schema/001-a.sql") == [("completed",)]


def test_watch_warns_then_notices_restore_when_applied_file_edited(project, watching):
    project.write({"001-schema/001-a.sql": TABLE_A})
    watching.starting("✓ applied #1001")
    mark = watching.mark()

    project.write({"001-schema/001-a.sql": TABLE_A + "ALTER TABLE a ADD c int;\n"})

    warning = watching.starting("✗ WARNING: 001-schema/001-a.sql was edited", mark)
    assert "(block 1, applied " in warning
    advice = "\n".join(watching.lines[mark:])
    assert "git restore migrations/001-schema/001-a.sql" in advice
    assert "inv migrate.create" in advice
    mark = watching.mark()

    project.write({"001-schema/001-a.sql": TABLE_A})

    watching.starting("✓ 001-schema/001-a.sql is intact again", mark)
    assert blocks(project) == [("001-schema/001-a.sql", hash_text(TABLE_A))]


def test_watch_applies_target_when_saved_atomically(project, watching):
    folder = project.migrations / "001-schema"
    folder.mkdir()
    temporary = folder / ".001-a.sql.tmp-4242"
    temporary.write_text(TABLE_A)

    os.replace(temporary, folder / "001-a.sql")

    watching.starting("✓ applied #1001 001-a.sql (")
    assert blocks(project) == [("001-schema/001-a.sql", hash_text(TABLE_A))]


def test_watch_ignores_editor_files_when_they_look_like_sql(project, watching):
    project.write(
        {
            "001-schema/.001-a.sql.swp": "CREATE TABLE swap ();\n",
            "001-schema/001-a.sql~": "CREATE TABLE backup ();\n",
            "001-schema/.#001-a.sql": "CREATE TABLE lock ();\n",
            "001-schema/001-a.sql": TABLE_A,
        }
    )

    watching.starting("✓ applied #1001 001-a.sql (")
    assert tables(project) == {"a"}


def test_watch_never_applies_truncated_file_when_written_in_chunks(project, watching):
    # The folder must be watched already: writes made while a new folder's watch is
    # being set up are not reported, and a pause after them looks like a finished file.
    project.write({"001-schema/001-a.sql": TABLE_A})
    watching.starting("✓ applied #1001")
    statements = [f"CREATE TABLE t{i} (id int);\n" for i in range(40)]
    with (project.migrations / "001-schema/002-many.sql").open("w") as out:
        for i, statement in enumerate(statements):
            out.write(statement)
            out.flush()  # every prefix on disk is a valid, complete-looking file
            if i == len(statements) // 2:
                # A writer pausing longer than the quiet period keeps the file open.
                threading.Event().wait(DELAY * 3)

    watching.starting("✓ applied #1002 002-many.sql (")
    assert blocks(project)[1] == (
        "001-schema/002-many.sql",
        hash_text("".join(statements)),
    )
    assert tables(project) == {"a"} | {f"t{i}" for i in range(40)}


def test_watch_picks_up_new_category_folder_when_created(project, watching):
    project.write({"001-schema/001-a.sql": TABLE_A})
    watching.starting("✓ applied #1001")

    project.write(
        {
            "002-functions/001-f.sql": "CREATE FUNCTION f() RETURNS int "
            "LANGUAGE sql AS 'SELECT 1';\n"
        }
    )

    watching.starting("✓ applied #2001 001-f.sql (")


def test_watch_retries_failed_file_only_when_saved_again(project, watching):
    project.write({"001-schema/001-a.sql": "SELECT nosuch FROM nowhere;\n"})
    watching.starting('✗ 001-schema/001-a.sql:1:20: relation "nowhere" does not exist')
    mark = watching.mark()

    project.write({"001-schema/002-b.sql": TABLE_B})  # another file, same folder
    watching.starting(
        "○ 001-schema/002-b.sql waits for 001-schema/001-a.sql, which is applied first",
        mark,
    )
    assert attempts(project, "001-schema/001-a.sql") == [("failed",)]

    project.write({"001-schema/001-a.sql": TABLE_A})

    watching.starting("✓ applied #1001 001-a.sql (", mark)
    watching.starting("✓ applied #1002 002-b.sql (", mark)
    assert attempts(project, "001-schema/001-a.sql") == [("failed",), ("completed",)]


def test_watch_retries_a_failed_file_for_a_save_after_the_failure_not_before(project):
    # The first round runs without waiting for events: the events of the save it
    # read can arrive after it, and must not retry the content that just failed.
    failing = project.migrations / "001-schema/001-a.sql"
    lines = Lines()
    with Watcher(project.settings, lines.say, delay=DELAY, hold=TIMEOUT) as watcher:
        project.write({"001-schema/001-a.sql": "SELECT nosuch FROM nowhere;\n"})
        threading.Event().wait(DELAY * 3)  # settled
        watcher.reconcile(frozenset())
        watcher.reconcile(frozenset({"001-schema/001-a.sql"}))  # its late events
        assert len([ln for ln in lines.lines if ln.startswith("✗")]) == 1, lines.lines

        os.utime(failing)  # saved again, unchanged: the user asks for a retry
        threading.Event().wait(DELAY * 3)
        watcher.reconcile(frozenset({"001-schema/001-a.sql"}))
        assert len([ln for ln in lines.lines if ln.startswith("✗")]) == 2, lines.lines

    assert attempts(project, "001-schema/001-a.sql") == [("failed",), ("failed",)]


def test_watch_warns_when_applied_file_deleted(project, watching):
    project.write({"001-schema/001-a.sql": TABLE_A})
    watching.starting("✓ applied #1001")

    (project.migrations / "001-schema/001-a.sql").unlink()

    line = watching.starting("✗ WARNING: 001-schema/001-a.sql was deleted")
    assert "it was applied (block 1, applied" in line


def test_watch_explains_renumbering_when_new_file_below_applied_one(project, watching):
    project.write({"001-schema/002-b.sql": TABLE_B})
    watching.starting("✓ applied #1002")

    project.write({"001-schema/001-a.sql": TABLE_A})

    line = watching.starting("✗ 001-schema/001-a.sql is numbered below the applied")
    assert "rename it to 001-schema/003-a.sql" in line
    assert tables(project) == {"b"}


def test_watch_refuses_to_start_when_environment_is_production(project):
    settings = replace(project.settings, environment="production")

    with pytest.raises(Refused) as caught:
        Watcher(settings, print)

    assert str(caught.value).startswith("CHAINOPS_ENV is production")


BOGUS = "-- CHAINOPS:bogus\nCREATE TABLE a (id int PRIMARY KEY);\n"
SLOW = "-- CHAINOPS:statement-timeout=1ms\nSELECT pg_sleep(0.2);\n"


def test_watch_refuses_unknown_directive_in_any_case_and_applies_nothing(
    project, watching
):
    project.write({"001-schema/001-a.sql": BOGUS})

    line = watching.starting("✗ 001-schema/001-a.sql:1: unknown directive")

    assert "chainops:bogus" in line.lower()
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]
    assert tables(project) == set()


def test_watch_honours_statement_timeout_directive_in_any_case(project, watching):
    project.write({"001-schema/001-slow.sql": SLOW})

    line = watching.starting("✗ 001-schema/001-slow.sql")

    assert "statement timeout" in line
    assert attempts(project, "001-schema/001-slow.sql") == [("failed",)]


def test_watch_tells_failed_file_in_one_line_that_says_to_save(project, watching):
    project.write({"001-schema/001-a.sql": "SELECT nosuch FROM nowhere;\n"})

    line = watching.starting("✗ 001-schema/001-a.sql:1:20: ")

    assert line.endswith(
        "the migration was rolled back; fix the file and save the file again"
    )
    assert not [ln for ln in watching.lines if "applied again when you save" in ln]


def test_watch_applies_repeatable_again_when_saved_with_new_content(project, watching):
    path = "002-functions/R-total.sql"
    project.write({path: "CREATE OR REPLACE VIEW total AS SELECT 1 AS n;\n"})
    watching.starting("✓ applied R R-total.sql (")
    mark = watching.mark()

    project.write({path: "CREATE OR REPLACE VIEW total AS SELECT 2 AS n;\n"})

    line = watching.starting("✓ applied R R-total.sql (", after=mark)
    assert line.endswith(", block 2)")
    assert project.query("SELECT n FROM total") == [(2,)]
    assert [p for p, _ in blocks(project)] == [path, path]
