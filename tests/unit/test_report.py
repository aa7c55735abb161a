"""Rendering results as text lines and JSON, the way a user reads them."""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from chainops import events, model, report
from chainops.chain import recompute
from chainops.errors import AppliedFileChanged, AppliedFileMissing, LedgerTampered
from chainops.model import GENESIS, Block, Finding, MigrationFile
from chainops.results import Entry, StatusReport, VerifyReport
from chainops.source.files import HASH_ALGORITHM

ANSI = re.compile(r"\x1b\[[0-9;]*m")
T0 = datetime(2025, 9, 21, 10, 0, tzinfo=timezone.utc)
HEAD = "3fa9c2d17b04" + "e" * 52


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def block(path: str, height: int, applied_at: datetime = T0, **changes) -> Block:
    category, name = path.split("/")
    unhashed = Block(
        height=height,
        number=int(category[:3]) * 1000 + int(name[:3]),
        path=path,
        content_hash=sha256(path),
        hash_algorithm=HASH_ALGORITHM,
        applied_at=applied_at,
        applied_by="alice",
        client_host="ci-runner-1",
        mode="transaction",
        previous_hash=GENESIS,
        block_hash="",
        duration_ms=12,
    )
    unhashed = replace(unhashed, **changes)
    return replace(unhashed, block_hash=recompute(unhashed))


def applied(path: str, height: int, applied_at: datetime = T0) -> Entry:
    b = block(path, height, applied_at)
    return Entry(b.number, path, "applied", applied_at, b)


def status_report(*entries: Entry, head: str = HEAD, findings=()) -> StatusReport:
    height = sum(1 for e in entries if e.block is not None)
    return StatusReport(tuple(entries), tuple(findings), head, height)


MIXED = status_report(
    applied("001-schema/001-initial-tables.sql", 1),
    applied("001-schema/002-users.sql", 2, T0 + timedelta(minutes=5)),
    Entry(
        1003,
        "001-schema/003-orders.sql",
        "changed",
        T0 + timedelta(minutes=6),
        block("001-schema/003-orders.sql", 3),
    ),
    Entry(
        1004,
        "001-schema/004-asset-prices-cache.sql",
        "failed",
        T0 + timedelta(minutes=7),
        error='syntax error at or near "TABL" at line 3 (SQLSTATE 42601)',
    ),
    Entry(2001, "002-functions/001-totals.sql", "pending"),
)

CHANGED = Finding(
    "changed",
    "001-schema/003-orders.sql",
    "001-schema/003-orders.sql was edited after it was applied; restore it from git "
    "and put the change in a new migration",
    expected="a1b2c3d4e5f6" + "0" * 52,
    current="0f9e8d7c6b5a" + "1" * 52,
)
TAMPERED = Finding(
    "tampered",
    "001-schema/002-users.sql",
    "the ledger: block 2 (001-schema/002-users.sql) was altered; its hash does not "
    "recompute",
)


# --- status ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param(
            applied("001-schema/001-initial-tables.sql", 1),
            "✓ #1001 001-initial-tables.sql  2025-09-21T10:00:00.000Z",
            id="applied",
        ),
        pytest.param(
            Entry(1004, "001-schema/004-asset-prices-cache.sql", "pending"),
            "○ #1004 004-asset-prices-cache.sql  pending",
            id="pending",
        ),
        pytest.param(
            applied(
                "001-schema/001-initial-tables.sql",
                1,
                datetime(2025, 9, 21, 12, 0, 0, 987654, timezone(timedelta(hours=2))),
            ),
            "✓ #1001 001-initial-tables.sql  2025-09-21T10:00:00.987Z",
            id="applied-milliseconds-in-utc",
        ),
        pytest.param(
            Entry(1003, "001-schema/003-bad.sql", "failed", T0, error="boom"),
            "✗ #1003 003-bad.sql  failed: boom",
            id="failed",
        ),
        pytest.param(
            Entry(1003, "001-schema/003-bad.sql", "failed", T0),
            "✗ #1003 003-bad.sql  failed",
            id="failed-without-message",
        ),
        pytest.param(
            Entry(1003, "001-schema/003-x.sql", "changed", T0),
            "✗ #1003 003-x.sql  edited after it was applied",
            id="changed",
        ),
        pytest.param(
            Entry(1003, "001-schema/003-x.sql", "missing", T0),
            "✗ #1003 003-x.sql  applied, file missing",
            id="missing",
        ),
    ],
)
def test_status_lines_match_design_format_when_report_has_one_entry(entry, expected):
    lines = report.status_lines(status_report(entry))

    assert lines[0] == expected


