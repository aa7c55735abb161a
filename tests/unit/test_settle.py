"""Which watchdog events count and when writes have settled, fed synthetic events
with explicit times: no observer, no sleeps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from watchdog.events import (
    DirCreatedEvent,
    DirModifiedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

from chainops.dev.watch import Settle

ROOT = Path("/project/migrations")


def at(rel: str) -> str:
    return str(ROOT / rel)


# --- Settle: which events count -------------------------------------------------


@pytest.mark.parametrize(
    ("event", "touched"),
    [
        pytest.param(FileModifiedEvent(at("001-s/005-x.sql")), {"001-s/005-x.sql"}),
        pytest.param(FileCreatedEvent(at("001-s/005-X.SQL")), {"001-s/005-X.SQL"}),
        pytest.param(FileModifiedEvent(at("001-s/.005-x.sql.swp")), set(), id="vim"),
        pytest.param(FileModifiedEvent(at("001-s/005-x.sql~")), set(), id="backup"),
        pytest.param(FileCreatedEvent(at("001-s/.#005-x.sql")), set(), id="lock"),
        pytest.param(FileModifiedEvent(at("001-s/#005-x.sql#")), set(), id="save"),
        pytest.param(FileModifiedEvent(at("001-s/005-x.sql.tmp")), set(), id="tmp"),
        pytest.param(FileCreatedEvent(at("001-s/4913")), set(), id="vim-probe"),
        pytest.param(
            FileModifiedEvent(at("001-s/005-x.sql___jb_tmp___")), set(), id="jetbrains"
        ),
        pytest.param(FileModifiedEvent(at(".git/001-s/005-x.sql")), set(), id="hidden"),
        pytest.param(FileModifiedEvent(at("chain.lock")), set(), id="lock-file"),
        pytest.param(FileModifiedEvent(at("schema.sql")), set(), id="schema-dump"),
        pytest.param(FileModifiedEvent("/elsewhere/001-s/005-x.sql"), set(), id="out"),
    ],
)
def test_note_counts_only_sql_files_when_editors_leave_other_names(event, touched):
    settle = Settle(ROOT)

    noted = settle.note(event, now=0.0)

    assert noted is bool(touched)
    assert settle.take() == touched


@pytest.mark.parametrize(
    "event",
    [
        FileOpenedEvent(at("001-s/005-x.sql")),
        FileClosedNoWriteEvent(at("001-s/005-x.sql")),  # chainops reading the file
        DirModifiedEvent(at("001-s")),
    ],
)
def test_note_ignores_event_when_nothing_was_written(event):
    settle = Settle(ROOT, tracks_close=True)

    assert not settle.note(event, now=0.0)
    assert settle.due() is None


def test_note_counts_rename_into_place_as_write_when_saved_atomically():
    settle = Settle(ROOT, tracks_close=True)
    settle.note(FileCreatedEvent(at("001-s/.005-x.sql.tmp")), now=0.0)

    settle.note(
        FileMovedEvent(at("001-s/.005-x.sql.tmp"), at("001-s/005-x.sql")), now=0.1
    )

    assert settle.due() == pytest.approx(0.1 + settle.after_close)  # renamed into place
    assert settle.take() == {"001-s/005-x.sql"}


def test_note_counts_new_folder_when_category_created():
    settle = Settle(ROOT)

    assert settle.note(DirCreatedEvent(at("004-views")), now=0.0)
    assert not settle.note(DirCreatedEvent(at(".cache")), now=0.0)
    assert settle.take() == set()  # a folder is no file to retry


# --- Settle: when writes have settled -------------------------------------------


def test_due_moves_with_each_write_when_file_written_in_bursts():
    settle = Settle(ROOT, delay=0.3)
    assert settle.due() is None

    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=1.0)
    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=1.2)

    assert settle.due() == pytest.approx(1.5)
    assert settle.take() == {"001-s/005-x.sql"}
    assert settle.due() is None


def test_due_waits_for_close_then_settles_at_once_when_writer_keeps_file_open():
    settle = Settle(ROOT, delay=0.3, hold=5.0, tracks_close=True)

    settle.note(FileCreatedEvent(at("001-s/005-x.sql")), now=0.0)
    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.1)
    assert settle.due() == pytest.approx(5.1)

    settle.note(FileClosedEvent(at("001-s/005-x.sql")), now=2.0)
    assert settle.due() == pytest.approx(2.0 + settle.after_close)  # writer is done


@pytest.mark.parametrize(
    "closing",
    [
        FileDeletedEvent(at("001-s/005-x.sql")),
        FileMovedEvent(at("001-s/005-x.sql"), at("001-s/005-x.sql~")),
    ],
)
def test_due_stops_waiting_for_close_when_file_goes_away(closing):
    settle = Settle(ROOT, delay=0.3, hold=5.0, tracks_close=True)
    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.0)

    settle.note(closing, now=0.5)

    assert settle.due() == pytest.approx(0.8)


def test_due_ignores_open_files_when_observer_reports_no_close():
    settle = Settle(ROOT, delay=0.3, hold=5.0, tracks_close=False)

    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.0)

    assert settle.due() == pytest.approx(0.3)


@pytest.mark.parametrize("synthetic", [True, False])
def test_due_waits_no_close_when_file_found_in_new_folder(synthetic):
    settle = Settle(ROOT, delay=0.3, hold=5.0, tracks_close=True)

    settle.note(FileCreatedEvent(at("004-v/001-x.sql"), is_synthetic=synthetic), 0.0)

    assert settle.due() == pytest.approx(0.3)


def test_due_keeps_the_quiet_period_until_every_touched_file_was_closed():
    settle = Settle(ROOT, delay=0.3, tracks_close=True)
    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.0)
    settle.note(FileClosedEvent(at("001-s/005-x.sql")), now=0.1)
    settle.note(FileCreatedEvent(at("002-f/001-y.sql")), now=0.2)  # found, no close

    assert settle.due() == pytest.approx(0.5)

    settle.note(FileClosedEvent(at("002-f/001-y.sql")), now=0.4)

    assert settle.due() == pytest.approx(0.4 + settle.after_close)


def test_closed_files_remember_when_until_written_again():
    settle = Settle(ROOT, tracks_close=True)
    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.0, wall=100.0)
    settle.note(FileClosedEvent(at("001-s/005-x.sql")), now=0.1, wall=100.1)
    assert settle.closed == {"001-s/005-x.sql": 100.1}

    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.2, wall=100.2)

    assert settle.closed == {}


def test_moving_a_file_away_is_no_close_of_it():
    settle = Settle(ROOT, delay=0.3, tracks_close=True)
    settle.note(FileMovedEvent(at("001-s/005-x.sql"), at("001-s/005-x.sql~")), now=1.0)

    assert settle.closed == {}
    assert settle.due() == pytest.approx(1.3)


def test_due_keeps_the_quiet_period_when_the_observer_reports_no_close():
    settle = Settle(ROOT, delay=0.3, tracks_close=False)
    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.0)
    settle.note(FileClosedEvent(at("001-s/005-x.sql")), now=0.1)

    assert settle.due() == pytest.approx(0.4)


def test_a_write_after_the_close_waits_again_for_the_writer():
    # A shell's `>` then `>>`: closed, reopened, written, closed again.
    settle = Settle(ROOT, delay=0.3, hold=5.0, tracks_close=True)
    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.0)
    settle.note(FileClosedEvent(at("001-s/005-x.sql")), now=0.01)
    settle.note(FileModifiedEvent(at("001-s/005-x.sql")), now=0.03)  # in the grace

    assert settle.due() == pytest.approx(5.03)  # open for writing again: wait

    settle.note(FileClosedEvent(at("001-s/005-x.sql")), now=0.04)

    assert settle.due() == pytest.approx(0.04 + settle.after_close)
