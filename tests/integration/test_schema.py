"""The schema fingerprint against real servers: drift of every object kind is caught
and described, and the same migrations give the same fingerprint everywhere.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from chainops import api
from chainops.errors import CannotConnect
from chainops.store import catalog as schema
from chainops.store import connection as db
from chainops.store import dump as backup
from chainops.store import dump as schema_dump
from chainops.store import ledger, server
from chainops.store.catalog_diff import diff
from tests.fixtures.postgres import Server, embedded_root

LEDGER_TABLES = (ledger.TABLE, ledger.HISTORY, ledger.META)
SYSTEM_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

BASE = {
    "001-schema/001-base.sql": """
CREATE EXTENSION citext VERSION '1.5';
CREATE SCHEMA billing;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_amount AS numeric(12, 2) DEFAULT 0 CHECK (VALUE >= 0);
CREATE TYPE money_pair AS (amount numeric(12, 2), currency char(3));
CREATE TYPE float_range AS RANGE (subtype = float8);
CREATE SEQUENCE billing.invoice_seq START 1000 INCREMENT 5 CACHE 10;
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email citext NOT NULL UNIQUE,
    name text COLLATE "C",
    nickname text,
    feeling mood DEFAULT 'ok',
    balance positive_amount,
    first_name text,
    last_name text,
    full_name text GENERATED ALWAYS AS (first_name || ' ' || last_name) STORED,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE billing.invoices (
    id integer PRIMARY KEY DEFAULT nextval('billing.invoice_seq'),
    user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    serial_no serial
);
CREATE INDEX invoices_user_idx ON billing.invoices (user_id, total DESC)
    WHERE total > 0;
CREATE TABLE tags (name text);
CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_at_idx ON events (at);
CREATE VIEW active_users AS
    SELECT u.id, u.email, count(i.id) AS invoices
    FROM users u LEFT JOIN billing.invoices i ON i.user_id = u.id
    WHERE u.feeling <> 'sad' GROUP BY u.id, u.email;
CREATE VIEW big_invoices AS
    SELECT invoices.id, invoices.total FROM billing.invoices
    WHERE invoices.total > 100 AND EXISTS (
        SELECT 1 FROM users WHERE users.id = invoices.user_id);
CREATE MATERIALIZED VIEW invoice_totals AS
    SELECT user_id, sum(total) AS total FROM billing.invoices GROUP BY user_id;
""",
    "002-functions/001-code.sql": """
CREATE FUNCTION user_total(p_user bigint, p_min numeric DEFAULT 0) RETURNS numeric
LANGUAGE sql STABLE
AS $$ SELECT coalesce(sum(total), 0) FROM billing.invoices WHERE user_id = p_user $$;
CREATE FUNCTION add_one(i integer) RETURNS integer LANGUAGE sql IMMUTABLE
RETURN i + 1;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := now();
    RETURN NEW;
END
$$;
CREATE PROCEDURE archive(days integer) LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM billing.invoices WHERE id < days;
END
$$;
CREATE AGGREGATE concat_all(text) (sfunc = textcat, stype = text, initcond = '');
CREATE TRIGGER users_touch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION touch();
""",
}

PROCEDURE_V2 = """CREATE OR REPLACE PROCEDURE archive(days integer)
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM billing.invoices WHERE id <= days;
END
$$"""
TOUCH_V2 = """CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := clock_timestamp();
    RETURN NEW;
