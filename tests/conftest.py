"""Markers by directory, and the fixture plugins."""

from __future__ import annotations

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        for marker in _MARKERS.get(folder, ()):
            item.add_marker(marker)
