"""S1-S4: the password never leaks, schema names are inert, tampering is caught,
and the ledger can be made read-only to the application.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import random
import re
import signal
import threading
import time
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from chainops import api, chain, model
from chainops.config import Settings, load_settings
from chainops.errors import ConfigError
from tests.fixtures.postgres import REPO
from tests.reliability.conftest import (
    Result,
    Trial,
    clean_env,
    error_line,
    finish,
    make_role,
    spawn,
    trials,
    wait_for,
)

# --- S1: the password -------------------------------------------------------------

CANARY = "Ca@n:a/r%y#?&9z"
ENCODED = quote(CANARY, safe="")
FRAGMENTS = (CANARY, ENCODED, "Ca@n", "r%y#", "a%2Fr")


def leaks(text: str) -> list[str]:
    return [f for f in FRAGMENTS if f in text]


class CommandLines:
    """Samples every process's command line every 5 ms (chainops, pg_dump...)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if pid.isdigit():
                    try:
                        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                    except OSError:
                        continue
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(0.005)

    def __enter__(self) -> CommandLines:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def canary_db(private_server):
    """A database on the private server owned by a role whose password is CANARY."""
    name = f"s1_{os.getpid()}_{random.randrange(1 << 20)}"
    with psycopg.connect(private_server.admin_url(), autocommit=True) as admin:
        make_role(admin, name, CANARY)
        admin.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(name), sql.Identifier(name)
            )
        )
    yield name, private_server.tcp_url(name, CANARY, name)
    with psycopg.connect(private_server.admin_url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def test_s1_password_never_appears_anywhere(canary_db, private_server, tmp_path):
    name, url = canary_db
    log_start = private_server.log.stat().st_size
    trial = Trial(tmp_path, url, name)
    trial.migrations.mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "s1"\n')
    trial.write(
        {
            "001-schema/001-a.sql": "CREATE TABLE a (id int);\n",
            "001-schema/002-slow.sql": "CREATE TABLE slow ();\nSELECT pg_sleep(1);\n",
        }
    )
    results: dict[str, Result] = {}
    apps: set[str] = set()

    def sample_activity() -> None:
        rows = trial.query("SELECT application_name, query FROM pg_stat_activity")
        apps.update(f"{a} {q}" for a, q in rows)

    with CommandLines() as lines:
        proc = trial.spawn("migrate", "--backup")
        wait_for(
            lambda: trial.query(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(1)%'"
                " AND application_name LIKE 'chainops%'"
            ),
            30,
            "the slow migration",
        )
        sample_activity()
        results["migrate --backup"] = finish(proc)
        assert results["migrate --backup"].code == 0, results["migrate --backup"].text
        trial.write(
            {"001-schema/003-b.sql": "CREATE TABLE b ();\nSELECT pg_sleep(5);\n"}
        )
        proc = trial.spawn("migrate", tool="chainops")
        wait_for(
            lambda: trial.query(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%'"
                " AND application_name LIKE 'chainops%'"
            ),
            30,
            "b",
        )
        sample_activity()
        proc.send_signal(signal.SIGINT)
        results["Ctrl-C"] = finish(proc)
        assert results["Ctrl-C"].code == 130, results["Ctrl-C"].text
        trial.write({"001-schema/003-b.sql": "CREATE TABLE b ();\n"})  # rolled back
        results["db.schema (sampled)"] = trial.run("db.schema")  # runs pg_dump
    for argv in (
        ["migrate"],
        ["migrate", "--dry-run", "--sql"],
        ["migrate.status"],
        ["migrate.status", "--json"],
        ["migrate.verify"],
        ["migrate.verify", "--json"],
        ["migrate.verify", "--head"],
        ["migrate.baseline", "--through", "1001"],
        ["db.schema"],
        ["db.url"],
        ["db.reset-dev", "--yes", "--migrate"],
    ):
        results[" ".join(argv)] = trial.run(*argv)
    failures = {
        "bad password": (private_server.tcp_url(name, CANARY + "!", name), 5),
        "unknown host": (
            f"postgresql://{name}:{ENCODED}@no-such-host.invalid/x",
            5,
        ),
        "refused": (f"postgresql://{name}:{ENCODED}@127.0.0.1:1/x", 5),
        "malformed": (f"postgresql://{name}:{ENCODED}@127.0.0.1:5x2/x", 5),
        "malformed query": (f"postgresql://{name}:{ENCODED}@h/x?sslmode=bogus", 5),
    }
    # Every failure mode with migrate; every command and debug mode with some.
    runs = [(label, "migrate", "") for label in failures]
    runs += [("bad password", c, "") for c in ("migrate.status", "migrate.verify")]
    runs += [(label, "migrate", "1") for label in ("bad password", "refused")]
    for label, argv0, debug in runs:
        bad_url, code = failures[label]
        argv = [argv0]
        env = clean_env(bad_url, CHAINOPS_DEBUG=debug)
        key = f"{label} {argv[0]} debug={debug}"
        results[key] = finish(spawn(tmp_path, *argv, url=None, env=env))
        assert results[key].code == code, (key, results[key].text)
        error_line(results[key], key)
    # An unexpected error in debug mode prints a traceback: still no password.
    # (A ledger column of a type chainops never wrote: numbers read back as text.)
    trial.query(
        "ALTER TABLE blockchain_migrations ALTER COLUMN migration_number TYPE text"
    )
    env = clean_env(url, CHAINOPS_DEBUG="1")
    results["debug traceback"] = finish(
        spawn(tmp_path, "migrate.status", url=None, env=env)
    )
    assert "Traceback" in results["debug traceback"].err
    assert (
        "password authentication failed" in results["bad password migrate debug="].err
    )
    for key, result in results.items():
        assert not leaks(result.text), f"{key}: {result.text}"
    assert any("pg_dump" in line for line in lines.seen), "pg_dump was not observed"
    assert not [line for line in lines.seen if leaks(line)]
    assert not [a for a in apps if leaks(a)]
    assert any(a.startswith("chainops migrate ") for a in apps), apps
    with psycopg.connect(private_server.admin_url(name), autocommit=True) as conn:
        for table in (
            "blockchain_migrations",
            "blockchain_migrations_history",
            "blockchain_migrations_meta",
        ):
            rows = conn.execute(
                sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
            ).fetchall()
            assert rows, table
            assert not [r for r in rows if leaks(r[0])], table
    with private_server.log.open("rb") as log:
        log.seek(log_start)
        text = log.read().decode(errors="replace")
    assert "password authentication failed" in text
    assert not leaks(text)


# --- S2: ledger schema names ------------------------------------------------------

SPECIAL = [
    '"; DROP TABLE a; --',
    "'; DROP TABLE a; --",
    'a"b',
    "select",
    "user",
    "public",
    "Mixed Case",
    "tab\there",
    "x" * 63,
    "é" * 31,
    "é" * 32,
    "x" * 64,
    "",
    "pg_evil",
    "pg_catalog",
    "PG_upper",
    "\u202e",
    "a\nb",
]


def acceptable(name: str) -> bool:
    """PostgreSQL's rules: 1-63 bytes, no NUL, and no pg_ prefix (reserved)."""
    size = len(name.encode("utf-8", "surrogatepass"))
    return (
        0 < size <= 63
        and "\x00" not in name
        and not name.startswith("pg_")
        and not any("\ud800" <= c <= "\udfff" for c in name)
    )


@settings(
    max_examples=trials("s2", ci=40, stress=2_000),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.one_of(st.sampled_from(SPECIAL), st.text(max_size=70)))
@example(name="\udcff")
def test_s2_schema_names_round_trip_or_are_refused_in_one_line(project, name):
    project.write({"001-schema/001-a.sql": "SELECT 1;\n"})
    refused: ConfigError | None = None
    try:
        loaded = load_settings(cwd=project.root, environ={}, ledger_schema=name)
    except ConfigError as err:
        refused = err
    if refused is not None:
        assert not acceptable(name), f"{name!r} refused: {refused}"
        assert str(refused).isprintable(), str(refused)
        return
    if name == "":  # an empty option means unset, as for the variable
        assert loaded.ledger_schema == "public"
        return
    assert acceptable(name), f"{name!r} accepted"
    settings_ = dataclasses.replace(project.settings, ledger_schema=name)
    api.apply(api.target(settings_))
    found = project.query(
        "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = 'blockchain_migrations' AND n.nspname = %s",
        (name,),
    )
    assert found == [(name,)]
    assert api.verify(api.target(settings_)).ok
    assert project.query("SELECT to_regclass('a') IS NULL") == [(True,)]
    if name != "public":
        project.query(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
    else:
        project.query(
            "DROP TABLE blockchain_migrations, blockchain_migrations_history,"
            " blockchain_migrations_meta"
        )


@pytest.mark.parametrize(
    ("name", "code"), [('"; DROP TABLE a; --', 0), ("pg_evil", 2), ("x" * 64, 2)]
)
def test_s2_cli_schema_option_is_inert_or_refused(fresh, name, code):
    trial = fresh.new()
    trial.write({"001-schema/001-a.sql": "CREATE TABLE a ();\n"})
    result = trial.run("migrate", "--schema", name, tool="chainops")
    assert result.code == code, result.text
    if code:
        assert "the ledger schema" in error_line(result)
    else:
        assert trial.query(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,)
        ) == [(1,)]
        assert trial.query("SELECT to_regclass('a') IS NOT NULL") == [(True,)]


# A statement keyword first, or a value spliced in right after an SQL keyword.
SQL_SHAPE = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|GRANT|REVOKE|TRUNCATE|SET"
    r"|SHOW|WITH|COPY|LOCK|COMMENT|VACUUM|REINDEX|CALL|DO)\b"
    r"|\b(FROM|INTO|TABLE|SCHEMA|WHERE|JOIN|UPDATE|SET|VALUES|AND|OR)\s*\(?\s*['\"]?\{\}"
)


