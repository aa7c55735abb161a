"""Markers by directory, and the fixture plugins."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.project",
    "tests.fixtures.explorer",
]

_MARKERS = {
    "integration": ("db",),
    "e2e": ("e2e",),
    "reliability": ("db", "reliability"),
    "browser": ("db", "browser"),
}


def pytest_configure() -> None:
    """Let the processes the tests start feel Ctrl-C as a user's would.

    A shell without job control starts a background command (`inv test.stress &`)
    with SIGINT ignored, and every child inherits that: a test's SIGINT would then
    be lost and its run finish as if never interrupted. A handled signal is reset
    to the default in each child at exec; an ignored one is not.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Drop Hypothesis's pytest plugin from a run none of whose tests uses it: its
    summary imports all of Hypothesis (0.6 s), which would double the unit suite."""
    if "hypothesis" not in sys.modules:
        manager = session.config.pluginmanager
        plugin = manager.get_plugin("hypothesispytest")
        if plugin is not None:
            manager.unregister(plugin)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        for marker in _MARKERS.get(folder, ()):
            item.add_marker(marker)