END
$$"""

# (out-of-band SQL, the lines diff must print). One case per object kind and property.
DRIFT = {
    "schema": ("CREATE SCHEMA audit", ["schema audit added"]),
    "table": ("CREATE TABLE notes (id int)", ["table public.notes added"]),
    "table-dropped": ("DROP TABLE tags", ["table public.tags dropped"]),
    "column-added": (
        "ALTER TABLE billing.invoices ADD COLUMN note text",
        ["table billing.invoices: column note text added"],
    ),
    "column-dropped": (
        "ALTER TABLE users DROP COLUMN nickname",
        ["table public.users: column nickname dropped"],
    ),
    "column-type": (
        "ALTER TABLE users ALTER COLUMN nickname TYPE varchar(100)",
        [
            "column public.users.nickname: type changed from text to "
            "character varying(100)"
        ],
    ),
    "column-default": (
        "ALTER TABLE users ALTER COLUMN feeling SET DEFAULT 'happy'",
        [
            "column public.users.feeling: default changed from 'ok'::public.mood "
            "to 'happy'::public.mood"
        ],
    ),
    "column-not-null": (
        "ALTER TABLE users ALTER COLUMN nickname SET NOT NULL",
        ["column public.users.nickname: NOT NULL added"],
    ),
    "column-identity": (
        "ALTER TABLE users ALTER COLUMN id SET GENERATED BY DEFAULT",
        ["column public.users.id: identity changed from ALWAYS to BY DEFAULT"],
    ),
    "column-generated": (
        "ALTER TABLE users ALTER COLUMN full_name DROP EXPRESSION",
        ["column public.users.full_name: generation expression dropped"],
    ),
    "constraint": (
        "ALTER TABLE billing.invoices ADD CONSTRAINT invoices_cap"
        " CHECK (total < 1000000) NOT VALID",
        [
            "table billing.invoices: constraint invoices_cap added: "
            "CHECK ((total < (1000000)::numeric)) NOT VALID"
        ],
    ),
    "constraint-dropped": (
        "ALTER TABLE users DROP CONSTRAINT users_email_key",
        [
            "table public.users: constraint users_email_key dropped",
            "index public.users_email_key dropped",
        ],
    ),
    "index": (
        "CREATE INDEX idx_users_nickname ON users (nickname)",
        [
            "index public.idx_users_nickname added: "
            "CREATE INDEX idx_users_nickname ON public.users USING btree (nickname)"
        ],
    ),
    "index-dropped": (
        "DROP INDEX billing.invoices_user_idx",
        ["index billing.invoices_user_idx dropped"],
    ),
    "view": (
        "CREATE OR REPLACE VIEW big_invoices AS SELECT id, total"
        " FROM billing.invoices WHERE total > 200",
        ["view public.big_invoices: definition changed"],
    ),
    "materialized-view": (
        "DROP MATERIALIZED VIEW invoice_totals",
        ["materialized view public.invoice_totals dropped"],
    ),
    "function-body": (TOUCH_V2, ["function public.touch(): body changed"]),
    "function-volatility": (
        "ALTER FUNCTION user_total(bigint, numeric) IMMUTABLE",
        [
            "function public.user_total(bigint, numeric): volatility changed "
            "from stable to immutable"
        ],
    ),
    "function-added": (
        "CREATE FUNCTION add_one(i bigint) RETURNS bigint LANGUAGE sql RETURN i + 1",
        ["function public.add_one(bigint) added"],
    ),
    "procedure": (PROCEDURE_V2, ["procedure public.archive(integer): body changed"]),
    "aggregate": (
        "DROP AGGREGATE concat_all(text)",
        ["aggregate public.concat_all(text) dropped"],
    ),
    "trigger": (
        "DROP TRIGGER users_touch ON users",
        ["table public.users: trigger users_touch dropped"],
    ),
    "trigger-disabled": (
        "ALTER TABLE users DISABLE TRIGGER users_touch",
        ["trigger public.users.users_touch: now disabled"],
    ),
    "sequence": (
        "ALTER SEQUENCE billing.invoice_seq INCREMENT 10",
        ["sequence billing.invoice_seq: increment changed from 5 to 10"],
    ),
    "enum-label": (
        "ALTER TYPE mood ADD VALUE 'ecstatic'",
        [
            "type public.mood: labels changed from 'sad', 'ok', 'happy' "
            "to 'sad', 'ok', 'happy', 'ecstatic'"
        ],
    ),
    "domain": (
        "ALTER DOMAIN positive_amount DROP DEFAULT",
        ["type public.positive_amount: default dropped"],
    ),
    "extension": ("CREATE EXTENSION hstore", ["extension hstore added: version 1.8"]),
    "extension-version": (
        "ALTER EXTENSION citext UPDATE TO '1.6'",
        ["extension citext: version changed from 1.5 to 1.6"],
    ),
    "row-level-security": (
        "ALTER TABLE users ENABLE ROW LEVEL SECURITY",
        ["table public.users: ROW LEVEL SECURITY added"],
    ),
}


def read(url: str) -> schema.Snapshot:
    with psycopg.connect(url, autocommit=True) as conn:
        return schema.read_snapshot(conn, "public", LEDGER_TABLES)


@pytest.fixture
def base(project):
    """The project with BASE applied, and the snapshot chainops saw afterwards."""
    project.write(BASE)
    api.apply(project.target)
    return project, read(project.db_url)


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """One more empty database on a server, dropped afterwards."""
    name = f"chainops_t_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}_x"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        db.drop_database(admin, name)
        db.create_database(admin, name)
    try:
        yield make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            db.drop_database(admin, name)


@pytest.fixture(scope="module")
def other_server(pg_server: Server) -> Iterator[str]:
    """The admin URL of the server the suite does not use: system and embedded swap.

    Both are present on developer machines and in CI; an unreachable one fails the
    test rather than skipping it. An embedded server started here is stopped after.
    """
    if pg_server.source == "embedded":
        yield SYSTEM_SERVER
        return
    embedded = server.ensure_running(embedded_root(), dbname="postgres")
    try:
        yield embedded.conninfo
    finally:
        if embedded.started:
            server.stop(embedded_root())


# --- drift of every kind ------------------------------------------------------------


@pytest.mark.parametrize(("change", "expected"), DRIFT.values(), ids=DRIFT.keys())
def test_diff_describes_drift_when_schema_changed_out_of_band(base, change, expected):
    project, before = base

    project.query(change)
    after = read(project.db_url)

    assert diff(before, after) == expected
    assert schema.fingerprint(after) != schema.fingerprint(before)


def test_diff_reports_invalid_index_then_valid_when_concurrent_build_fails(base):
    project, before = base
    project.query("INSERT INTO tags VALUES ('x'), ('x')")

    with pytest.raises(psycopg.errors.UniqueViolation):
        project.query("CREATE UNIQUE INDEX CONCURRENTLY tags_name ON tags (name)")
    invalid = read(project.db_url)
    project.query("DELETE FROM tags")
    project.query("REINDEX INDEX tags_name")
    valid = read(project.db_url)

    assert diff(before, invalid) == [
        "index public.tags_name added: "
        "CREATE UNIQUE INDEX tags_name ON public.tags USING btree (name) (INVALID)"
    ]
    assert diff(invalid, valid) == ["index public.tags_name: now valid"]


def test_diff_reports_column_order_when_column_dropped_and_added_again(base):
    project, before = base

    project.query("ALTER TABLE billing.invoices DROP COLUMN user_id CASCADE")
    project.query("ALTER TABLE billing.invoices ADD COLUMN user_id bigint NOT NULL")
    after = read(project.db_url)

    assert (
        "table billing.invoices: column order changed from "
        "(id, user_id, total, serial_no) to (id, total, serial_no, user_id)"
    ) in diff(before, after)


# --- no false drift -----------------------------------------------------------------


def test_read_snapshot_leaves_out_chainops_tables_when_ledger_exists(base):
    _, snapshot = base

    names = [name for objects in snapshot.objects.values() for name in objects]

    assert "public.users" in snapshot.objects["table"]
    assert not [n for n in names if "blockchain_migrations" in n]


def test_read_snapshot_leaves_out_chainops_tables_when_ledger_has_own_schema(project):
    project.write(BASE)
    api.apply(project.target_with(ledger_schema="chainops"))

    with psycopg.connect(project.db_url, autocommit=True) as conn:
        snapshot = schema.read_snapshot(conn, "chainops", LEDGER_TABLES)

    names = [name for objects in snapshot.objects.values() for name in objects]
    assert "chainops" in snapshot.objects["schema"]
    assert not [n for n in names if "blockchain_migrations" in n]


def test_fingerprint_ignores_data_statistics_and_sequence_values_when_used(base):
    project, before = base

    project.query("INSERT INTO users (email, name) VALUES ('a@example.com', 'a')")
    project.query("INSERT INTO billing.invoices (user_id, total) VALUES (1, 5)")
    project.query("SELECT nextval('billing.invoice_seq')")
    project.query("REFRESH MATERIALIZED VIEW invoice_totals")
    project.query("ANALYZE")
    project.query("VACUUM users")
    after = read(project.db_url)

    assert diff(before, after) == []
    assert schema.fingerprint(after) == schema.fingerprint(before)


def test_read_snapshot_is_the_same_when_session_search_path_differs(base):
    project, before = base
    url = make_conninfo(project.db_url, options="-c search_path=billing")

    with psycopg.connect(url) as conn:
        conn.execute("SELECT 1")  # the caller's transaction is open
        after = schema.read_snapshot(conn, "public", LEDGER_TABLES)
        path = conn.execute("SHOW search_path").fetchone()

    assert schema.fingerprint(after) == schema.fingerprint(before)
    assert path == ("billing",)


def test_read_snapshot_leaves_autocommit_session_search_path_and_no_transaction(base):
    project, before = base
    url = make_conninfo(project.db_url, options="-c search_path=billing")

    with psycopg.connect(url, autocommit=True) as conn:
        after = schema.read_snapshot(conn, "public", LEDGER_TABLES)
        status = conn.info.transaction_status
        path = conn.execute("SHOW search_path").fetchone()

    assert schema.fingerprint(after) == schema.fingerprint(before)
    assert status == psycopg.pq.TransactionStatus.IDLE
    assert path == ("billing",)


def test_fingerprint_is_equal_when_examples_applied_to_two_fresh_databases(
    project, pg_server
):
    project.copy_examples()
    api.apply(project.target)

    with fresh_database(pg_server.admin_url) as url:
        api.apply(project.target_with(database_url=url))
        second = read(url)

    assert diff(read(project.db_url), second) == []
    assert schema.fingerprint(second) == schema.fingerprint(read(project.db_url))


def test_fingerprint_is_equal_when_unrelated_objects_are_created_in_another_order(
    project, pg_server
):
    first = ["CREATE TABLE a (id int PRIMARY KEY)", "CREATE TABLE b (id int)"]
    first += ["CREATE INDEX b_id ON b (id)", "CREATE FUNCTION f() RETURNS int RETURN 1"]
    for statement in first:
        project.query(statement)

    with (
        fresh_database(pg_server.admin_url) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        conn.execute("CREATE TABLE spacer (id int)")  # shifts every later OID
        for statement in reversed(first):
            if statement.startswith("CREATE INDEX"):
                continue
            conn.execute(statement.encode())
        conn.execute(b"CREATE INDEX b_id ON b (id)")
        conn.execute(b"DROP TABLE spacer")
        second = schema.read_snapshot(conn, "public", LEDGER_TABLES)

    assert diff(read(project.db_url), second) == []


@pytest.mark.parametrize("migrations", ["examples", "base"])
def test_fingerprint_is_equal_on_both_servers_when_same_migrations_applied(
    project, other_server, migrations
):
    """The suite's server and the other one: PostgreSQL 15 and 18 on this machine."""
    if migrations == "examples":
        project.copy_examples()
    else:
        project.write(BASE)
    api.apply(project.target)
    here = read(project.db_url)

    with fresh_database(other_server) as url:
        api.apply(project.target_with(database_url=url))
        there = read(url)

    assert diff(here, there) == []
    assert schema.fingerprint(here) == schema.fingerprint(there)