def test_status_lines_reproduce_readme_example_when_given_its_report():
    readme_head = "5be1c0b4a9f2" + "7" * 52
    entries = [
        applied("001-schema/001-initial-tables.sql", 1),
        applied("001-schema/002-suggestions-system.sql", 2, T0 + timedelta(seconds=1)),
        applied(
            "001-schema/003-set-forget-portfolios.sql", 3, T0 + timedelta(seconds=2)
        ),
        Entry(1004, "001-schema/004-asset-prices-cache.sql", "pending"),
    ]

    lines = report.status_lines(status_report(*entries, head=readme_head))

    assert lines == [
        "✓ #1001 001-initial-tables.sql         2025-09-21T10:00:00.000Z",
        "✓ #1002 002-suggestions-system.sql     2025-09-21T10:00:01.000Z",
        "✓ #1003 003-set-forget-portfolios.sql  2025-09-21T10:00:02.000Z",
        "○ #1004 004-asset-prices-cache.sql     pending",
        "3 applied, 1 pending, 0 failed; chain head 5be1c0b4a9f2 (block 3)",
    ]


LINE = re.compile(r"^(?P<mark>\S+) #(?P<number>\d+)\s+(?P<name>\S+)\s+(?P<state>.*)$")


def columns(line: str) -> tuple[int, int]:
    """Where the file name and the time/state text start in a status line."""
    match = LINE.match(line)
    assert match, line
    return match.start("name"), match.start("state")


def test_status_lines_align_state_column_when_names_differ_in_length():
    lines = report.status_lines(MIXED)[:-1]

    assert len({columns(line) for line in lines}) == 1, lines
    assert [line[0] for line in lines] == ["✓", "✓", "✗", "✗", "○"]


def test_status_lines_align_state_column_when_numbers_differ_in_width():
    # #1001 and #10001 both occur once a project has ten categories.
    lines = report.status_lines(
        status_report(
            applied("001-schema/001-initial-tables.sql", 1),
            Entry(10001, "010-seed/001-admin.sql", "pending"),
        )
    )[:-1]

    assert len({columns(line) for line in lines}) == 1, lines


def test_status_lines_summarise_counts_and_head_when_report_is_mixed():
    summary = report.status_lines(MIXED)[-1]

    # A changed file was applied; its edit is a problem, not a pending migration.
    assert (
        summary == "3 applied, 1 pending, 1 failed; chain head 3fa9c2d17b04 (block 3)"
    )


def test_status_lines_show_genesis_head_when_nothing_is_applied():
    summary = report.status_lines(
        status_report(Entry(1001, "001-schema/001-a.sql", "pending"), head=GENESIS)
    )[-1]

    assert (
        summary == "0 applied, 1 pending, 0 failed; chain head 000000000000 (block 0)"
    )


def test_status_lines_contain_no_escapes_when_colour_is_off():
    for line in report.status_lines(MIXED, colour=False):
        assert "\x1b" not in line


def test_status_lines_colour_marks_only_when_colour_is_on():
    lines = report.status_lines(MIXED, colour=True)

    assert lines[0].startswith("\x1b[32m✓\x1b[0m ")
    assert lines[3].startswith("\x1b[31m✗\x1b[0m ")
    assert lines[4].startswith("\x1b[33m○\x1b[0m ")
    assert [ANSI.sub("", line) for line in lines] == report.status_lines(MIXED)


def test_status_json_has_documented_keys_when_report_is_mixed():
    doc = json.loads(
        report.status_json(status_report(*MIXED.entries, findings=[CHANGED]))
    )

    assert set(doc) == {"migrations", "summary", "problems"}
    assert set(doc["summary"]) == {"applied", "pending", "failed", "head", "height"}
    assert doc["summary"] == {
        "applied": 3,
        "pending": 1,
        "failed": 1,
        "head": HEAD,
        "height": 3,
    }
    first = doc["migrations"][0]
    assert set(first) == {
        "number",
        "path",
        "state",
        "applied_at",
        "block_hash",
        "previous_hash",
        "content_hash",
        "mode",
        "height",
        "duration_ms",
        "applied_by",
        "error",
    }
    assert first["number"] == 1001
    assert first["path"] == "001-schema/001-initial-tables.sql"
    assert first["state"] == "applied"
    assert first["applied_at"] == "2025-09-21T10:00:00.000000Z"
    assert first["block_hash"] == MIXED.entries[0].block.block_hash
    assert [m["state"] for m in doc["migrations"]] == [
        "applied",
        "applied",
        "changed",
        "failed",
        "pending",
    ]
    pending = doc["migrations"][-1]
    assert pending["applied_at"] is None
    assert pending["block_hash"] is None
    assert doc["problems"] == [
        {
            "kind": "changed",
            "path": CHANGED.path,
            "message": CHANGED.message,
            "expected": CHANGED.expected,
            "current": CHANGED.current,
        }
    ]


# --- verify ----------------------------------------------------------------------


def test_verify_lines_say_chain_intact_when_there_are_no_findings():
    lines = report.verify_lines(VerifyReport((), HEAD, 4, 5))

    assert lines == [
        "✓ Chain intact: 4 blocks verified against 5 files; head 3fa9c2d17b04"
    ]


