"""Digests from plain objects: made, signed, read back, and held against a ledger."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from chainops import digest
from chainops.errors import ConfigError
from tests.fixtures.ledger import blocks_for, migration, snapshot

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
ME = digest.Identity("app", "public", "7412")
FILES = [migration(f"001-schema/00{i}-t{i}.sql", f"SELECT {i};\n") for i in (1, 2, 3)]
LEDGER = snapshot(blocks_for(FILES))


def keys() -> tuple[bytes, bytes]:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    public = key.public_key().public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def anchor(lines: list[str], public: bytes | None = None) -> digest.Anchor:
    parsed = digest.parse_log("\n".join(lines), "digests.log")
    return digest.Anchor(tuple(parsed), ME, public)


def test_digest_records_identity_height_head_and_lock():
    doc = json.loads(digest.make(LEDGER, ME, "c" * 64, NOW))

    assert doc == {
        "format": "chainops-digest-v1",
        "database": "app",
        "schema": "public",
        "system_identifier": "7412",
        "environment": "development",
        "height": 3,
        "head": LEDGER.head,
        "lock_head": "c" * 64,
        "time": "2026-12-01T12:00:00+00:00",
    }


def test_ledger_that_only_grew_since_holds_every_digest_in_the_log():
    early = snapshot(blocks_for(FILES[:1]))
    log = [digest.make(early, ME, None, NOW), digest.make(LEDGER, ME, None, NOW)]

    assert digest.check(anchor(log), LEDGER) == []


def test_newest_blocks_deleted_from_ledger_and_history_are_caught():
    log = [digest.make(LEDGER, ME, None, NOW)]
    shorter = snapshot(blocks_for(FILES[:1]))  # history deleted too: chain-consistent

    (found,) = digest.check(anchor(log), shorter)

    assert "holds 1 blocks but digests.log:1 recorded 3" in found.message


def test_consistently_rewritten_chain_is_caught_at_the_recorded_height():
    log = [digest.make(LEDGER, ME, None, NOW)]
    other = [replace(f, data=b"SELECT 9;\n", sha256="9" * 64) for f in FILES]

    (found,) = digest.check(anchor(log), snapshot(blocks_for(other)))

    assert "block 3 is" in found.message
    assert "was rewritten" in found.message


def test_signed_digest_verifies_with_the_public_key_and_edits_are_caught():
    private, public = keys()
    line = digest.make(LEDGER, ME, None, NOW, private)

    assert digest.check(anchor([line], public), LEDGER) == []
    assert digest.check(anchor([line], private), LEDGER) == []  # its public half
    edited = line.replace('"time":"2026', '"time":"2025')
    (found,) = digest.check(anchor([edited], public), LEDGER)
    assert "signature does not verify" in found.message


def test_unsigned_digest_is_a_finding_when_a_key_is_configured():
    _, public = keys()
    line = digest.make(LEDGER, ME, None, NOW)

    (found,) = digest.check(anchor([line], public), LEDGER)

    assert "is not signed" in found.message


def test_signed_digest_without_a_key_asks_for_one():
    private, _ = keys()

    with pytest.raises(ConfigError, match="CHAINOPS_DIGEST_PUBLIC_KEY"):
        digest.check(anchor([digest.make(LEDGER, ME, None, NOW, private)]), LEDGER)


def test_digest_of_another_database_is_refused_naming_both():
    line = digest.make(LEDGER, digest.Identity("other", "public", "7412"), None, NOW)

    with pytest.raises(ConfigError, match="of database other, not of this one"):
        digest.check(anchor([line]), LEDGER)


@pytest.mark.parametrize("text", ["", "not json", '{"format": "something else"}'])
def test_a_file_that_is_not_a_digest_log_is_refused(text):
    with pytest.raises(ConfigError, match=r"digests\.log"):
        digest.parse_log(text, "digests.log")


def test_production_marker_rewritten_since_the_digest_is_caught():
    production = replace(LEDGER, meta=(("environment", "production"),))
    line = digest.make(production, ME, None, NOW)

    (found,) = digest.check(anchor([line]), LEDGER)

    assert "recorded production" in found.message