def test_diff_names_extension_version_when_servers_ship_different_defaults(
    project, other_server
):
    """A documented limit: an extension's default version follows the server."""
    project.write({"001-schema/001-ext.sql": "CREATE EXTENSION citext;"})
    api.apply(project.target)
    here = read(project.db_url)

    with fresh_database(other_server) as url:
        api.apply(project.target_with(database_url=url))
        there = read(url)

    mine = here.objects["extension"]["citext"]["version"]
    theirs = there.objects["extension"]["citext"]["version"]
    expected = (
        []
        if mine == theirs
        else [f"extension citext: version changed from {mine} to {theirs}"]
    )
    assert diff(here, there) == expected


# --- migrations/schema.sql ----------------------------------------------------------


def test_write_schema_file_changes_only_when_schema_changes(base):
    project, _ = base
    path = project.migrations / "schema.sql"

    first = schema_dump.write_schema_file(project.db_url, path, "public")
    text = path.read_text()
    again = schema_dump.write_schema_file(project.db_url, path, "public")
    project.query("CREATE TABLE notes (id int)")
    changed = schema_dump.write_schema_file(project.db_url, path, "public")

    assert (first, again, changed) == (True, False, True)
    assert "CREATE TABLE public.users" in text
    assert "blockchain_migrations" not in text
    assert "Dumped" not in text
    assert "\\restrict" not in text
    assert "CREATE TABLE public.notes" in path.read_text()
    assert api.status(project.target).count("pending") == 0  # not a migration


