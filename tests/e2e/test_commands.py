"""`chainops` and `inv` as a user runs them: subprocesses, exit codes, output."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fixtures.postgres import REPO

CANARY = "s3cr@t:/%#?&pw"
ENCODED = "s3cr%40t%3A%2F%25%23%3F%26pw"


def run(
    project,
    *argv: str,
    env: dict[str, str] | None = None,
    tool: str = "chainops",
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "CHAINOPS_", "DATABASE_URL"))
    }
    base.update({"DATABASE_URL": project.db_url, "NO_COLOR": "1"})
    base.update(env or {})
    if tool == "chainops":
        cmd = [sys.executable, "-m", "chainops", *argv]
    else:
        cmd = [sys.executable, "-m", "invoke", "--search-root", str(REPO), *argv]
    return subprocess.run(
        cmd,
        cwd=project.root,
        env=base,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in result.stderr
    assert lines, "expected an error line on stderr"
    return lines[-1]


def test_migrate_status_verify_work_through_inv(project):
    project.copy_examples()
    first = run(project, "migrate", tool="inv")
    assert first.returncode == 0, first.stderr
    assert "✓ #1001 001-initial-tables.sql (" in first.stdout
    assert "Applied 5 migrations" in first.stdout
    again = run(project, "migrate", tool="inv")
    assert again.returncode == 0
    assert "Nothing to apply" in again.stdout
    status = run(project, "migrate.status", tool="inv")
    assert status.returncode == 0
    assert status.stdout.splitlines()[0].startswith("✓ #1001 001-initial-tables.sql  ")
    assert "5 applied, 0 pending, 0 failed" in status.stdout
    verify = run(project, "migrate.verify", tool="inv")
    assert verify.returncode == 0
    assert "Chain intact" in verify.stdout


def test_inv_list_shows_migrate_tasks_with_help():
    out = subprocess.run(
        [sys.executable, "-m", "invoke", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in ("migrate.apply (migrate)", "migrate.status", "migrate.verify"):
        assert name in out


def test_verify_exits_4_and_names_file_when_applied_file_edited(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a ();\n"})
    assert run(project, "migrate").returncode == 0
    (project.migrations / "001-schema/001-a.sql").write_text(
        "CREATE TABLE a (id int);\n"
    )
    verify = run(project, "verify")
    assert verify.returncode == 4
    assert "✗ Hash mismatch for 001-schema/001-a.sql" in verify.stdout
    assert "Expected:" in verify.stdout
    assert "Current:" in verify.stdout
    migrate = run(project, "migrate", tool="inv")
    assert migrate.returncode == 4
    assert "nothing was applied" in one_error_line(migrate)


def test_status_check_exits_1_when_pending_and_json_parses(project):
    import json

    project.write({"001-schema/001-a.sql": "CREATE TABLE a ();\n"})
    check = run(project, "status", "--check")
    assert check.returncode == 1
    doc = json.loads(run(project, "status", "--json").stdout)
    assert doc["summary"]["pending"] == 1
    assert doc["migrations"][0]["path"] == "001-schema/001-a.sql"


def test_failed_migration_prints_one_line_with_position_and_exits_6(project):
    project.write(
        {"001-schema/001-a.sql": "CREATE TABLE a ();\nSELECT nosuch FROM a;\n"}
    )
    result = run(project, "migrate")
    assert result.returncode == 6
    line = one_error_line(result)
    assert line.startswith('✗ 001-schema/001-a.sql:2:8: column "nosuch" does not exist')
    assert "SQLSTATE 42703" in line
    assert "rolled back" in line


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://chainops:{ENCODED}@127.0.0.1:1/app",
        f"postgresql://chainops:{ENCODED}@no-such-host.invalid:5432/app",
        f"postgresql://chainops:{ENCODED}@127.0.0.1:5432:99/app",
        f"host=127.0.0.1 port=1 password={CANARY} dbname=app",
    ],
    ids=["refused", "unknown host", "malformed", "key-value"],
)
def test_connection_failure_is_one_line_without_password(project, url):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a ();\n"})
    for command in (["migrate"], ["status"], ["verify"]):
        result = run(project, *command, env={"DATABASE_URL": url})
        assert result.returncode == 5, result.stderr
        line = one_error_line(result)
        assert CANARY not in result.stdout + result.stderr
        assert ENCODED not in result.stdout + result.stderr
        assert "s3cr" not in result.stdout + result.stderr
        assert line.startswith(("✗ cannot connect to", "✗ DATABASE_URL"))


def test_debug_mode_still_hides_password(project):
    url = f"postgresql://chainops:{ENCODED}@127.0.0.1:1/app"
    result = run(project, "migrate", env={"DATABASE_URL": url, "CHAINOPS_DEBUG": "1"})
    assert result.returncode == 5
    assert "s3cr" not in result.stdout + result.stderr


def test_two_concurrent_migrate_processes_apply_each_file_once(project):
    project.write(
        {
            f"001-schema/{i:03d}-t{i}.sql": (
                f"CREATE TABLE t{i} ();\nSELECT pg_sleep(0.02);\n"
            )
            for i in range(1, 21)
        }
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "CHAINOPS_"))}
    env.update({"DATABASE_URL": project.db_url, "NO_COLOR": "1"})
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "chainops", "migrate"],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(*p.communicate(timeout=120), p.returncode) for p in procs]
    assert [r[2] for r in results] == [0, 0], results
    applied = sum(r[0].count("✓ #") for r in results)
    assert applied == 20
    rows = project.query(
        "SELECT count(*), count(DISTINCT migration_number) FROM blockchain_migrations"
    )
    assert rows == [(20, 20)]
    assert project.query(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database())"
    ) == [(0,)]


def test_bad_file_name_is_one_line_exit_3(project):
    project.write({"001-schema/01-a.sql": "CREATE TABLE a ();\n"})
    result = run(project, "migrate")
    assert result.returncode == 3
    assert "001-schema/01-a.sql" in one_error_line(result)


def test_unknown_environment_is_config_error_exit_2(project):
    result = run(project, "status", env={"CHAINOPS_ENV": "staging"})
    assert result.returncode == 2
    assert "CHAINOPS_ENV" in one_error_line(result)


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = [
        line for line in readme.splitlines() if line.startswith("python3 -m venv")
    ]
    test_command = next(c for c in commands if c.endswith("&& pytest"))
    assert test_command in (REPO / ".ci" / "run").read_text()
