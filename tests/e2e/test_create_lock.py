"""create, lock and verify --files-only from a shell, and a real two-branch merge."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from chainops.cli import main
from tests.e2e.test_commands import one_error_line, run
from tests.fixtures.postgres import REPO

NO_DATABASE = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
HEAD = re.compile(r"^[0-9a-f]{64}$")


def lock_head(migrations: Path) -> str:
    return (migrations / "chain.lock").read_text().splitlines()[-1].split()[1]


def test_create_three_through_inv_then_verify_files_only_without_database(project):
    paths = []
    for name in ("Add users", "add_orders", "add prices"):
        result = run(
            project,
            "migrate.create",
            "--name",
            name,
            "--type",
            "schema",
            tool="inv",
            env=NO_DATABASE,
        )
        assert result.returncode == 0, result.stderr
        paths.append(result.stdout.strip())
    assert paths == [
        "migrations/001-schema/001-add-users.sql",
        "migrations/001-schema/002-add-orders.sql",
        "migrations/001-schema/003-add-prices.sql",
    ]
    verify = run(project, "migrate.verify", "--files-only", tool="inv", env=NO_DATABASE)
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("✓ chain.lock matches 3 files; head ")
    head = run(project, "verify", "--files-only", "--head", env=NO_DATABASE)
    assert head.stdout.strip() == lock_head(project.migrations)
    assert HEAD.match(head.stdout.strip())


def test_create_refuses_bad_arguments_with_one_line_and_exit_2(project):
    bad_type = run(project, "create", "--name", "x", "--type", "views")
    assert bad_type.returncode == 2
    assert one_error_line(bad_type) == (
        "✗ --type 'views' is not a migration type; use one of schema, functions, "
        "seed-data"
    )
    empty = run(project, "create", "--name", "", "--type", "schema")
    assert empty.returncode == 2
    assert one_error_line(empty).startswith("✗ the migration name '' has no letters")
    assert not any(project.migrations.iterdir())


def test_files_only_fails_on_hand_edit_and_lock_repairs_hand_added_file(project):
    assert run(project, "create", "--name", "a", "--type", "schema").returncode == 0
    missing = project.migrations / "chain.lock"
    missing.rename(project.root / "chain.lock.bak")
    no_lock = run(project, "verify", "--files-only", env=NO_DATABASE)
    assert no_lock.returncode == 2
    assert "run chainops lock to create it" in one_error_line(no_lock)
    (project.root / "chain.lock.bak").rename(missing)

    edited = project.migrations / "001-schema/001-a.sql"
    edited.write_text(edited.read_text() + "SELECT 1;\n")
    result = run(project, "verify", "--files-only", env=NO_DATABASE)
    assert result.returncode == 4
    assert result.stdout.startswith(
        "✗ 001-schema/001-a.sql differs from chain.lock (locked "
    )

    project.write({"002-functions/001-by-hand.sql": "SELECT 1;\n"})
    lock = run(project, "lock", tool="chainops", env=NO_DATABASE)
    assert lock.returncode == 0
    assert lock.stdout.splitlines()[1:] == [
        "  + 002-functions/001-by-hand.sql",
        "  ~ 001-schema/001-a.sql (content changed since it was locked)",
    ]
    assert run(project, "verify", "--files-only", env=NO_DATABASE).returncode == 0


def test_migrate_refuses_unlocked_file_in_production_and_warns_in_development(
    project,
):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a ();\n"})
    assert run(project, "lock").returncode == 0
    project.write({"001-schema/002-b.sql": "CREATE TABLE b ();\n"})
    refused = run(project, "migrate", env={"CHAINOPS_ENV": "production"})
    assert refused.returncode == 4
    assert one_error_line(refused).startswith(
        "✗ 001-schema/002-b.sql is not in chain.lock; production applies only files"
    )
    assert project.query("SELECT to_regclass('blockchain_migrations')") == [(None,)]
    dev = run(project, "migrate", tool="inv")
    assert dev.returncode == 0
    assert dev.stdout.splitlines()[0] == (
        "○ 001-schema/002-b.sql is not in chain.lock; run inv migrate.lock to add it "
        "(production refuses files that do not match chain.lock)"
    )
    assert "Applied 2 migrations" in dev.stdout


def test_verify_head_prints_ledger_head_and_json_carries_lock_head(project):
    project.write({"001-schema/001-a.sql": "CREATE TABLE a ();\n"})
    assert run(project, "lock").returncode == 0
    assert run(project, "migrate").returncode == 0
    head = run(project, "migrate.verify", "--head", tool="inv")
    assert head.returncode == 0, head.stderr
    rows = project.query("SELECT block_hash FROM blockchain_migrations")
    assert head.stdout == f"{rows[0][0]}\n"
    doc = json.loads(run(project, "verify", "--json").stdout)
    assert doc["ok"] is True
    assert doc["lock_head"] == lock_head(project.migrations)


def test_pre_commit_hook_entries_pass_on_this_repository():
    hooks = (REPO / ".pre-commit-hooks.yaml").read_text()
    entries = re.findall(r"^\s+entry:\s*(.+)$", hooks, re.MULTILINE)
    argvs = [shlex.split(entry) for entry in entries]
    assert [argv[1] for argv in argvs] == ["verify", "lint"]
    staged = sorted(str(p.relative_to(REPO)) for p in REPO.glob("migrations/*/*.sql"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAINOPS_")}
    for argv, files in zip(argvs, ([], staged), strict=True):  # lint gets filenames
        result = subprocess.run(
            [sys.executable, "-m", "chainops", *argv[1:], *files],
            cwd=REPO,
            env={**env, **NO_DATABASE},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


# --- two branches, one merge -----------------------------------------------------


def git(repo: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "dev",
        "GIT_AUTHOR_EMAIL": "dev@example.invalid",
        "GIT_COMMITTER_NAME": "dev",
        "GIT_COMMITTER_EMAIL": "dev@example.invalid",
    }
    return subprocess.run(
        ["git", *argv], cwd=repo, env=env, capture_output=True, text=True, check=check
    )


def chainops(migrations: Path, *argv: str) -> int:
    return main([*argv, "--migrations-dir", str(migrations)])


@pytest.mark.parametrize(
    ("type_b", "renumber"),
    [
        pytest.param("schema", True, id="same-number"),
        pytest.param("functions", False, id="other-folder"),
    ],
)
def test_two_branches_adding_migrations_conflict_in_chain_lock(
    tmp_path, capsys, type_b, renumber
):
    repo = tmp_path / "app"
    migrations = repo / "migrations"
    migrations.mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[project]\nname = "app"\n')
    git(repo, "init", "-q", "-b", "main")
    assert chainops(migrations, "create", "--name", "users", "--type", "schema") == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "users")

    git(repo, "checkout", "-q", "-b", "a")
    assert chainops(migrations, "create", "--name", "orders", "--type", "schema") == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "orders")
    git(repo, "checkout", "-q", "-b", "b", "main")
    assert chainops(migrations, "create", "--name", "prices", "--type", type_b) == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "prices")

    git(repo, "checkout", "-q", "a")
    merge = git(repo, "merge", "--no-edit", "b", check=False)
    assert merge.returncode == 1
    conflicted = git(repo, "diff", "--name-only", "--diff-filter=U").stdout.split()
    assert conflicted == ["migrations/chain.lock"]
    assert "<<<<<<<" in (migrations / "chain.lock").read_text()
    capsys.readouterr()

    # The README's resolution: renumber one file if both took a number, then lock.
    prices = migrations / ("001-schema" if renumber else "002-functions")
    if renumber:
        assert chainops(migrations, "lock") == 3  # two files numbered 002
        assert "has the same number as" in capsys.readouterr().err
        git(repo, "mv", str(prices / "002-prices.sql"), str(prices / "003-prices.sql"))
    assert chainops(migrations, "lock") == 0
    assert chainops(migrations, "verify", "--files-only") == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-edit")
    assert git(repo, "status", "--porcelain").stdout == ""


def test_create_then_write_sql_applies_quietly_outside_production(project):
    created = run(project, "create", "--name", "add-orders", "--type", "schema")
    assert created.returncode == 0, created.stderr
    path = project.root / created.stdout.strip()
    template = path.read_text()
    path.write_text(
        template.replace("-- Your SQL here", "CREATE TABLE orders (id int);")
    )

    applied = run(project, "migrate")

    assert applied.returncode == 0, applied.stderr
    assert "chain.lock" not in applied.stdout + applied.stderr
    assert "✓ #1001 001-add-orders.sql" in applied.stdout


def test_create_then_write_sql_is_refused_in_production_until_locked(project):
    created = run(project, "create", "--name", "add-orders", "--type", "schema")
    path = project.root / created.stdout.strip()
    path.write_text(path.read_text() + "CREATE TABLE orders (id int);\n")

    refused = run(project, "migrate", env={"CHAINOPS_ENV": "production"})

    assert refused.returncode == 4
    assert "differs from chain.lock" in refused.stderr
