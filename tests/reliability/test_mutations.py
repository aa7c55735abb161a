"""M1: the mutation harness. A ledger holding every kind of row (baseline,
transaction, no-transaction and drift blocks, a failed attempt) is cloned once per
mutation; each mutation changes one thing as someone with write access to the
database would. Every mutation must be caught by `verify` (and then refused by
migrate, which applies nothing), or by `verify --digest` with a digest taken
before it, or be on the documented list below with the reason it cannot be.

CI runs a sample (CHAINOPS_STRESS_M1 sets how many); `inv test.stress` runs all and
prints the counts.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from chainops import api, chain
from chainops.config import Settings, describe_database
from chainops.errors import ChainopsError
from chainops.model import Mode, Target
from chainops.source.files import HASH_ALGORITHM
from chainops.store import ledger as ledger_store
from tests.fixtures.postgres import Server
from tests.reliability.conftest import trials

LEDGER, HISTORY, META = ledger_store.TABLES
FILES = {
    "001-schema/001-users.sql": "CREATE TABLE users (id int PRIMARY KEY);\n",
    "001-schema/002-notes.sql": "CREATE TABLE notes (id int PRIMARY KEY, v text);\n",
    "001-schema/003-orders.sql": "CREATE TABLE orders (id int PRIMARY KEY);\n",
    "001-schema/004-index.sql": "CREATE INDEX CONCURRENTLY notes_v ON notes (v);\n",
    "001-schema/005-prices.sql": "CREATE TABLE prices (id int PRIMARY KEY);\n",
    "002-functions/R-count.sql": "CREATE OR REPLACE FUNCTION n_users() RETURNS bigint"
    " LANGUAGE sql AS 'SELECT count(*) FROM users';\n",  # a repeatable block
}
PENDING = {"002-functions/001-total.sql": "SELECT 1/0;\n"}  # fails once, then fixed
FIXED = {"002-functions/001-total.sql": "CREATE TABLE totals (id int);\n"}

# What no layer can catch, and why. Keyed by "table.column" for a changed value,
# or by the mutation's kind.
DOCUMENTED = {
    f"{LEDGER}.id": "row identity, never part of the proof",
    f"{LEDGER}.execution_time_ms": "a measurement, outside the block hash",
    f"{LEDGER}.chainops_version": "informational, outside the block hash",
    f"{LEDGER}.statements_done": "progress of a file already in a block",
    f"{LEDGER}.statements_total": "progress of a file already in a block",
    f"{LEDGER}.progress_hash": "progress of a file already in a block",
    f"{LEDGER}.schema_snapshot": "only explains a drift the fingerprint finds",
    f"{LEDGER}.schema_hash": (
        "on a block whose run stopped before sealing one, the fingerprint sits "
        "beside the hash; only the head's is compared"
    ),
    f"{HISTORY}.id": "row identity, never part of the proof",
    f"{HISTORY}.execution_time_ms": "a measurement",
    f"{HISTORY}.chainops_version": "informational",
    f"{HISTORY}.error_message": "the text of a failure, outside the proof",
    "attempt": "a failed attempt is not a block; its row only says what failed",
    "failed history": "the history of failures is a record, outside the proof",
    "forge head with history": (
        "a block for a file that never ran, appended at the head with its history "
        "row, is indistinguishable from a real apply: the digest only proves what "
        "was there before; grants keep the app role from writing the ledger"
    ),
    "marker development to test": "both markers allow the same commands",
}


@dataclass(frozen=True)
class Mutation:
    name: str
    kind: str  # the key into DOCUMENTED when it cannot be caught
    statements: tuple[sql.Composable, ...]


@dataclass
class Base:
    """The template database and the project folder that built it."""

    server: Server
    name: str
    settings: Settings

    def target(self, dbname: str) -> Target:
        url = self.server.url_for(dbname)
        settings = replace(self.settings, database_url=url)
        return Target(settings, url, describe_database(url))


def _admin(server: Server) -> psycopg.Connection:
    return psycopg.connect(server.admin_url, autocommit=True)


@pytest.fixture(scope="module")
def base(pg_server: Server, tmp_path_factory) -> Iterator[Base]:
    """A ledger with every mode: 2 baselined, 1 transaction, 1 no-transaction,
    1 drift, 1 transaction and 1 repeatable block, a failed attempt, then the file
    fixed. The second run stops early (its newest block seals nothing); the head
    is sealed."""
    root: Path = tmp_path_factory.mktemp("mutations")
    (root / "pyproject.toml").write_text('[project]\nname = "m"\n')
    migrations = root / "migrations"
    for rel, text in {**FILES, **PENDING}.items():
        (migrations / rel).parent.mkdir(parents=True, exist_ok=True)
        (migrations / rel).write_text(text)
    name = f"chainops_m_{random.randrange(1 << 30)}"
    with _admin(pg_server) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    settings = Settings(root, migrations, environment="development", lock_timeout=5)
    base = Base(pg_server, name, settings)
    where = base.target(name)
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        for rel in list(FILES)[:2]:
            conn.execute(FILES[rel].encode())
    api.baseline(where, 1002)
    (migrations / "001-schema/005-prices.sql").rename(root / "held.sql")
    with pytest.raises(ChainopsError):
        api.apply(where)  # 003 and 004 applied, then the pending file fails
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN email text")  # drift
    (root / "held.sql").rename(migrations / "001-schema/005-prices.sql")
    failing = migrations / next(iter(PENDING))
    failing.rename(root / "held.sql")
    api.apply(where, allow_out_of_order=True)  # drift block, then 005 seals
    (root / "held.sql").rename(failing)
    with pytest.raises(ChainopsError):
        api.apply(where)  # fails again: an attempt, no block
    (migrations / "002-functions/001-total.sql").write_text(FIXED[next(iter(FIXED))])
    modes = [
        r[0]
        for r in _rows(where, f"SELECT mode FROM {LEDGER} WHERE height IS NOT NULL")
    ]
    assert sorted(modes) == sorted(
        ["baseline", "baseline", "transaction", "no-transaction", "drift",
         "transaction", "repeatable"]
    )  # fmt: skip
    sealed = _rows(where, f"SELECT sealed_schema IS NOT NULL FROM {LEDGER}"
                          " WHERE height IS NOT NULL ORDER BY height")  # fmt: skip
    assert [s for (s,) in sealed] == [False, True, False, False, True, False, True]
    assert api.verify(where).ok
    try:
        yield base
    finally:
        with _admin(pg_server) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )


def _rows(where: Target, query: str) -> list[tuple]:
    with psycopg.connect(where.conninfo, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def _columns(where: Target, table: str) -> list[tuple[str, str]]:
    return [
        (str(c), str(t))
        for c, t in _rows(
            where,
            "SELECT column_name, data_type FROM information_schema.columns"
            f" WHERE table_name = '{table}' ORDER BY ordinal_position",
        )
    ]


def _changed(value: object, data_type: str) -> sql.Composable:
    """Another value of the same type, as SQL."""
    if value is None:
        fresh = {"integer": "1", "bigint": "1", "smallint": "1",
                 "bytea": "'\\x00'::bytea"}  # fmt: skip
        return sql.SQL(fresh.get(data_type, "'x'"))
    if data_type in ("integer", "bigint", "smallint"):
        return sql.Literal(int(value) + 1)  # type: ignore[call-overload]
    if data_type.startswith("timestamp"):
        return sql.SQL("{} + interval '1 microsecond'").format(sql.Literal(value))
    if data_type == "bytea":
        return sql.Literal(bytes(value) + b"\x00")  # type: ignore[arg-type]
    text = str(value)
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        return sql.Literal(text[:-1] + ("0" if text[-1] != "0" else "1"))
    if text == "development":
        return sql.Literal("test")
    return sql.Literal(text + "x")


def mutations(where: Target) -> list[Mutation]:
    """Every mutation class of issue 14, generated from the base ledger's rows."""
    found: list[Mutation] = []
    for table, key in ((LEDGER, "id"), (HISTORY, "id"), (META, "key")):
        columns = _columns(where, table)
        names = ", ".join(c for c, _ in columns)
        for row in _rows(where, f"SELECT {names} FROM {table} ORDER BY {key}"):
            values = dict(zip([c for c, _ in columns], row, strict=True))
            at = sql.SQL("WHERE {} = {}").format(
                sql.Identifier(key), sql.Literal(values[key])
            )
            kind_of_row = _row_kind(table, values)
            for column, data_type in columns:
                found.append(
                    Mutation(
                        f"update {table}.{column} of {values[key]}",
                        kind_of_row or _value_kind(table, column, values),
                        (
                            sql.SQL("UPDATE {} SET {} = {} ").format(
                                sql.Identifier(table),
                                sql.Identifier(column),
                                _changed(values[column], data_type),
                            )
                            + at,
                        ),
                    )
                )
            found.append(
                Mutation(
                    f"delete {table} row {values[key]}",
                    kind_of_row or "delete",
                    (sql.SQL("DELETE FROM {} ").format(sql.Identifier(table)) + at,),
                )
            )
    entries = api.status(where).entries
    blocks = sorted((e.block for e in entries if e.block), key=lambda b: b.height)
    height = len(blocks)
    for position in range(1, height + 2):
        found.append(_forge(blocks, position, with_history=False))
    found.append(_forge(blocks, height + 1, with_history=True))
    found.append(_forge(blocks, len(blocks), with_history=True))  # below the head
    for h in range(1, height):
        found.append(
            Mutation(
                f"swap heights {h} and {h + 1}",
                "swap",
                (
                    sql.SQL(
                        "UPDATE {t} SET height = -1 WHERE height = {a};"
                        " UPDATE {t} SET height = {a} WHERE height = {b};"
                        " UPDATE {t} SET height = {b} WHERE height = -1"
                    ).format(
                        t=sql.Identifier(LEDGER), a=sql.Literal(h), b=sql.Literal(h + 1)
                    ),
                ),
            )
        )
    for table in (LEDGER, HISTORY, META):
        name = sql.Identifier(table)
        found += [
            Mutation(f"drop {table}", "drop", (sql.SQL("DROP TABLE {}").format(name),)),
            Mutation(
                f"rename {table}",
                "rename",
                (sql.SQL("ALTER TABLE {} RENAME TO moved").format(name),),
            ),
            Mutation(
                f"rule on {table}",
                "rule",
                (
                    sql.SQL(
                        "CREATE RULE hide AS ON INSERT TO {} DO INSTEAD NOTHING"
                    ).format(name),
                ),
            ),
            Mutation(
                f"trigger on {table}",
                "trigger",
                (
                    sql.SQL(
                        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS"
                        " $$BEGIN RETURN NEW; END$$;"
                        " CREATE TRIGGER t BEFORE INSERT ON {} FOR EACH ROW"
                        " EXECUTE FUNCTION f()"
                    ).format(name),
                ),
            ),
        ]
    head = blocks[-1]
    unsealed = replace(head, sealed_schema=None, schema_hash=None)
    found += [
        Mutation(
            "null the head's fingerprint",
            "null head fingerprint",
            (
                sql.SQL(
                    "UPDATE {t} SET schema_hash = NULL, sealed_schema = NULL"
                    " WHERE height = {h}"
                ).format(t=sql.Identifier(LEDGER), h=sql.Literal(head.height)),
            ),
        ),
        Mutation(
            "unseal the head and recompute its hash",
            "unseal head",
            (
                sql.SQL(
                    "UPDATE {t} SET schema_hash = NULL, sealed_schema = NULL,"
                    " block_hash = {b} WHERE height = {h}"
                ).format(
                    t=sql.Identifier(LEDGER),
                    b=sql.Literal(chain.recompute(unsealed)),
                    h=sql.Literal(head.height),
                ),
            ),
        ),
    ]
    return found


