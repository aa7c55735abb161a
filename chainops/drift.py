"""Schema drift: compare the live schema with the fingerprint stored on the head block.

The fingerprint is recorded after every run that adds blocks, on the newest block;
it is kept beside the block, outside the block hash (the chain lock anchors files).
"""

from __future__ import annotations

from dataclasses import dataclass

from chainops import ledger, schema
from chainops.chain import Block, Finding
from chainops.config import Settings
from chainops.schema_diff import diff


@dataclass(frozen=True)
class Drift:
    """What changed in the live schema since the head block's fingerprint."""

    block: Block  # the newest block that carries a fingerprint
    expected: str
    actual: str
    changes: tuple[str, ...]
    snapshot: schema.Snapshot  # the live schema, to record with a drift block

    def message(self) -> str:
        head = self.changes[0] if self.changes else "the fingerprint differs"
        more = len(self.changes) - 1
        extra = (
            f" (and {more} more change{'s' if more > 1 else ''})" if more > 0 else ""
        )
        return (
            f"the database schema drifted since block {self.block.height} "
            f"({self.block.path}): {head}{extra}"
        )

    def findings(self) -> list[Finding]:
        return [
            Finding("schema", "", line, expected=self.expected, current=self.actual)
            for line in (self.changes or ("the fingerprint differs",))
        ]


def read_live(conn: ledger.Conn, settings: Settings) -> schema.Snapshot:
    return schema.read_snapshot(conn, settings.ledger_schema, ledger.TABLES)


def detect(
    conn: ledger.Conn, settings: Settings, blocks: tuple[Block, ...]
) -> Drift | None:
    """Drift since the head block's fingerprint; None when none or none was recorded."""
    head = blocks[-1] if blocks else None
    if head is None or head.schema_hash is None:
        return None
    live = read_live(conn, settings)
    actual = schema.fingerprint(live)
    if actual == head.schema_hash:
        return None
    stored = ledger.read_schema_snapshot(conn, settings.ledger_schema, head.height)
    changes = diff(schema.decompress(stored), live) if stored else []
    return Drift(head, head.schema_hash, actual, tuple(changes), live)


def record(conn: ledger.Conn, settings: Settings, height: int) -> str:
    """Fingerprint the live schema onto the block at `height`; return the hash."""
    live = read_live(conn, settings)
    digest = schema.fingerprint(live)
    ledger.record_schema(
        conn, settings.ledger_schema, height, digest, schema.compress(live)
    )
    return digest
