"""A reader that goes away (`inv migrate | head -1`) must not decide how far a run
gets: every migration is applied, and the exit code is the one of a full run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fixtures.postgres import REPO


def run_into_closed_pipe(project, *argv: str, tool: str) -> int:
    """Run a command whose stdout and stderr are a pipe nobody reads any more."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "CHAINOPS_", "DATABASE_URL"))
    }
    env.update({"DATABASE_URL": project.db_url, "NO_COLOR": "1"})
    if tool == "chainops":
        cmd = [sys.executable, "-m", "chainops", *argv]
    else:
        cmd = [sys.executable, "-m", "invoke", "--search-root", str(REPO), *argv]
    read, write = os.pipe()
    os.close(read)  # as `head` does once it has its line: every write gets EPIPE
    try:
        done = subprocess.run(
            cmd,
            cwd=project.root,
            env=env,
            stdout=write,
            stderr=write,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    return done.returncode


@pytest.mark.parametrize("tool", ["chainops", "inv"])
def test_migrate_applies_everything_when_output_pipe_is_closed(project, tool):
    project.copy_examples()

    code = run_into_closed_pipe(project, "migrate", tool=tool)

    assert code == 0
    rows = project.query(
        "SELECT count(*) FROM blockchain_migrations WHERE status = 'completed'"
    )
    assert rows == [(5,)]


def test_reset_dev_migrates_everything_when_output_pipe_is_closed(project):
    project.copy_examples()

    code = run_into_closed_pipe(
        project, "reset-dev", "--yes", "--migrate", tool="chainops"
    )

    assert code == 0
    rows = project.query(
        "SELECT count(*) FROM blockchain_migrations WHERE status = 'completed'"
    )
    assert rows == [(5,)]
