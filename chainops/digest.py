"""A digest of the ledger kept outside the database, and the proof that the ledger
still holds it: its block at that height unchanged, and nothing taken away since.

Pure: the caller reads key files, the ledger and the digest log. A digest is one
line of JSON; signing it with an Ed25519 key makes an edited log evident too.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from chainops.errors import ConfigError, short
from chainops.model import Finding, FindingKind, LedgerSnapshot

FORMAT = "chainops-digest-v1"
_FIELDS = ("format", "database", "schema", "system_identifier", "environment",
           "height", "head", "lock_head", "time")  # fmt: skip


@dataclass(frozen=True)
class Identity:
    """Which ledger a digest speaks for."""

    database: str
    schema: str
    system_identifier: str | None  # the cluster's, when the role may read it


@dataclass(frozen=True)
class Digest:
    fields: dict[str, Any]
    signature: str | None
    where: str  # the file and line it was read from, for messages


@dataclass(frozen=True)
class Anchor:
    """What `verify --digest` holds the ledger to: digests kept outside it."""

    digests: tuple[Digest, ...]
    identity: Identity
    public_key: bytes | None  # PEM; the public half of a private key works too


def make(
    snapshot: LedgerSnapshot,
    identity: Identity,
    lock_head: str | None,
    now: datetime,
    private_key: bytes | None = None,
) -> str:
    """The digest line for this ledger now, signed when a key is given."""
    fields = {
        "format": FORMAT,
        "database": identity.database,
        "schema": identity.schema,
        "system_identifier": identity.system_identifier,
        "environment": snapshot.environment,
        "height": snapshot.height,
        "head": snapshot.head,
        "lock_head": lock_head,
        "time": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
    }
    if private_key is not None:
        fields["signature"] = _sign(_canonical(fields), private_key)
    return json.dumps(fields, separators=(",", ":"))


def parse_log(text: str, name: str) -> list[Digest]:
    """Every digest in a file: one JSON document, or a log of one per line."""
    found: list[Digest] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            doc = json.loads(line)
        except ValueError as err:
            raise ConfigError(
                f"{where} is not a chainops digest ({err}); pass the file that "
                "chainops digest wrote"
            ) from err
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ConfigError(
                f"{where} is not a {FORMAT} digest; pass the file that chainops "
                "digest wrote"
            )
        signature = doc.pop("signature", None)
        found.append(
            Digest(doc, signature if isinstance(signature, str) else None, where)
        )
    if not found:
        raise ConfigError(f"{name} holds no digest; write one with chainops digest")
    return found


def check(anchor: Anchor, snapshot: LedgerSnapshot) -> list[Finding]:
    """Findings for every digest the ledger no longer agrees with."""
    findings: list[Finding] = []
    for digest in anchor.digests:
        _check_identity(digest, anchor.identity)
        findings += _check_signature(digest, anchor.public_key)
        if digest.fields.get("environment") == "production" and (
            snapshot.environment != "production"
        ):
            findings.append(
                _tampered(
                    f"the ledger's environment marker says {snapshot.environment} "
                    f"but {digest.where} recorded production; production is never "
                    "downgraded by chainops, so the marker was rewritten"
                )
            )
        height, head = digest.fields.get("height"), digest.fields.get("head")
        if not isinstance(height, int) or not isinstance(head, str):
            findings.append(_tampered(f"{digest.where} has no height and head"))
        elif height > snapshot.height:
            findings.append(
                _tampered(
                    f"the ledger holds {snapshot.height} blocks but {digest.where} "
                    f"recorded {height} (head {short(head)}) at {digest.fields['time']}"
                    "; its newest blocks were deleted since, restore the ledger from "
                    "a backup"
                )
            )
        elif height and snapshot.blocks[height - 1].block_hash != head:
            findings.append(
                _tampered(
                    f"the ledger's block {height} is "
                    f"{short(snapshot.blocks[height - 1].block_hash)} but "
                    f"{digest.where} recorded {short(head)} at "
                    f"{digest.fields['time']}; the chain up to it was rewritten "
                    "since, restore the ledger from a backup"
                )
            )
    return findings


def _check_identity(digest: Digest, identity: Identity) -> None:
    said = (digest.fields.get("database"), digest.fields.get("schema"))
    system = digest.fields.get("system_identifier")
    same_system = None in (system, identity.system_identifier) or (
        system == identity.system_identifier
    )
    if said != (identity.database, identity.schema) or not same_system:
        raise ConfigError(
            f"{digest.where} is a digest of the ledger in {said[1]} of database "
            f"{said[0]}, not of this one ({identity.schema} of {identity.database}); "
            "pass that database's digests"
        )


def _check_signature(digest: Digest, public_key: bytes | None) -> list[Finding]:
    if public_key is None:
        if digest.signature is not None:
            raise ConfigError(
                f"{digest.where} is signed but no key to check it is configured; set "
                "CHAINOPS_DIGEST_PUBLIC_KEY (or CHAINOPS_DIGEST_KEY) to its key file"
            )
        return []
    if digest.signature is None:
        return [_tampered(f"{digest.where} is not signed, though a key is configured")]
    from cryptography.exceptions import InvalidSignature

    try:
        _public(public_key).verify(
            base64.b64decode(digest.signature), _canonical(digest.fields)
        )
    except (InvalidSignature, ValueError):
        return [
            _tampered(
                f"{digest.where}: its signature does not verify; the digest log was "
                "edited, keep it where the database's writers cannot reach"
            )
        ]
    return []


def _canonical(fields: dict[str, Any]) -> bytes:
    """The bytes a signature covers: the digest's fields, sorted, compact."""
    known = {k: fields.get(k) for k in _FIELDS}
    return json.dumps(known, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _sign(payload: bytes, private_key: bytes) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(private_key, password=None)
    except ValueError as err:
        raise ConfigError(
            f"the digest key file cannot be read ({err}); give a PEM Ed25519 "
            "private key without a passphrase"
        ) from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(
            "the digest key is not an Ed25519 private key; make one with "
            "openssl genpkey -algorithm ed25519"
        )
    return base64.b64encode(key.sign(payload)).decode("ascii")


def _public(key_file: bytes) -> Any:
    """The Ed25519 public key in a PEM file, or the public half of a private one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_pem_public_key,
    )

    try:
        key: Any = (
            load_pem_private_key(key_file, password=None)
            if b"PRIVATE KEY" in key_file
            else load_pem_public_key(key_file)
        )
    except ValueError as err:
        raise ConfigError(
            f"the digest key file cannot be read ({err}); give a PEM Ed25519 key"
        ) from err
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("the digest key is not an Ed25519 key; use an Ed25519 key")
    return key


def _tampered(message: str) -> Finding:
    return Finding(FindingKind.TAMPERED, "", message)