def test_write_schema_file_passes_password_in_environment_only(base, tmp_path):
    project, _ = base
    with psycopg.connect(project.db_url, autocommit=True) as conn:
        major = conn.info.server_version // 10000
    real = backup.find_pg_dump(major)
    shim = tmp_path / "bin" / "pg_dump"
    shim.parent.mkdir()
    log = tmp_path / "pg_dump.log"
    shim.write_text(
        f'#!/bin/sh\necho "argv: $*" >> {log}\necho "env: $PGPASSWORD" >> {log}\n'
        f'exec {real} "$@"\n'
    )
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    url = make_conninfo(project.db_url, password="s3cret-pw")
    path = project.migrations / "schema.sql"

    with pytest.MonkeyPatch.context() as env:
        env.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
        schema_dump.write_schema_file(url, path, "public")

    calls = log.read_text().splitlines()
    assert [c for c in calls if c.startswith("argv: --schema-only")]
    assert not [c for c in calls if c.startswith("argv:") and "s3cret" in c]
    assert "env: s3cret-pw" in calls
    assert "s3cret" not in path.read_text()


def test_write_schema_file_fails_in_one_line_when_database_is_missing(
    pg_server, tmp_path
):
    url = make_conninfo(pg_server.admin_url, dbname="no_such_db", password="pw-x")

    with pytest.raises(CannotConnect) as caught:
        schema_dump.write_schema_file(url, tmp_path / "schema.sql", "public")

    assert "no_such_db" in caught.value.message
    assert "pw-x" not in caught.value.message
    assert "\n" not in caught.value.message
    assert not (tmp_path / "schema.sql").exists()


def test_write_schema_file_dumps_other_server_when_its_version_differs(
    project, other_server
):
    project.copy_examples()
    path = project.migrations / "schema.sql"

    with fresh_database(other_server) as url:
        api.apply(project.target_with(database_url=url))
        changed = schema_dump.write_schema_file(url, path, "public")

    assert changed
    assert "CREATE FUNCTION public.portfolio_value(p_portfolio_id bigint)" in (
        path.read_text()
    )