def formatted_sql_strings(source: str) -> list[tuple[int, str]]:
    """String literals that look like SQL and are built by f-string, % or .format."""
    found = []
    for node in ast.walk(ast.parse(source)):
        text = None
        if isinstance(node, ast.JoinedStr) and any(
            isinstance(v, ast.FormattedValue) for v in node.values
        ):
            text = "".join(
                v.value if isinstance(v, ast.Constant) else "{}" for v in node.values
            )
        elif (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Mod)
            and isinstance(node.left, ast.Constant)
            and isinstance(node.left.value, str)
        ):
            text = re.sub(r"%[sdr]", "{}", node.left.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant)
            and isinstance(node.func.value.value, str)
        ):
            text = re.sub(r"\{[^}]*\}", "{}", node.func.value.value)
        if text is not None and SQL_SHAPE.search(text):
            found.append((node.lineno, text))
    return found


def test_s2_no_sql_is_built_with_string_formatting_in_the_package():
    offenders = []
    for path in sorted((REPO / "chainops").glob("*.py")):
        for line, text in formatted_sql_strings(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.name}:{line}: {text[:60]!r}")
    assert offenders == []


def test_s2_formatted_sql_detector_flags_the_patterns_it_looks_for():
    assert formatted_sql_strings('q = f"SELECT * FROM {t}"')
    assert formatted_sql_strings('q = "DROP TABLE %s" % t')
    assert formatted_sql_strings('q = "DELETE FROM {}".format(t)')
    assert not formatted_sql_strings(
        'q = sql.SQL("SELECT {}").format(sql.Identifier(t))'
    )
    assert formatted_sql_strings("q = f\"UPDATE t SET v = '{v}'\"")
    assert not formatted_sql_strings('m = f"the ledger {x} was altered"')
    assert not formatted_sql_strings('m = f"{where}: COPY ... FROM STDIN is refused"')