def _row_kind(table: str, values: dict[str, object]) -> str | None:
    if table == LEDGER and values.get("status") != "completed":
        return "attempt"
    if table == HISTORY and values.get("outcome") == "failed":
        return "failed history"
    return None


def _value_kind(table: str, column: str, values: dict[str, object]) -> str:
    if table == META and values.get("key") == "environment" and column == "value":
        return "marker development to test"
    return f"{table}.{column}"


def _forge(blocks: list, position: int, *, with_history: bool) -> Mutation:
    """A correctly hashed block for the pending file at `position`, the blocks above
    it moved up and re-linked, every hash recomputed: a consistent forger."""
    forged_file = next(iter(FIXED))
    chain_before = blocks[: position - 1]
    forged = chain.build_block(
        chain_before,
        number=2001,
        path=forged_file,
        content_hash=hashlib.sha256(FIXED[forged_file].encode()).hexdigest(),
        hash_algorithm=HASH_ALGORITHM,
        applied_at=blocks[-1].applied_at,
        applied_by=blocks[-1].applied_by,
        client_host=blocks[-1].client_host,
        mode=Mode.TRANSACTION,
    )
    relinked = [*chain_before, forged]
    for old in blocks[position - 1 :]:
        moved = replace(old, height=len(relinked) + 1, previous_hash="", block_hash="")
        moved = replace(moved, previous_hash=chain.head_hash(relinked))
        relinked.append(replace(moved, block_hash=chain.recompute(moved)))
    statements: list[sql.Composable] = [
        sql.SQL("UPDATE {} SET height = -height WHERE height >= {}").format(
            sql.Identifier(LEDGER), sql.Literal(position)
        )
    ]
    for block in relinked[position:]:
        statements.append(
            sql.SQL(
                "UPDATE {t} SET height = {h}, previous_hash = {p}, block_hash = {b}"
                " WHERE height = {old}"
            ).format(
                t=sql.Identifier(LEDGER),
                h=sql.Literal(block.height),
                p=sql.Literal(block.previous_hash),
                b=sql.Literal(block.block_hash),
                old=sql.Literal(-(block.height - 1)),
            )
        )
    statements.append(
        sql.SQL(
            "DELETE FROM {t} WHERE migration_number = 2001;"
            " INSERT INTO {t} (migration_number, filename, path, hash, hash_algorithm,"
            " executed_at, status, height, previous_hash, block_hash, mode,"
            " applied_by, client_host, chainops_version, block_format) VALUES ({n},"
            " {f}, {path}, {hash}, {alg}, {at}, 'completed', {h}, {p}, {b},"
            " 'transaction', {by}, {host}, 'x', 2)"
        ).format(
            t=sql.Identifier(LEDGER),
            n=sql.Literal(2001),
            f=sql.Literal(forged.filename),
            path=sql.Literal(forged.path),
            hash=sql.Literal(forged.content_hash),
            alg=sql.Literal(forged.hash_algorithm),
            at=sql.Literal(forged.applied_at),
            h=sql.Literal(forged.height),
            p=sql.Literal(forged.previous_hash),
            b=sql.Literal(forged.block_hash),
            by=sql.Literal(forged.applied_by),
            host=sql.Literal(forged.client_host),
        )
    )
    if with_history:
        statements.append(
            sql.SQL(
                "INSERT INTO {h} (migration_number, path, hash, started_at, outcome,"
                " applied_by, client_host, chainops_version) VALUES (2001, {path},"
                " {hash}, {at}, 'completed', {by}, {host}, 'x')"
            ).format(
                h=sql.Identifier(HISTORY),
                path=sql.Literal(forged.path),
                hash=sql.Literal(forged.content_hash),
                at=sql.Literal(forged.applied_at),
                by=sql.Literal(forged.applied_by),
                host=sql.Literal(forged.client_host),
            )
        )
    history = " with its history row" if with_history else ""
    kind = (
        "forge head with history"
        if with_history and position > len(blocks)
        else ("forge")
    )
    return Mutation(f"forge a block at height {position}{history}", kind,
                    tuple(statements))  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    outcome: str  # detected, digest, documented, impossible, MISSED
    detail: str = ""


