"""Debian's Chromium driven by Playwright: one browser per session, a fresh page per
test that fails the test on any console error or request leaving the machine.

Skipped, with the reason, only where /usr/bin/chromium is absent; `.ci/run`
installs it, so CI always runs these. Playwright never downloads a browser here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.fixtures.postgres import REPO

CHROMIUM = Path(os.environ.get("CHAINOPS_TEST_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO / ".chainops" / "screenshots"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason=f"{CHROMIUM} is absent: apt-get install chromium (.ci/run does)"
    )
    for item in items:
        if "tests/browser" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page and what went wrong on it: console errors and foreign requests."""

    def __init__(self, page, base: str) -> None:
        self.page, self.base = page, base
        self.errors: list[str] = []
        self.foreign: list[str] = []

    def open(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready='true']", timeout=15000)

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def page(browser, explorer) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    tab = context.new_page()
    watched = Watched(tab, explorer.url)

    def on_console(message) -> None:
        if message.type == "error":
            watched.errors.append(message.text)

    def on_route(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            watched.foreign.append(route.request.url)
            route.abort()

    tab.on("console", on_console)
    tab.on("pageerror", lambda err: watched.errors.append(str(err)))
    tab.on(
        "dialog", lambda d: (watched.errors.append(f"dialog {d.message}"), d.dismiss())
    )
    context.route("**/*", on_route)
    try:
        yield watched
        assert watched.errors == []
        assert watched.foreign == []
    finally:
        context.close()