# --- S3: tampering ----------------------------------------------------------------


def applied_trial(fresh) -> Trial:
    """Six applied files and a committed chain lock (set up in-process, for speed)."""
    trial = fresh.new()
    trial.write(
        {
            f"001-schema/{i:03d}-t{i}.sql": f"CREATE TABLE t{i} (id int);\n"
            for i in range(1, 7)
        }
    )
    settings_ = Settings(trial.root, trial.migrations, database_url=trial.url)
    api.lock(settings_)
    assert (trial.migrations / "chain.lock").is_file()
    assert len(api.apply(api.target(settings_)).applied) == 6
    return trial


def rehash_from(trial: Trial, height: int) -> None:
    """Recompute every block hash from `height` on, as a careful forger would."""
    settings_ = Settings(trial.root, trial.migrations, database_url=trial.url)
    from chainops.store import connection as db
    from chainops.store import ledger

    conn = db.connect(trial.url)
    try:
        blocks = ledger.read_snapshot(conn, settings_.ledger_schema).blocks
        previous = model.GENESIS if height == 1 else blocks[height - 2].block_hash
        for block in blocks[height - 1 :]:
            fixed = dataclasses.replace(block, previous_hash=previous)
            fixed = dataclasses.replace(fixed, block_hash=chain.recompute(fixed))
            conn.execute(
                "UPDATE blockchain_migrations SET previous_hash = %s, block_hash = %s"
                " WHERE height = %s",
                (fixed.previous_hash, fixed.block_hash, block.height),
            )
            previous = fixed.block_hash
    finally:
        conn.close()