def judge(base: Base, mutation: Mutation, n: int) -> Verdict:
    """Clone the base, take a digest, mutate, then verify and migrate."""
    clone = f"{base.name}_{n}"
    with _admin(base.server) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(clone), sql.Identifier(base.name)
            )
        )
    try:
        where = base.target(clone)
        digest_file = base.settings.project_root / f"digest-{n}.log"
        digest_file.write_text(api.digest_line(where) + "\n")
        try:
            with psycopg.connect(where.conninfo, autocommit=True) as conn:
                for statement in mutation.statements:
                    conn.execute(statement)
        except psycopg.Error as err:  # a constraint refuses it: nothing to catch
            return Verdict("impossible", str(err).splitlines()[0])
        try:
            report = api.verify(where)
        except ChainopsError as err:  # refused outright, with its own exit code
            return _refused_then_migrate(where, err.exit_code)
        if report.findings and all(f.kind == "schema" for f in report.findings):
            return _recorded_as_drift(where)
        if not report.ok:
            return _refused_then_migrate(where, 4)
        if not api.verify(where, digest_file).ok:
            return Verdict("digest")
        if mutation.kind in DOCUMENTED:
            return Verdict("documented", DOCUMENTED[mutation.kind])
        return Verdict("MISSED")
    finally:
        with _admin(base.server) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(clone)
                )
            )


