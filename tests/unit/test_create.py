"""create and lock without a database: the template, numbering, refusals, the lock."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from chainops import api, report
from chainops.config import Settings
from chainops.errors import ConfigError, MigrationFileError
from chainops.results import LockChanges
from chainops.source import lockfile, statements
from chainops.source.files import discover
from chainops.source.template import slugify, write_template
from chainops.verify import verify_lock

NOW = datetime(2025, 9, 21, 0, 0, tzinfo=timezone.utc)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "migrations").mkdir()
    return Settings(project_root=tmp_path, migrations_dir=tmp_path / "migrations")


def write(settings: Settings, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = settings.migrations_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def listing(settings: Settings) -> list[str]:
    return sorted(
        p.relative_to(settings.migrations_dir).as_posix()
        for p in settings.migrations_dir.rglob("*")
        if p.is_file()
    )


# --- the template ----------------------------------------------------------------


def test_write_template_writes_the_design_template_when_given_a_description(
    settings,
):
    path = write_template(
        settings.migrations_dir, "schema", "add-user-preferences", "Prefs\ntable", NOW
    )
    assert path == settings.migrations_dir / "001-schema/001-add-user-preferences.sql"
    assert path.read_bytes().decode() == (
        "-- Migration: add-user-preferences\n"
        "-- Date: 2025-09-21T00:00:00.000Z\n"
        "-- Description: Prefs table\n"
        "\n"
        "-- ============================================\n"
        "-- IMPORTANT: This migration is immutable once applied!\n"
        "-- Do not modify this file after it has been run in any environment.\n"
        "-- ============================================\n"
        "\n"
        "-- Your SQL here\n"
    )


def test_template_is_discovered_but_refused_as_empty_when_applied(settings):
    """Default description, UTC milliseconds; no SQL yet, so apply would refuse it."""
    moment = datetime(2025, 9, 21, 12, 30, 5, 123456, tzinfo=timezone.utc)
    path = write_template(settings.migrations_dir, "schema", "x", None, moment)
    text = path.read_text()
    assert "-- Date: 2025-09-21T12:30:05.123Z\n" in text
    assert "-- Description: Add your migration description here\n" in text
    [found] = discover(settings.migrations_dir)
    with pytest.raises(statements.EmptyMigration):
        statements.plan_migration(found.text, found.path)


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("add-user-preferences", "add-user-preferences"),
        ("Add User Preferences", "add-user-preferences"),
        ("add_user__preferences", "add-user-preferences"),
        ("  --Add  (user) prefs!-- ", "add-user-prefs"),
        ("Préférences utilisateur", "preferences-utilisateur"),
        ("v2.1 index", "v2-1-index"),
        ("日本", ""),
    ],
)
def test_slugify_makes_lower_case_dashes_when_name_is_free_text(name, slug):
    assert slugify(name) == slug


# --- numbering and folders -------------------------------------------------------


def test_create_three_in_a_row_gives_consecutive_numbers_and_a_verified_lock(
    settings,
):
    paths = [
        api.create(settings, name, "schema").path
        for name in ("add users", "add orders", "add prices")
    ]
    assert [p.relative_to(settings.migrations_dir).as_posix() for p in paths] == [
        "001-schema/001-add-users.sql",
        "001-schema/002-add-orders.sql",
        "001-schema/003-add-prices.sql",
    ]
    report = api.verify_files(settings)
    assert report.ok
    assert report.files == 3
    lock_text = (settings.migrations_dir / "chain.lock").read_text()
    assert lock_text.splitlines()[-1] == f"head {report.lock_head} 3"


@pytest.mark.parametrize("edited", [0, 1, 2])
def test_files_only_fails_when_any_listed_file_is_edited_by_hand(settings, edited):
    for name in ("a", "b", "c"):
        api.create(settings, name, "schema")
    path = sorted((settings.migrations_dir / "001-schema").iterdir())[edited]
    path.write_text(path.read_text() + "CREATE TABLE t ();\n")
    report = api.verify_files(settings)
    rel = f"001-schema/{path.name}"
    assert [(f.kind, f.path) for f in report.findings] == [("lock", rel)]
    assert report.findings[0].message.startswith(f"{rel} differs from chain.lock")


def test_create_takes_highest_plus_one_when_numbers_have_gaps(settings):
    write(settings, {"001-schema/001-a.sql": "SELECT 1;", "001-schema/007-b.sql": "x;"})
    created = api.create(settings, "c", "schema")
    assert created.path.name == "008-c.sql"


@pytest.mark.parametrize(
    ("kind", "folder"),
    [
        ("schema", "001-schema"),
        ("functions", "002-functions"),
        ("seed-data", "003-seed-data"),
    ],
)
def test_create_makes_conventional_folder_when_type_has_none(settings, kind, folder):
    created = api.create(settings, "first", kind)
    assert created.path.relative_to(settings.migrations_dir).as_posix() == (
        f"{folder}/001-first.sql"
    )


def test_create_uses_existing_folder_of_the_type_whatever_its_number(settings):
    write(settings, {"004-functions/002-f.sql": "SELECT 1;"})
    created = api.create(settings, "g", "functions")
    assert created.path.parent.name == "004-functions"
    assert created.path.name == "003-g.sql"


# --- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "error", "expected"),
    [
        pytest.param(
            "",
            "schema",
            ConfigError,
            "the migration name '' has no letters or digits; pass one, for example "
            "--name add-user-preferences",
            id="empty-name",
        ),
        pytest.param(
            "!!!",
            "schema",
            ConfigError,
            "the migration name '!!!' has no",
            id="symbols",
        ),
        pytest.param(
            "x" * 101, "schema", ConfigError, "is 101 characters long", id="long"
        ),
        pytest.param(
            "x",
            "views",
            ConfigError,
            "--type 'views' is not a migration type; use one of schema, functions, "
            "seed-data",
            id="unknown-type",
        ),
        pytest.param(
            "Add_Users",
            "schema",
            ConfigError,
            "001-schema/001-add-users.sql already has the name add-users; "
            "choose another name",
            id="name-used",
        ),
    ],
)
def test_create_refuses_with_one_line_when_arguments_are_bad(
    settings, name, kind, error, expected
):
    write(settings, {"001-schema/001-add-users.sql": "SELECT 1;"})
    with pytest.raises(error) as caught:
        api.create(settings, name, kind)
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)
    assert listing(settings) == ["001-schema/001-add-users.sql"]


def test_create_refuses_when_folder_is_full(settings):
    write(settings, {"001-schema/999-last.sql": "SELECT 1;"})
    with pytest.raises(MigrationFileError) as caught:
        api.create(settings, "more", "schema")
    assert str(caught.value) == (
        "001-schema/ is full: it already holds number 999; start a new category folder"
    )


def test_create_refuses_when_conventional_folder_number_is_taken(settings):
    write(settings, {"001-core/001-a.sql": "SELECT 1;"})
    with pytest.raises(MigrationFileError) as caught:
        api.create(settings, "b", "schema")
    assert str(caught.value) == (
        "there is no schema folder and its usual number 001 is taken by 001-core/; "
        "create one yourself, for example 002-schema/"
    )


def test_create_refuses_before_writing_when_folder_holds_a_bad_file(settings):
    write(settings, {"001-schema/1-bad.sql": "SELECT 1;"})
    with pytest.raises(MigrationFileError):
        api.create(settings, "x", "schema")
    assert listing(settings) == ["001-schema/1-bad.sql"]


def test_create_refuses_before_writing_when_lock_has_conflict_markers(settings):
    api.create(settings, "a", "schema")
    lock = settings.migrations_dir / "chain.lock"
    lock.write_text(lock.read_text() + "<<<<<<< HEAD\n")
    with pytest.raises(MigrationFileError) as caught:
        api.create(settings, "b", "schema")
    assert "git merge conflict markers" in str(caught.value)
    assert "001-schema/002-b.sql" not in listing(settings)


# --- the lock --------------------------------------------------------------------


def test_create_locks_every_file_when_there_was_no_lock(settings):
    write(settings, {"001-schema/001-a.sql": "SELECT 1;"})
    created = api.create(settings, "b", "schema")
    assert created.lock_created
    assert created.locked == 2
    assert api.verify_files(settings).ok


def test_create_adds_only_its_file_when_the_lock_is_stale(settings):
    api.create(settings, "a", "schema")
    write(settings, {"002-functions/001-by-hand.sql": "SELECT 1;"})
    created = api.create(settings, "b", "schema")
    assert not created.lock_created
    report = api.verify_files(settings)
    assert [(f.kind, f.path) for f in report.findings] == [
        ("unlocked", "002-functions/001-by-hand.sql")
    ]


def test_files_only_is_config_error_naming_the_fix_when_there_is_no_lock(settings):
    write(settings, {"001-schema/001-a.sql": "SELECT 1;"})
    with pytest.raises(ConfigError) as caught:
        api.verify_files(settings)
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        "the migrations folder has no chain.lock; run inv migrate.lock to create it, "
        "then commit it with the migrations"
    )


def test_lock_adds_hand_written_file_and_reports_what_changed(settings):
    api.create(settings, "a", "schema")
    write(settings, {"001-schema/002-by-hand.sql": "SELECT 1;"})
    assert not api.verify_files(settings).ok
    result = api.lock(settings)
    assert result.previous == "read"
    assert result.changes == LockChanges(("001-schema/002-by-hand.sql",), (), ())
    assert result.files == 2
    assert api.verify_files(settings).ok


def test_lock_rewrites_a_lock_left_with_merge_conflict_markers(settings):
    api.create(settings, "a", "schema")
    lock = settings.migrations_dir / "chain.lock"
    lock.write_text("<<<<<<< HEAD\n" + lock.read_text())
    result = api.lock(settings)
    assert result.previous == "unreadable"
    assert api.verify_files(settings).ok


# --- output ----------------------------------------------------------------------


def test_lock_lines_say_what_lock_did_for_each_previous_state():
    none = LockChanges((), (), ())
    some = LockChanges(("001-schema/002-b.sql",), ("001-schema/009-x.sql",), ())
    head = "ab" * 32
    assert report.lock_lines(api.LockReport(head, 2, "missing", none)) == [
        "✓ wrote chain.lock: 2 files, head abababababab; commit it with the migrations"
    ]
    assert report.lock_lines(api.LockReport(head, 2, "unreadable", none)) == [
        "✓ rewrote the unreadable chain.lock: 2 files, head abababababab"
    ]
    assert report.lock_lines(api.LockReport(head, 2, "read", none)) == [
        "✓ chain.lock was up to date: 2 files, head abababababab"
    ]
    assert report.lock_lines(api.LockReport(head, 2, "read", some)) == [
        "✓ updated chain.lock: 2 files, head abababababab",
        "  + 001-schema/002-b.sql",
        "  - 001-schema/009-x.sql",
    ]


def test_verify_lines_and_head_line_speak_of_the_lock_when_files_only(settings):
    api.create(settings, "a", "schema")
    result = api.verify_files(settings)
    assert report.verify_lines(result) == [
        f"✓ chain.lock matches 1 file; head {result.lock_head[:12]}"
    ]
    assert report.head_line(result) == result.lock_head
    doc = json.loads(report.verify_json(result))
    assert (doc["head"], doc["files_only"]) == (None, True)
    assert doc["lock_head"] == result.lock_head


def test_lock_stale_event_is_one_warning_line_with_the_fix(settings):
    write(settings, {"001-schema/001-a.sql": "SELECT 1;", "001-schema/002-b.sql": "x;"})
    found = verify_lock(lockfile.build([]), discover(settings.migrations_dir))
    assert report.event_line(api.LockStale(tuple(found))) == (
        "○ 001-schema/001-a.sql is not in chain.lock (and 1 more problem); run inv "
        "migrate.lock to add it (production refuses files that do not match chain.lock)"
    )


def test_write_template_writes_repeatable_file_without_a_number(tmp_path):
    (tmp_path / "002-functions").mkdir()
    (tmp_path / "002-functions" / "001-a.sql").write_text("SELECT 1;\n")
    now = datetime(2025, 9, 21, tzinfo=timezone.utc)

    path = write_template(tmp_path, "functions", "Portfolio Value", None, now, True)

    assert path == tmp_path / "002-functions" / "R-portfolio-value.sql"
    assert "and again each time" in path.read_text()
    (repeatable,) = [f for f in discover(tmp_path) if f.is_repeatable]
    assert repeatable.path == "002-functions/R-portfolio-value.sql"
    with pytest.raises(ConfigError, match="already has the name portfolio-value"):
        write_template(tmp_path, "functions", "portfolio value", None, now)
