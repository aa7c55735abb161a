"""The explorer in Debian's Chromium against a real database: the chain, a failed
attempt, a drift block's differences, a block's schema change, the schema view,
analytics, search in the URL, and live updates that keep scroll and filters.
Each view's screenshot is saved under .chainops/screenshots.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chainops import api
from chainops.errors import MigrationFailed

TABLE = "CREATE TABLE t{n} (id int PRIMARY KEY, note text);\n"
HOSTILE = "SELECT '<img src=x onerror=alert(1)>'::int;\n"
DUPLICATE = "INSERT INTO t1 VALUES (1);\nINSERT INTO t1 VALUES (1);\n"


def write_tables(project, count: int, start: int = 1) -> None:
    project.write(
        {
            f"001-schema/{n:03d}-t{n}.sql": TABLE.format(n=n)
            for n in range(start, count + 1)
        }
    )


def test_chain_renders_without_console_errors_when_example_project_applied(
    project, page
):
    project.copy_examples()
    api.apply(project.target)
    project.write({"004-seed-data/001-next.sql": "SELECT 1;\n"})

    page.open("/")

    tab = page.page
    assert tab.locator(".block.applied").count() == 5
    assert "#1001 001-schema/001-initial-tables.sql" in tab.inner_text("#results")
    assert "ready: the next inv migrate applies it" in tab.inner_text("#results")
    assert tab.inner_text("#database").endswith(
        project.target.description.split("/")[-1]
    )
    assert "chain.lock" in tab.inner_text("#meta")
    page.shot("chain")


def test_failed_attempt_shows_error_line_and_detail_when_a_file_fails(project, page):
    write_tables(project, 1)
    project.write(
        {"001-schema/002-dup.sql": DUPLICATE, "001-schema/003-x.sql": HOSTILE}
    )
    with pytest.raises(MigrationFailed):
        api.apply(project.target)

    page.open("/")

    tab = page.page
    attempts = tab.inner_text("#attempts")
    assert "#1002 001-schema/002-dup.sql" in attempts
    assert "line 2:1" in attempts
    assert "Key (id)=(1) already exists." in attempts
    card = tab.inner_text("[data-path='001-schema/002-dup.sql']")
    assert "Why it waits: its last attempt failed" in card
    waits = tab.inner_text("[data-path='001-schema/003-x.sql']")
    assert "it waits for #1002 001-schema/002-dup.sql" in waits
    page.shot("failed-attempt")


def test_failed_attempt_text_stays_text_when_it_holds_markup(project, page):
    project.write({"001-schema/001-x.sql": HOSTILE})
    with pytest.raises(MigrationFailed):
        api.apply(project.target)

    page.open("/")

    assert "<img src=x onerror=alert(1)>" in page.page.inner_text("#attempts")
    assert page.page.locator("#results img").count() == 0  # and no dialog: see fixture


def test_block_page_shows_drift_differences_when_drift_accepted(project, page):
    write_tables(project, 1)
    api.apply(project.target)
    project.query("ALTER TABLE t1 ADD COLUMN added_by_hand text")
    api.apply(project.target, accept_drift=True)

    page.open("/")
    page.page.click("#block-2 .title a")
    page.page.wait_for_selector("#drift")

    assert page.page.url.endswith("/block/2")
    assert "table public.t1: column added_by_hand text added" in page.page.inner_text(
        "#drift"
    )
    assert page.page.locator("#drift li.added").count() == 1
    page.shot("block-drift")


def test_block_page_shows_its_runs_schema_change_and_sql_when_opened(project, page):
    write_tables(project, 1)
    api.apply(project.target)
    write_tables(project, 2, start=2)
    api.apply(project.target)

    page.open("/block/2")
    page.page.wait_for_selector("#schema-change")

    change = page.page.inner_text("#schema-change")
    assert "table public.t2 added" in change
    assert "public.t1" not in change
    assert "CREATE TABLE t2" in page.page.inner_text("#sql")
    assert page.page.locator("#sql .kw").count() >= 3  # highlighted
    assert page.page.inner_text("#previous").startswith("← block 1")
    page.shot("block")


def test_schema_view_shows_diff_between_two_blocks_when_chosen(project, page):
    write_tables(project, 1)
    api.apply(project.target)
    write_tables(project, 3, start=2)
    api.apply(project.target)

    page.open("/schema?at=3&from=1")
    page.page.wait_for_selector("#schema-diff")

    diff = page.page.inner_text("#schema-diff")
    assert "table public.t2 added" in diff
    assert "table public.t3 added" in diff
    assert "public.t1" in page.page.inner_text("#objects")
    page.page.select_option("#from", "0")
    page.page.wait_for_url("**/schema?at=3&from=0")
    expect(page.page.locator("#schema-diff")).to_contain_text("table public.t1 added")
    page.shot("schema")


def test_search_filters_blocks_and_stays_in_url_when_typed(project, page):
    write_tables(project, 12)
    api.apply(project.target)

    page.open("/")
    page.page.fill("#search", "t11")

    assert page.page.locator("#results .block").count() == 1
    assert "q=t11" in page.page.url
    page.page.reload()
    page.page.wait_for_selector("body[data-ready='true']")
    assert page.page.input_value("#search") == "t11"
    assert page.page.inner_text("#count").startswith("1 of 12 blocks")
    page.page.check("#order")
    page.page.fill("#search", "")
    first = page.page.locator("#results .block").first.get_attribute("data-height")
    assert first == "12"  # newest first
    assert "order=new" in page.page.url


def test_page_updates_live_keeping_scroll_and_filters_when_a_migration_is_applied(
    project, page
):
    write_tables(project, 30)
    api.apply(project.target)
    page.open("/?state=applied")
    tab = page.page
    tab.evaluate("window.notReloaded = true")
    tab.evaluate("window.scrollTo(0, 600)")

    write_tables(project, 31, start=31)
    api.apply(project.target)
    tab.wait_for_selector("#block-31", timeout=10000)

    assert tab.evaluate("window.notReloaded") is True
    assert tab.evaluate("window.scrollY") == 600
    assert tab.input_value("#state") == "applied"
    assert "31 blocks" in tab.inner_text("#meta")


def test_analytics_draws_durations_slowest_and_failures_when_opened(project, page):
    write_tables(project, 8)
    project.write({"001-schema/009-dup.sql": DUPLICATE})
    with pytest.raises(MigrationFailed):
        api.apply(project.target)

    page.open("/analytics?n=3")

    assert page.page.locator("#durations rect.bar").count() == 8
    assert page.page.locator("#slowest tr").count() == 4  # header and three
    assert page.page.locator("#failures rect.bar.fail").count() == 1
    page.shot("analytics")


def test_block_page_shows_applied_to_disk_diff_when_file_edited_after_commit(
    project, page
):
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=project.root,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    write_tables(project, 1)
    git("add", "-A")
    git("commit", "-qm", "t1")
    api.apply(project.target)
    project.write({"001-schema/001-t1.sql": TABLE.format(n=1) + "-- edited later\n"})

    page.open("/block/1")
    page.page.wait_for_selector("#file-diff")

    assert page.page.locator("#file-diff li.added").inner_text() == "-- edited later"
    assert "was edited after it was applied" in page.page.inner_text("#file-note")
    assert "Verification failed" in page.page.inner_text("#banner")
    page.shot("block-edited")
