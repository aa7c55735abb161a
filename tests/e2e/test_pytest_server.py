"""pytest without CHAINOPS_TEST_DATABASE_URL starts the embedded PostgreSQL, and stops
it again at the end of the session, but only when it started it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chainops.store import server
from tests.fixtures.postgres import REPO
from tests.integration.test_schema import SYSTEM_SERVER

ONE_TEST = (
    "tests/integration/test_failure_location.py::"
    "test_apply_places_error_at_its_line_when_server_gives_no_position"
)
# Compares the suite's server with the other one: starts the embedded server even
# when the suite runs on the system PostgreSQL.
BOTH_SERVERS = (
    "tests/integration/test_schema.py::"
    "test_fingerprint_is_equal_on_both_servers_when_same_migrations_applied[base]"
)


@pytest.fixture
def embedded_root() -> Iterator[Path]:
    """A private folder for the server's data (under root the server runs as its
    own user, which cannot reach pytest's temporary folders)."""
    root = Path(tempfile.mkdtemp(prefix="chainops-pytest-"))
    try:
        yield root
    finally:
        server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def run_pytest(
    root: Path, test: str = ONE_TEST, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "CHAINOPS_", "DATABASE_URL"))
    }
    env["CHAINOPS_TEST_EMBEDDED_ROOT"] = str(root)
    env.update(env_vars)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_pytest_stops_embedded_server_when_it_started_it(embedded_root):
    done = run_pytest(embedded_root)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "(embedded)" in done.stdout
    assert server.running_conninfo(embedded_root) is None


def test_pytest_leaves_embedded_server_running_when_it_was_running(embedded_root):
    server.ensure_running(embedded_root, dbname="postgres")

    done = run_pytest(embedded_root)

    assert done.returncode == 0, done.stdout + done.stderr
    assert server.running_conninfo(embedded_root) is not None


def test_pytest_stops_embedded_server_it_started_to_compare_with_system_server(
    embedded_root,
):
    # The system server test_schema compares with, present wherever the suite runs.
    system = os.environ.get("CHAINOPS_TEST_DATABASE_URL") or SYSTEM_SERVER

    done = run_pytest(embedded_root, BOTH_SERVERS, CHAINOPS_TEST_DATABASE_URL=system)

    assert done.returncode == 0, done.stdout + done.stderr
    assert server.running_conninfo(embedded_root) is None
