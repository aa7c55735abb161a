"""Schema drift: compare the live schema with the fingerprint stored on the head block.

The fingerprint is recorded after every run that adds blocks, on the newest block;
it is kept beside the block, outside the block hash (the chain lock anchors files).
"""

from __future__ import annotations

from chainops.model import Block, Drift
from chainops.store import catalog, ledger
from chainops.store.catalog_diff import diff
from chainops.store.connection import Conn


def read_live(conn: Conn, ledger_schema: str, scope: str | None) -> catalog.Snapshot:
    """The live schema: every schema, or only `scope` (a tenant's)."""
    return catalog.read_snapshot(conn, ledger_schema, ledger.TABLES, scope)


def detect(
    conn: Conn, ledger_schema: str, blocks: tuple[Block, ...], scope: str | None
) -> Drift | None:
    """Drift since the head block's fingerprint; None when none or none was recorded."""
    head = blocks[-1] if blocks else None
    if head is None or head.schema_hash is None:
        return None
    live = read_live(conn, ledger_schema, scope)
    actual = catalog.fingerprint(live)
    if actual == head.schema_hash:
        return None
    stored = ledger.read_schema_snapshot(conn, ledger_schema, head.height)
    changes = diff(catalog.decompress(stored), live) if stored else []
    return Drift(head, head.schema_hash, actual, tuple(changes))


def record(conn: Conn, ledger_schema: str, height: int, scope: str | None) -> str:
    """Fingerprint the live schema onto the block at `height`; return the hash."""
    live = read_live(conn, ledger_schema, scope)
    digest = catalog.fingerprint(live)
    ledger.record_schema(conn, ledger_schema, height, digest, catalog.compress(live))
    return digest