def test_verify_lines_count_one_block_and_one_file_in_the_singular():
    lines = report.verify_lines(VerifyReport((), HEAD, 1, 1))

    assert lines == [
        "✓ Chain intact: 1 block verified against 1 file; head 3fa9c2d17b04"
    ]


def test_verify_lines_show_both_short_hashes_when_file_was_changed():
    lines = report.verify_lines(VerifyReport((CHANGED,), HEAD, 4, 5))

    assert lines[0] == "✗ Hash mismatch for 001-schema/003-orders.sql"
    assert lines[1] == "  Expected: a1b2c3d4e5f6"
    assert lines[2] == "  Current:  0f9e8d7c6b5a"
    assert lines[3].startswith("  Solution: ")
    assert lines[-1] == "1 problem found; chain head 3fa9c2d17b04 (block 4)"


def test_verify_lines_reproduce_readme_example_when_first_file_was_changed():
    finding = Finding(
        "changed",
        "001-schema/001-initial-tables.sql",
        "001-schema/001-initial-tables.sql was edited after it was applied",
        expected="a1b2c3d4e5f6" + "1" * 52,
        current="e5f6a7b8c9d0" + "2" * 52,
    )

    lines = report.verify_lines(
        VerifyReport((finding,), "5be1c0b4a9f2" + "7" * 52, 3, 4)
    )

    assert lines == [
        "✗ Hash mismatch for 001-schema/001-initial-tables.sql",
        "  Expected: a1b2c3d4e5f6",
        "  Current:  e5f6a7b8c9d0",
        "  Solution: restore the file from git and put the change in a new migration"
        " (inv migrate.create)",
        "1 problem found; chain head 5be1c0b4a9f2 (block 3)",
    ]


def test_verify_lines_list_every_problem_when_there_are_several():
    lines = report.verify_lines(VerifyReport((CHANGED, TAMPERED), HEAD, 4, 5))

    assert f"✗ {TAMPERED.message}" in lines
    assert lines[-1] == "2 problems found; chain head 3fa9c2d17b04 (block 4)"


def test_verify_json_parses_with_ok_false_when_there_are_findings():
    doc = json.loads(report.verify_json(VerifyReport((TAMPERED,), HEAD, 4, 5)))

    assert doc["ok"] is False
    assert doc["height"] == 4
    assert doc["files"] == 5
    assert [p["kind"] for p in doc["problems"]] == ["tampered"]


# --- events and errors -----------------------------------------------------------


def _migration(path: str) -> MigrationFile:
    category, name = path.split("/")
    return MigrationFile(
        int(category[:3]), category, int(name[:3]), path, b"SELECT 1;\n", sha256(path)
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("transaction", "✓ #1001 001-initial-tables.sql (42 ms)"),
        ("no-transaction", "✓ #1001 001-initial-tables.sql (42 ms, no transaction)"),
    ],
)
def test_event_line_names_number_file_and_duration_when_migration_applied(
    mode, expected
):
    path = "001-schema/001-initial-tables.sql"
    event = events.Applied(_migration(path), block(path, 1, mode=mode), 42)

    assert report.event_line(event) == expected


def test_error_lines_list_findings_then_error_when_drift_error_carries_them():
    err = AppliedFileChanged(CHANGED.message + "; nothing was applied", (CHANGED,))

    lines = report.error_lines(err)

    assert lines[0] == "✗ Hash mismatch for 001-schema/003-orders.sql"
    assert "  Expected: a1b2c3d4e5f6" in lines
    assert lines[-1] == "1 problem found; nothing was applied"


def test_error_lines_print_one_line_finding_once_when_error_repeats_it():
    finding = model.Finding(
        model.FindingKind.MISSING, "001-schema/002-b.sql", "b is missing; restore it"
    )
    err = AppliedFileMissing(finding.message + "; nothing was applied", (finding,))

    assert report.error_lines(err) == [f"✗ {err}"]


def test_error_lines_return_one_line_when_error_has_no_findings():
    err = LedgerTampered("the ledger: something is wrong; restore it")

    assert report.error_lines(err) == ["✗ the ledger: something is wrong; restore it"]


# --- colour decision -------------------------------------------------------------


class FakeStream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize(
    ("no_color", "tty", "expected"),
    [
        pytest.param(None, True, True, id="terminal"),
        pytest.param("1", True, False, id="no-color-set"),
        pytest.param("", True, True, id="no-color-empty-is-unset"),
        pytest.param(None, False, False, id="not-a-terminal"),
        pytest.param("1", False, False, id="both"),
    ],
)
def test_use_colour_is_true_only_when_terminal_and_no_color_unset(
    monkeypatch, no_color, tty, expected
):
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)

    assert report.use_colour(FakeStream(tty)) is expected


def test_use_colour_is_false_when_stream_has_no_isatty(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)

    assert report.use_colour(object()) is False