MUTATIONS = {
    "hash": [
        "UPDATE blockchain_migrations SET hash = repeat('a', 64) WHERE height = 3"
    ],
    "file name": [
        "UPDATE blockchain_migrations SET path = '001-schema/003-t9.sql',"
        " filename = '003-t9.sql' WHERE height = 3"
    ],
    "timestamp": [
        "UPDATE blockchain_migrations SET executed_at = executed_at - interval '1 day'"
        " WHERE height = 3"
    ],
    "delete": ["DELETE FROM blockchain_migrations WHERE height = 3"],
    "insert": [
        "INSERT INTO blockchain_migrations (migration_number, filename, path, hash,"
        " hash_algorithm, executed_at, status, height, previous_hash, block_hash, mode,"
        " applied_by, client_host, chainops_version) SELECT 1009, '009-x.sql',"
        " '001-schema/009-x.sql', hash, hash_algorithm, executed_at, status, 7,"
        " block_hash, repeat('b', 64), mode, applied_by, client_host, chainops_version"
        " FROM blockchain_migrations WHERE height = 6"
    ],
    "reorder": [
        "UPDATE blockchain_migrations SET height = -height WHERE height IN (3, 4)",
        "UPDATE blockchain_migrations SET height = 7 + height WHERE height IN (-3, -4)",
    ],
    "truncate tail": ["DELETE FROM blockchain_migrations WHERE height >= 5"],
}


LEDGER_TABLES = ("blockchain_migrations", "blockchain_migrations_history")


def restore(trial: Trial, saved: dict[str, list[tuple]]) -> None:
    """Put the ledger rows back exactly as they were (kept in memory, not a table)."""
    with psycopg.connect(trial.url, autocommit=True) as conn, conn.transaction():
        for table, rows in saved.items():
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
            if rows:
                marks = sql.SQL(", ").join([sql.Placeholder()] * len(rows[0]))
                conn.cursor().executemany(
                    sql.SQL(
                        "INSERT INTO {} OVERRIDING SYSTEM VALUE VALUES ({})"
                    ).format(sql.Identifier(table), marks),
                    rows,
                )


