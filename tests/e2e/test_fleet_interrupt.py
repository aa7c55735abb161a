"""Ctrl-C during a fleet run, as a user presses it: the running target finishes the
file in flight, nothing new starts, and --resume finishes the rest."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import psycopg

FILES = {
    "001-schema/001-a.sql": "CREATE TABLE a (id int);\n",
    "001-schema/002-slow.sql": "SELECT pg_sleep(1.5);\nCREATE TABLE slow (id int);\n",
    "001-schema/003-c.sql": "CREATE TABLE c (id int);\n",
}


def blocks(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'blockchain_migrations'"
        ).fetchone()
        if not row or not row[0]:
            return 0
        found = conn.execute("SELECT count(*) FROM blockchain_migrations").fetchone()
    return int(found[0]) if found else 0


def test_ctrl_c_finishes_the_file_in_flight_and_resume_finishes_the_rest(project):
    project.write(FILES)
    targets = project.root / "fleet.toml"
    targets.write_text(
        f'[[target]]\nname = "first"\nurl = "{project.db_url}"\n'
        '[[target]]\nname = "second"\nurl = "postgresql://postgres@127.0.0.1:1/x"\n'
    )
    argv = [sys.executable, "-m", "chainops", "fleet", "migrate", "--parallel", "1",
            "--json", "--migrations-dir", str(project.migrations)]  # fmt: skip
    process = subprocess.Popen(
        argv, cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while blocks(project.db_url) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # while 002 sleeps
    out, err = process.communicate(timeout=60)

    document = json.loads(out)
    first, second = document["targets"]
    assert process.returncode == 130, err  # interrupted, with the run to resume
    assert "resume with chainops fleet migrate --resume" in err
    assert (first["status"], first["height"]) == ("interrupted", 2)  # 002 finished
    assert second["status"] == "not started"
    assert "Traceback" not in err
    assert blocks(project.db_url) == 2

    targets.write_text(f'[[target]]\nname = "first"\nurl = "{project.db_url}"\n'
                       '[[target]]\nname = "second"\n'
                       f'url = "{project.db_url}"\n')  # fmt: skip
    resumed = subprocess.run(
        [*argv, "--resume", "last"], cwd=project.root, capture_output=True, text=True
    )

    assert resumed.returncode == 0, resumed.stderr
    after = {t["name"]: t["status"] for t in json.loads(resumed.stdout)["targets"]}
    assert after == {"first": "migrated", "second": "up to date"}
    assert blocks(project.db_url) == 3
