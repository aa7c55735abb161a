"""The chain lock from plain objects: render, parse, head, and comparisons."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from chainops.chain import recompute
from chainops.errors import DriftError, MigrationFileError
from chainops.model import GENESIS, Block, MigrationFile
from chainops.results import LockChanges
from chainops.source import lockfile
from chainops.source.files import HASH_ALGORITHM
from chainops.verify import verify_lock, verify_lock_ledger

T0 = datetime(2025, 9, 21, 10, 0, tzinfo=timezone.utc)
TEXTS = {
    "001-schema/001-users.sql": "CREATE TABLE users (id int);\n",
    "001-schema/002-orders.sql": "CREATE TABLE orders (id int);\n",
    "002-functions/001-totals.sql": "SELECT 1;\n",
}
PATHS = list(TEXTS)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def migration(path: str, text: str | None = None) -> MigrationFile:
    category, name = path.split("/")
    text = TEXTS.get(path, "SELECT 2;\n") if text is None else text
    return MigrationFile(
        int(category[:3]), category, int(name[:3]), path, text.encode(), sha256(text)
    )


def files(*extra: MigrationFile) -> list[MigrationFile]:
    return [migration(p) for p in TEXTS] + list(extra)


def blocks_for(migrations: list[MigrationFile]) -> list[Block]:
    """A valid chain applying the files in order."""
    chain: list[Block] = []
    for height, f in enumerate(migrations, start=1):
        block = Block(
            height=height,
            number=f.number,
            path=f.path,
            content_hash=f.sha256,
            hash_algorithm=HASH_ALGORITHM,
            applied_at=T0,
            applied_by="postgres",
            client_host="ci",
            mode="transaction",
            previous_hash=chain[-1].block_hash if chain else GENESIS,
            block_hash="",
        )
        chain.append(replace(block, block_hash=recompute(block)))
    return chain


# --- render and parse ------------------------------------------------------------


def test_render_round_trips_through_parse_when_files_locked():
    lock = lockfile.build(files())
    text = lockfile.render(lock)
    assert lockfile.parse(text) == lock
    lines = text.splitlines()
    assert lines[0] == "# chainops chain.lock v1"
    assert lines[-2] == (
        f"002-functions/001-totals.sql sha256-lf:{sha256(TEXTS[PATHS[2]])}"
    )
    assert lines[-1] == f"head {lock.head} 3"


def test_head_is_sha256_of_tag_and_entry_lines_as_documented():
    lock = lockfile.build(files())
    lines = ["chainops-lock-v1"] + [
        f"{p} sha256-lf:{sha256(t)}" for p, t in TEXTS.items()
    ]
    assert lock.head == sha256("\n".join(lines))


def test_build_orders_by_category_then_file_number_when_given_any_order():
    extra = migration("001-schema/010-late.sql")
    lock = lockfile.build(reversed(files(extra)))
    assert [e.path for e in lock.entries] == [
        "001-schema/001-users.sql",
        "001-schema/002-orders.sql",
        "001-schema/010-late.sql",
        "002-functions/001-totals.sql",
    ]


@pytest.mark.parametrize("change", ["added", "removed", "renamed", "edited"])
def test_head_changes_when_any_file_changes(change):
    before = files()
    after = list(before)
    if change == "added":
        after.append(migration("001-schema/003-more.sql"))
    elif change == "removed":
        after.pop(1)
    elif change == "renamed":
        after[1] = replace(after[1], path="001-schema/002-renamed.sql")
    else:
        after[1] = migration(after[1].path, "CREATE TABLE orders (id bigint);\n")
    assert lockfile.build(after).head != lockfile.build(before).head


def test_parse_reads_crlf_checkout_when_git_converted_line_endings():
    lock = lockfile.build(files())
    assert lockfile.parse(lockfile.render(lock).replace("\n", "\r\n")) == lock


def test_with_file_adds_only_that_entry_when_lock_is_stale():
    stale = lockfile.build(files())
    edited = [migration(PATHS[0], "CREATE TABLE users ();\n"), *files()[1:]]
    new = migration("001-schema/003-new.sql")
    lock = lockfile.with_file(stale, new)
    assert lock.hashes()[PATHS[0]] == sha256(TEXTS[PATHS[0]])  # stale entry kept
    assert lock.hashes()[new.path] == new.sha256
    assert [f.kind for f in verify_lock(lock, [*edited, new])] == ["lock"]


def _lock_text(*entry_lines: str, head: str | None = None) -> str:
    lock = lockfile.build(files())
    body = [lockfile.HEADER, *(e.line for e in lock.entries), *entry_lines]
    return "\n".join([*body, head or f"head {lock.head} 3"]) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "chain.lock:1: does not start with", id="empty"),
        pytest.param(
            "# chainops chain.lock v2\nhead x 0\n",
            "chain.lock:1: has format v2; upgrade chainops",
            id="newer-format",
        ),
        pytest.param(
            _lock_text("<<<<<<< HEAD"),
            "chain.lock:5: has git merge conflict markers; renumber one branch's new "
            "migration if both took the same number, then run inv migrate.lock",
            id="conflict-markers",
        ),
        pytest.param(
            _lock_text(head="head " + "0" * 64 + " 3"),
            "chain.lock: the head line does not match the 3 entries above it",
            id="head-mismatch",
        ),
        pytest.param(
            _lock_text(head="head abc"),
            "chain.lock: the head line does not match",
            id="malformed-head",
        ),
        pytest.param(
            lockfile.HEADER + "\n" + f"{PATHS[0]} sha256-lf:{'a' * 64}\n",
            "chain.lock has no head line",
            id="no-head",
        ),
        pytest.param(
            _lock_text() + f"{PATHS[0]} sha256-lf:{'a' * 64}\n",
            "chain.lock:6: follows the head line",
            id="entry-after-head",
        ),
        pytest.param(
            _lock_text(f"001-schema/009-x.sql md5:{'a' * 32}"),
            "chain.lock:5: uses hash algorithm md5",
            id="unknown-algorithm",
        ),
        pytest.param(
            _lock_text(f"schema.sql sha256-lf:{'a' * 64}"),
            "chain.lock:5: is not a migration path and its hash",
            id="not-a-migration",
        ),
        pytest.param(
            _lock_text("001-schema/009-x.sql sha256-lf:xyz"),
            "chain.lock:5: is not a migration path and its hash",
            id="bad-hash",
        ),
        pytest.param(
            _lock_text(f"{PATHS[0]} sha256-lf:{'a' * 64}"),
            f"chain.lock:5: lists {PATHS[0]} twice",
            id="duplicate",
        ),
        pytest.param(
            _lock_text(f"001-schema/009-x.sql {'a' * 64}"),
            "chain.lock:5: is not 'path sha256-lf:hash'",
            id="no-algorithm",
        ),
        pytest.param(
            _lock_text("just-one-word"),
            "chain.lock:5: is not 'path sha256-lf:hash'",
            id="one-word",
        ),
    ],
)
def test_parse_refuses_with_one_line_when_lock_is_damaged(text, expected):
    with pytest.raises(MigrationFileError) as caught:
        lockfile.parse(text)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert "; " in message


def test_render_puts_head_right_after_last_entry_so_git_sees_one_hunk():
    text = lockfile.render(lockfile.build(files()))
    last_two = text.splitlines()[-2:]
    assert last_two[0].startswith("002-functions/001-totals.sql ")
    assert last_two[1].startswith("head ")
    assert text.endswith("\n")


# --- files against the lock ------------------------------------------------------


def test_verify_files_is_clean_when_files_match_lock():
    assert verify_lock(lockfile.build(files()), files()) == []


def test_verify_files_reports_each_difference_when_files_drift():
    lock = lockfile.build(files())
    current = files()
    current[0] = migration(PATHS[0], "CREATE TABLE users (id bigint);\n")
    del current[2]
    current.append(migration("003-seed-data/001-seed.sql"))
    found = verify_lock(lock, current)
    assert [(f.kind, f.path) for f in found] == [
        ("lock", PATHS[0]),
        ("unlocked", "003-seed-data/001-seed.sql"),
        ("lock", PATHS[2]),
    ]
    edited = found[0]
    assert edited.expected == sha256(TEXTS[PATHS[0]])
    assert edited.current == current[0].sha256
    assert f"locked {edited.expected[:12]}, now {edited.current[:12]}" in (
        edited.message
    )
    assert "restore it from git" in edited.message
    assert found[1].message == (
        "003-seed-data/001-seed.sql is not in chain.lock; "
        "run inv migrate.lock to add it"
    )
    assert found[2].message.startswith(f"chain.lock lists {PATHS[2]} but the file")


# --- the ledger against the lock -------------------------------------------------


def _rewritten(blocks: list[Block]) -> list[Block]:
    """The ledger an attacker writes: new content hashes, every hash recomputed."""
    chain: list[Block] = []
    for block in blocks:
        new = replace(
            block,
            content_hash=sha256(f"DROP TABLE users; -- {block.path}\n"),
            previous_hash=chain[-1].block_hash if chain else GENESIS,
            block_hash="",
        )
        chain.append(replace(new, block_hash=recompute(new)))
    return chain


@pytest.mark.parametrize("strict", [False, True])
def test_verify_ledger_reports_tampered_when_rewritten_chain_differs_from_lock(
    strict,
):
    current = files()
    lock = lockfile.build(current)
    forged = _rewritten(blocks_for(current))
    found = verify_lock_ledger(lock, forged, current, strict)
    assert [(f.kind, f.path) for f in found] == [("tampered", p) for p in PATHS]
    assert found[0].message.startswith(
        "the ledger: block 1 (001-schema/001-users.sql) records content "
    )
    assert "the ledger was rewritten" in found[0].message


def test_verify_ledger_is_clean_when_blocks_match_lock():
    current = files()
    lock = lockfile.build(current)
    assert verify_lock_ledger(lock, blocks_for(current), current, True) == []


def test_verify_ledger_accepts_unlocked_block_in_development_only():
    current = files(migration("001-schema/003-new.sql"))
    lock = lockfile.build(current[:3])
    blocks = blocks_for(current)
    assert verify_lock_ledger(lock, blocks, current, strict=False) == []
    found = verify_lock_ledger(lock, blocks, current, strict=True)
    assert [(f.kind, f.path) for f in found] == [("unlocked", "001-schema/003-new.sql")]


def test_verify_ledger_accepts_block_newer_than_lock_in_development_only():
    """create locks the template; the watcher applies the file once it has SQL."""
    template = migration("001-schema/003-new.sql", "-- Your SQL here\n")
    written = migration(template.path, "CREATE TABLE new ();\n")
    lock = lockfile.build([*files(), template])
    current = files(written)
    blocks = blocks_for(current)
    assert verify_lock_ledger(lock, blocks, current, strict=False) == []
    found = verify_lock_ledger(lock, blocks, current, strict=True)
    assert [(f.kind, f.path) for f in found] == [("lock", written.path)]
    assert "never locked was applied" in found[0].message


def test_mismatch_names_first_problem_and_count_as_drift():
    current = files(
        migration("001-schema/003-a.sql"), migration("001-schema/004-b.sql")
    )
    found = verify_lock(lockfile.build(files()), current)
    err = lockfile.mismatch(found)
    assert isinstance(err, DriftError)
    assert err.exit_code == 4
    assert str(err) == (
        "001-schema/003-a.sql is not in chain.lock (and 1 more problem); production "
        "applies only files that match the committed chain.lock (run inv "
        "migrate.lock and commit), so nothing was applied"
    )
    assert err.findings == tuple(found)


def test_compare_lists_added_removed_and_changed_paths():
    old = lockfile.build(files())
    current = files(migration("001-schema/003-a.sql"))
    current[0] = migration(PATHS[0], "CREATE TABLE users ();\n")
    del current[1]
    changes = lockfile.compare(old, lockfile.build(current))
    assert changes == LockChanges(
        added=("001-schema/003-a.sql",), removed=(PATHS[1],), changed=(PATHS[0],)
    )