def test_s3_every_ledger_mutation_is_detected_by_verify(fresh):
    trial = applied_trial(fresh)
    settings_ = Settings(trial.root, trial.migrations, database_url=trial.url)
    saved = {
        t: trial.query(sql.SQL("SELECT * FROM {}").format(sql.Identifier(t)))
        for t in LEDGER_TABLES
    }
    for mutation, statements in MUTATIONS.items():
        for statement in statements:
            trial.query(statement)
        tool = "inv" if mutation == "hash" else "chainops"
        result = trial.run("migrate.verify" if tool == "inv" else "verify", tool=tool)
        assert result.code == 4, f"{mutation}: {result.text}"
        assert "✗ the ledger" in result.out, f"{mutation}: {result.text}"
        migrate = trial.run("migrate", tool="chainops")
        assert migrate.code == 4, f"{mutation}: {migrate.text}"
        assert "Traceback" not in migrate.err
        # The findings, then one line saying why nothing was applied.
        assert migrate.err.splitlines()[-1].endswith("; nothing was applied"), (
            f"{mutation}: {migrate.err}"
        )
        restore(trial, saved)
        assert api.verify(api.target(settings_)).ok, mutation


def test_s3_consistent_whole_chain_rewrite_is_caught_by_the_chain_lock(fresh):
    from tests.fixtures.hashing import hash_text

    trial = applied_trial(fresh)
    lock = (trial.migrations / "chain.lock").read_text()
    forged = "CREATE TABLE t3 (id int, backdoor text);\n"
    # Block 3 now claims other content, and every later hash is recomputed: each
    # link checks out, so only the committed lock can say which content is true.
    for table in ("blockchain_migrations", "blockchain_migrations_history"):
        trial.query(
            f"UPDATE {table} SET hash = %s WHERE migration_number = 1003",
            (hash_text(forged),),
        )  # the history too: a careful forger keeps them in step
    rehash_from(trial, 3)
    result = trial.run("migrate.verify")
    assert result.code == 4, result.text
    assert "the ledger: block 3 (001-schema/003-t3.sql) records content" in result.out
    assert "the ledger was rewritten" in result.out, result.text
    # The file rewritten on the server too: the chain alone sees nothing ...
    (trial.migrations / "001-schema/003-t3.sql").write_text(forged)
    (trial.migrations / "chain.lock").unlink()
    assert trial.run("migrate.verify").code == 0
    # ... but production verifies against the lock from git.
    (trial.migrations / "chain.lock").write_text(lock)
    env = clean_env(trial.url, CHAINOPS_ENV="production")
    result = finish(spawn(trial.root, "migrate.verify", url=None, env=env))
    assert result.code == 4, result.text
    assert "001-schema/003-t3.sql differs from chain.lock" in result.out, result.text


def test_s3_documented_limit_newest_blocks_deleted_with_their_history(fresh):
    trial = applied_trial(fresh)
    head = trial.run("migrate.verify", "--head").out.strip()
    trial.query("DELETE FROM blockchain_migrations WHERE height >= 5")
    trial.query(
        "DELETE FROM blockchain_migrations_history WHERE migration_number >= 1005"
    )
    result = trial.run("migrate.verify")
    status = trial.run("migrate.status")
    # README, "Not caught, even with the lock": verify passes and the files merely
    # look pending again; the head recorded in a deploy log no longer matches, and
    # applying them again fails loudly on the objects they already created.
    assert result.code == 0, result.text
    assert "○ #1005" in status.out, status.text
    assert "○ #1006" in status.out, status.text
    assert trial.run("migrate.verify", "--head").out.strip() != head
    again = trial.run("migrate")
    assert again.code == 6, again.text
    assert 'relation "t5" already exists' in error_line(again)


