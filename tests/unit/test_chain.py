"""The chain from plain objects: canonical bytes, links, file checks, pending, order."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from chainops.chain import canonical_bytes, head_hash, recompute
from chainops.model import GENESIS, Block, MigrationFile
from chainops.plan import find_out_of_order, find_pending
from chainops.source.files import HASH_ALGORITHM
from chainops.verify import verify_files, verify_links

T0 = datetime(2025, 9, 21, 10, 0, tzinfo=timezone.utc)

TEXTS = {
    "001-schema/001-users.sql": "CREATE TABLE users (id int);\n",
    "001-schema/002-orders.sql": "CREATE TABLE orders (id int);\n",
    "001-schema/003-prices.sql": "CREATE TABLE prices (id int);\n",
    "002-functions/001-totals.sql": "CREATE FUNCTION totals() RETURNS int AS 'SELECT 1'"
    " LANGUAGE sql;\n",
}
PATHS = list(TEXTS)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def number_of(path: str) -> int:
    category, name = path.split("/")
    return int(category[:3]) * 1000 + int(name[:3])


def migration(path: str, text: str | None = None) -> MigrationFile:
    """A MigrationFile as discover() would build it."""
    category, name = path.split("/")
    text = TEXTS.get(path, "SELECT 1;\n") if text is None else text
    return MigrationFile(
        int(category[:3]), category, int(name[:3]), path, text.encode(), sha256(text)
    )


def link(blocks: list[Block]) -> list[Block]:
    """Re-link blocks in order: each previous_hash and block_hash recomputed."""
    linked: list[Block] = []
    for block in blocks:
        block = replace(block, previous_hash=head_hash(linked), block_hash="")
        linked.append(replace(block, block_hash=recompute(block)))
    return linked


def unlinked(path: str, height: int, **changes: object) -> Block:
    block = Block(
        height=height,
        number=number_of(path),
        path=path,
        content_hash=sha256(TEXTS.get(path, "SELECT 1;\n")),
        hash_algorithm=HASH_ALGORITHM,
        applied_at=T0 + timedelta(minutes=height),
        applied_by="alice",
        client_host="ci-runner-1",
        mode="transaction",
        previous_hash="",
        block_hash="",
        duration_ms=12,
    )
    return replace(block, **changes)


def build_chain(paths: list[str] = PATHS) -> list[Block]:
    return link([unlinked(p, h) for h, p in enumerate(paths, start=1)])


# --- canonical bytes -------------------------------------------------------------

# The block format as documented: one `key=value` line per field, LF-separated, no
# trailing newline, UTF-8, time in UTC with microseconds. Written out literally so
# that any change of the formula (which would orphan every existing ledger) fails.
# Format 1, which ledgers written before the fingerprint was sealed still hold:
EXPECTED_CANONICAL_V1 = (
    b"chainops-block-v1\n"
    b"height=1\n"
    b"previous=0000000000000000000000000000000000000000000000000000000000000000\n"
    b"number=1001\n"
    b"path=001-schema/001-users.sql\n"
    b"content=sha256-lf:"
    b"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
    b"applied_at=2025-09-21T10:00:00.123456Z\n"
    b"applied_by=alice\n"
    b"client_host=ci-runner-1\n"
    b"mode=transaction"
)
SEALED = "5" * 64
# Format 2, every block written now: the same lines, then the fingerprint it seals.
EXPECTED_CANONICAL = (
    EXPECTED_CANONICAL_V1.replace(b"-v1", b"-v2") + b"\nschema=" + SEALED.encode()
)

DOCUMENTED_BLOCK = Block(
    height=1,
    number=1001,
    path="001-schema/001-users.sql",
    content_hash="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    hash_algorithm="sha256-lf",
    # 12:00 at UTC+2 is 10:00 UTC: the canonical time is always UTC.
    applied_at=datetime(2025, 9, 21, 12, 0, 0, 123456, timezone(timedelta(hours=2))),
    applied_by="alice",
    client_host="ci-runner-1",
    mode="transaction",
    previous_hash=GENESIS,
    block_hash="",
    duration_ms=40,
    schema_hash=SEALED,
    sealed_schema=SEALED,
)


def fields(b: Block) -> dict[str, object]:
    return dict(
        height=b.height,
        previous_hash=b.previous_hash,
        number=b.number,
        path=b.path,
        content_hash=b.content_hash,
        hash_algorithm=b.hash_algorithm,
        applied_at=b.applied_at,
        applied_by=b.applied_by,
        client_host=b.client_host,
        mode=b.mode,
    )


def test_canonical_bytes_match_documented_text_when_given_one_block():
    b = DOCUMENTED_BLOCK
    data = canonical_bytes(**fields(b), sealed_schema=b.sealed_schema)

    assert data == EXPECTED_CANONICAL


def test_canonical_bytes_of_format_1_keep_their_ten_lines():
    data = canonical_bytes(**fields(DOCUMENTED_BLOCK), block_format=1)

    assert data == EXPECTED_CANONICAL_V1


def test_canonical_bytes_leave_the_schema_line_empty_when_nothing_is_sealed():
    data = canonical_bytes(**fields(DOCUMENTED_BLOCK))

    assert data.endswith(b"\nmode=transaction\nschema=")


def test_recompute_returns_sha256_of_canonical_bytes_when_given_one_block():
    assert recompute(DOCUMENTED_BLOCK) == hashlib.sha256(EXPECTED_CANONICAL).hexdigest()
    old = replace(DOCUMENTED_BLOCK, block_format=1, sealed_schema=None)
    assert recompute(old) == hashlib.sha256(EXPECTED_CANONICAL_V1).hexdigest()


def test_recompute_covers_the_sealed_fingerprint_but_not_the_stored_one():
    assert recompute(replace(DOCUMENTED_BLOCK, sealed_schema="6" * 64)) != recompute(
        DOCUMENTED_BLOCK
    )
    assert recompute(replace(DOCUMENTED_BLOCK, schema_hash=None)) == recompute(
        DOCUMENTED_BLOCK
    )


def test_recompute_ignores_duration_when_only_duration_differs():
    # duration_ms is measured after the block is hashed, so it is not covered.
    assert recompute(replace(DOCUMENTED_BLOCK, duration_ms=9999)) == recompute(
        DOCUMENTED_BLOCK
    )


# --- verify_links ----------------------------------------------------------------


def test_verify_links_returns_nothing_when_chain_is_intact():
    blocks = build_chain()

    assert verify_links(blocks) == []
    assert blocks[0].previous_hash == GENESIS
    assert [b.previous_hash for b in blocks[1:]] == [b.block_hash for b in blocks[:-1]]


def test_verify_links_returns_nothing_when_ledger_is_empty():
    assert verify_links([]) == []
    assert head_hash([]) == GENESIS


def _forge(blocks: list[Block]) -> list[Block]:
    forged = unlinked(
        "001-schema/004-backdoor.sql",
        len(blocks) + 1,
        previous_hash=blocks[-1].block_hash,
        block_hash="f" * 64,
    )
    return [*blocks, forged]


def _renumber(blocks: list[Block]) -> list[Block]:
    # A consistent, fully recomputed chain whose second block claims #1009.
    return link([replace(b, number=1009) if b.height == 2 else b for b in blocks])


def _repeat_number(blocks: list[Block]) -> list[Block]:
    return link([*blocks, unlinked(PATHS[1], len(blocks) + 1)])


TAMPERING: list[tuple[str, Callable[[list[Block]], list[Block]], str]] = [
    (
        "content-hash-changed",
        lambda bs: [*bs[:1], replace(bs[1], content_hash="0" * 64), *bs[2:]],
        PATHS[1],
    ),
    (
        "applied-at-changed",
        lambda bs: [*bs[:2], replace(bs[2], applied_at=T0), *bs[3:]],
        PATHS[2],
    ),
    (
        "applied-by-changed",
        lambda bs: [*bs[:2], replace(bs[2], applied_by="mallory"), *bs[3:]],
        PATHS[2],
    ),
    (
        "path-changed",
        lambda bs: [*bs[:1], replace(bs[1], path="001-schema/002-carts.sql"), *bs[2:]],
        "001-schema/002-carts.sql",
    ),
    (
        "mode-changed",
        lambda bs: [*bs[:3], replace(bs[3], mode="baseline")],
        PATHS[3],
    ),
    ("middle-row-deleted", lambda bs: [bs[0], *bs[2:]], PATHS[2]),
    ("first-row-deleted", lambda bs: bs[1:], PATHS[1]),
    ("forged-row-appended", _forge, "001-schema/004-backdoor.sql"),
    ("rows-swapped", lambda bs: [bs[0], bs[2], bs[1], bs[3]], PATHS[2]),
    ("number-does-not-match-path", _renumber, PATHS[1]),
    ("number-repeated", _repeat_number, PATHS[1]),
]


@pytest.mark.parametrize(
    ("tamper", "culprit"),
    [pytest.param(t, c, id=name) for name, t, c in TAMPERING],
)
def test_verify_links_reports_tampered_when_ledger_was_altered(tamper, culprit):
    blocks = tamper(build_chain())

    findings = verify_links(blocks)

    assert findings, "tampering went unnoticed"
    assert {f.kind for f in findings} == {"tampered"}
    assert culprit in {f.path for f in findings}
    for f in findings:
        assert f.message.startswith("the ledger: ")
        assert "\n" not in f.message


def test_verify_links_names_recomputed_and_stored_hash_when_row_was_altered():
    blocks = build_chain()
    blocks[1] = replace(blocks[1], content_hash="0" * 64)

    [finding] = verify_links(blocks)

    assert finding.path == PATHS[1]
    assert finding.current == blocks[1].block_hash
    assert finding.expected == recompute(blocks[1])
    assert blocks[1].block_hash[:12] in finding.message
    assert recompute(blocks[1])[:12] in finding.message


def test_verify_links_reports_number_mismatch_when_number_does_not_match_path():
    [finding] = verify_links(_renumber(build_chain()))

    assert finding.path == PATHS[1]
    assert "#1009" in finding.message
    assert "does not match its file name" in finding.message


# --- verify_files ----------------------------------------------------------------


def test_verify_files_returns_nothing_when_every_applied_file_is_unchanged():
    files = [migration(p) for p in PATHS]

    assert verify_files(build_chain(), files) == []


def test_verify_files_reports_changed_with_both_hashes_when_file_was_edited():
    blocks = build_chain()
    edited = migration(PATHS[1], TEXTS[PATHS[1]].replace("int", "bigint"))
    files = [migration(PATHS[0]), edited, *(migration(p) for p in PATHS[2:])]

    [finding] = verify_files(blocks, files)

    assert finding.kind == "changed"
    assert finding.path == PATHS[1]
    assert finding.expected == blocks[1].content_hash
    assert finding.current == edited.sha256
    assert finding.message.startswith(PATHS[1] + " ")


def test_verify_files_reports_missing_when_applied_file_was_deleted():
    files = [migration(p) for p in PATHS if p != PATHS[2]]

    [finding] = verify_files(build_chain(), files)

    assert finding.kind == "missing"
    assert finding.path == PATHS[2]
    assert finding.message.startswith(PATHS[2] + " ")


def test_verify_files_reports_renamed_when_file_has_other_name_but_same_content():
    renamed = migration("001-schema/002-purchase-orders.sql", TEXTS[PATHS[1]])
    files = [migration(PATHS[0]), renamed, *(migration(p) for p in PATHS[2:])]

    [finding] = verify_files(build_chain(), files)

    assert finding.kind == "renamed"
    assert finding.path == PATHS[1]
    assert "001-schema/002-purchase-orders.sql" in finding.message


def test_verify_files_reports_missing_when_renamed_file_was_also_edited():
    renamed = migration("001-schema/002-purchase-orders.sql", "SELECT 2;\n")
    files = [migration(PATHS[0]), renamed, *(migration(p) for p in PATHS[2:])]

    [finding] = verify_files(build_chain(), files)

    assert finding.kind == "missing"
    assert finding.path == PATHS[1]


# --- pending and out of order ----------------------------------------------------


def test_find_pending_returns_unapplied_files_in_order_when_some_are_applied():
    blocks = build_chain(PATHS[:2])
    files = [migration(p) for p in [*PATHS, "003-seed/001-admin.sql"]]

    pending = find_pending(blocks, files)

    assert [f.path for f in pending] == [*PATHS[2:], "003-seed/001-admin.sql"]


def test_find_pending_returns_nothing_when_everything_is_applied():
    assert find_pending(build_chain(), [migration(p) for p in PATHS]) == []


@pytest.mark.parametrize(
    ("applied", "pending", "expected"),
    [
        pytest.param(
            ["001-schema/001-users.sql", "001-schema/003-prices.sql"],
            ["001-schema/002-orders.sql"],
            [("001-schema/002-orders.sql", "001-schema/003-prices.sql")],
            id="gap-in-own-folder",
        ),
        pytest.param(
            ["001-schema/001-users.sql", "001-schema/002-orders.sql"],
            ["002-functions/001-totals.sql"],
            [],
            id="first-of-new-folder",
        ),
        pytest.param(
            ["002-functions/001-totals.sql", "002-functions/005-more.sql"],
            ["001-schema/001-users.sql"],
            [],
            id="other-folder-is-ahead",
        ),
        pytest.param(
            ["001-schema/001-users.sql", "001-schema/002-orders.sql"],
            ["001-schema/003-prices.sql"],
            [],
            id="next-in-folder",
        ),
        pytest.param(
            [],
            ["001-schema/001-users.sql", "001-schema/002-orders.sql"],
            [],
            id="nothing-applied",
        ),
    ],
)
def test_find_out_of_order_flags_only_files_below_applied_when_folder_is_ahead(
    applied, pending, expected
):
    blocks = build_chain(applied)
    files = [migration(p) for p in pending]

    found = find_out_of_order(blocks, files)

    assert [(f.path, applied_path) for f, applied_path in found] == expected