def _recorded_as_drift(where: Target) -> Verdict:
    """Verify saw the schema differ from the head's fingerprint: outside production
    migrate records the difference as a drift block before applying."""
    api.apply(where)
    modes = _rows(where, f"SELECT mode FROM {LEDGER} ORDER BY height DESC LIMIT 2")
    if [m for (m,) in modes] != ["transaction", "drift"]:
        return Verdict("MISSED", f"drift not recorded: {modes}")
    return Verdict("detected", "as schema drift, then recorded as a drift block")


def _refused_then_migrate(where: Target, code: int) -> Verdict:
    """Verify said no: migrate must refuse too, and apply nothing."""
    before = _rows(where, "SELECT to_regclass('totals')")
    try:
        api.apply(where, allow_out_of_order=True)
    except ChainopsError:
        pass
    else:
        return Verdict("MISSED", "verify refused but migrate applied")
    if _rows(where, "SELECT to_regclass('totals')") != before:
        return Verdict("MISSED", "migrate applied the pending file")
    return Verdict("detected", f"exit {code}")


def test_m1_every_mutation_is_caught_or_documented(base, seed, capsys):
    everything = mutations(base.target(base.name))
    count = trials("m1", 30, len(everything))
    chosen = (
        everything
        if count >= len(everything)
        else random.Random(seed).sample(everything, count)
    )
    verdicts = {m.name: judge(base, m, n) for n, m in enumerate(chosen)}

    tally = Counter(v.outcome for v in verdicts.values())
    kinds = {m.name: m.kind for m in chosen}
    not_caught = Counter(
        kinds[n] for n, v in verdicts.items() if v.outcome == "documented"
    )
    with capsys.disabled():
        print(f"\nM1 mutations: {len(chosen)} of {len(everything)} (seed {seed}); "
              + ", ".join(f"{k} {v}" for k, v in sorted(tally.items())))  # fmt: skip
        for kind, n in sorted(not_caught.items()):
            print(f"  documented {n:3} {kind}: {DOCUMENTED[kind]}")
    missed = {n: v.detail for n, v in verdicts.items() if v.outcome == "MISSED"}
    assert not missed, f"mutations no layer caught (seed {seed}): {missed}"