def test_s3_metadata_rewrite_changes_the_head_recorded_in_deploy_logs(fresh):
    trial = applied_trial(fresh)
    head = trial.run("migrate.verify", "--head").out.strip()
    digest = trial.run("migrate.digest").out
    (trial.root / "digests.log").write_text(digest)
    trial.query(
        "UPDATE blockchain_migrations SET applied_by = 'someone-else' WHERE height = 2"
    )
    assert trial.run("migrate.verify").code == 4  # the history still says who
    trial.query(
        "UPDATE blockchain_migrations_history SET applied_by = 'someone-else'"
        " WHERE migration_number = 1002"
    )
    rehash_from(trial, 2)
    # Documented: chain, history and lock agree again; the digest does not.
    assert trial.run("migrate.verify").code == 0
    assert trial.run("migrate.verify", "--head").out.strip() != head
    result = trial.run("migrate.verify", "--digest", "digests.log")
    assert result.code == 4, result.text
    assert "was rewritten since" in result.out


# --- S4: least privilege ----------------------------------------------------------

GRANTS = REPO / "docs" / "grants.sql"


@pytest.fixture
def roles(pg_server):
    """Three roles for one test: migrator, app and read-only; dropped after."""
    suffix = f"{os.getpid()}_{random.randrange(1 << 20)}"
    names = {k: f"{k}_{suffix}" for k in ("migrator", "app", "readonly")}
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        for name in names.values():
            make_role(admin, name)
    yield names
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        for name in names.values():
            admin.execute(
                sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name))
            )


def as_role(trial: Trial, role: str) -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(trial.url, user=role)


def test_s4_app_role_cannot_change_ledger_and_readonly_role_can_verify(fresh, roles):
    import subprocess

    from chainops.store import server

    trial = fresh.new()
    try:
        psql = [str(server.pg_bin("psql")), trial.url, "-X", "-q", "-f", str(GRANTS)]
        for key, name in roles.items():
            psql += ["-v", f"{key}={name}"]
        psql += ["-v", "ledger_schema=chainops"]
        applied = subprocess.run(psql, capture_output=True, text=True, check=False)
        assert applied.returncode == 0, applied.stderr
        trial.write(
            {
                "001-schema/001-notes.sql": (
                    "CREATE TABLE notes (id serial PRIMARY KEY, body text);\n"
                ),
            }
        )
        env = {"CHAINOPS_LEDGER_SCHEMA": "chainops"}
        migrator = as_role(trial, roles["migrator"])
        result = finish(
            spawn(trial.root, "migrate", url=None, env=clean_env(migrator, **env))
        )
        assert result.code == 0, result.text
        with psycopg.connect(as_role(trial, roles["app"]), autocommit=True) as app:
            app.execute("INSERT INTO notes (body) VALUES ('x')")
            app.execute("UPDATE notes SET body = 'y'")
            app.execute("DELETE FROM notes")
            assert app.execute(
                "SELECT count(*) FROM chainops.blockchain_migrations"
            ).fetchone() == (1,)
            for statement in (
                "UPDATE chainops.blockchain_migrations SET hash = hash",
                "DELETE FROM chainops.blockchain_migrations",
                "TRUNCATE chainops.blockchain_migrations",
                "INSERT INTO chainops.blockchain_migrations_meta VALUES ('k', 'v')",
                "DELETE FROM chainops.blockchain_migrations_history",
                "UPDATE chainops.blockchain_migrations_meta SET value = value",
                "TRUNCATE notes",
                "DROP TABLE notes",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    app.execute(statement)
        readonly = clean_env(as_role(trial, roles["readonly"]), **env)
        for argv in (["migrate.status"], ["migrate.verify"]):
            result = finish(spawn(trial.root, *argv, url=None, env=readonly))
            assert result.code == 0, result.text
        with (
            psycopg.connect(as_role(trial, roles["readonly"]), autocommit=True) as ro,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            ro.execute("INSERT INTO notes (body) VALUES ('x')")
    finally:
        fresh.drop(trial)
