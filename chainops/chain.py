"""Pure chain logic: the canonical bytes a block hash covers, and new blocks.

No I/O: every rule about how a block is hashed is testable from plain objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

from chainops.model import BLOCK_FORMAT, GENESIS, Block


def format_time(moment: datetime) -> str:
    """Canonical UTC timestamp with microseconds, as hashed and displayed."""
    if moment.tzinfo is not timezone.utc and (
        moment.tzinfo is None or moment.utcoffset()  # naive means local, as before
    ):
        moment = moment.astimezone(timezone.utc)
    # What isoformat(timespec="microseconds") writes, in half its time: verify
    # formats every block's time on every run.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031
        moment.year, moment.month, moment.day,
        moment.hour, moment.minute, moment.second, moment.microsecond,
    )  # fmt: skip


def canonical_bytes(
    *,
    height: int,
    previous_hash: str,
    number: int,
    path: str,
    content_hash: str,
    hash_algorithm: str,
    applied_at: datetime,
    applied_by: str,
    client_host: str,
    mode: str,
    block_format: int = BLOCK_FORMAT,
    sealed_schema: str | None = None,
) -> bytes:
    """The exact bytes a block hash covers; documented in the README.

    Format 2 adds the schema fingerprint the block seals (empty when it seals none);
    blocks of format 1 keep their ten lines.
    """
    # One f-string: verify rebuilds this for every block of the chain.
    text = (
        f"chainops-block-v{block_format}\n"
        f"height={height}\n"
        f"previous={previous_hash}\n"
        f"number={number}\n"
        f"path={path}\n"
        f"content={hash_algorithm}:{content_hash}\n"
        f"applied_at={format_time(applied_at)}\n"
        f"applied_by={applied_by}\n"
        f"client_host={client_host}\n"
        f"mode={mode}"
    )
    if block_format >= 2:
        text += f"\nschema={sealed_schema or ''}"
    return text.encode("utf-8")


def recompute(block: Block) -> str:
    """Recompute a block's hash from its fields."""
    return hashlib.sha256(
        canonical_bytes(
            height=block.height,
            previous_hash=block.previous_hash,
            number=block.number,
            path=block.path,
            content_hash=block.content_hash,
            hash_algorithm=block.hash_algorithm,
            applied_at=block.applied_at,
            applied_by=block.applied_by,
            client_host=block.client_host,
            mode=block.mode,
            block_format=block.block_format,
            sealed_schema=block.sealed_schema,
        )
    ).hexdigest()


def head_hash(blocks: Sequence[Block]) -> str:
    return blocks[-1].block_hash if blocks else GENESIS


def build_block(
    blocks: Sequence[Block],
    *,
    number: int,
    path: str,
    content_hash: str,
    hash_algorithm: str,
    applied_at: datetime,
    applied_by: str,
    client_host: str,
    mode: str,
    sealed_schema: str | None = None,
) -> Block:
    """The next block after `blocks`, its hash computed; `sealed_schema`, the
    fingerprint it seals, for a run's newest block."""
    block = Block(
        height=len(blocks) + 1,
        number=number,
        path=path,
        content_hash=content_hash,
        hash_algorithm=hash_algorithm,
        applied_at=applied_at,
        applied_by=applied_by,
        client_host=client_host,
        mode=str(mode),
        previous_hash=head_hash(blocks),
        block_hash="",
        schema_hash=sealed_schema,
        sealed_schema=sealed_schema,
    )
    return replace(block, block_hash=recompute(block))
