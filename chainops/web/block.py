"""A block's document (every field, its neighbours, attempts, SQL, drift and the
schema change its run made) and the schema at or between blocks. Never writes.
"""

from __future__ import annotations

import bisect
from typing import Any

from chainops import api
from chainops.chain import format_time
from chainops.errors import ConfigError
from chainops.model import Block, Target
from chainops.source.files import discover
from chainops.store import catalog, catalog_diff, explore, ledger
from chainops.store.connection import Conn
from chainops.web import applied
from chainops.web.chain import history_json

EMPTY = catalog.Snapshot({})


class NotFoundError(ConfigError):
    """A block or view the ledger does not hold (HTTP 404)."""


def _block_json(block: Block) -> dict[str, Any]:
    return {
        "height": block.height,
        "number": block.number,
        "path": block.path,
        "filename": block.stored_filename,
        "content_hash": block.content_hash,
        "hash_algorithm": block.hash_algorithm,
        "applied_at": format_time(block.applied_at),
        "applied_by": block.applied_by,
        "client_host": block.client_host,
        "mode": block.mode,
        "previous_hash": block.previous_hash,
        "block_hash": block.block_hash,
        "duration_ms": block.duration_ms,
        "schema_hash": block.schema_hash,
        "sealed_schema": block.sealed_schema,
        "block_format": block.block_format,
        "details": block.details,
    }


def _neighbour(block: Block | None) -> dict[str, Any] | None:
    if block is None:
        return None
    return {"height": block.height, "number": block.number, "path": block.path}


def _file(
    state: str, text: str | None, digest: str | None, note: str
) -> dict[str, Any]:
    return {"state": state, "sql": text, "current_hash": digest, "note": note,
            "applied_sql": None, "applied_commit": None, "diff": None}  # fmt: skip


def _file_json(where: Target, block: Block) -> dict[str, Any]:
    """The SQL from the file when its hash is the block's; else what can be said."""
    if block.is_drift:
        return _file(
            "none", None, None, "a drift block records schema changes, not a file"
        )
    files = {f.path: f for f in discover(where.settings.migrations_dir)}
    file = files.get(block.path)
    if file is None:
        note = f"{block.path} is no longer in the migrations folder"
        return _file("missing", None, None, note)
    if file.sha256 == block.content_hash:
        note = "the file on disk is the SQL that was applied"
        return _file("matches", file.text, file.sha256, note)
    doc = _file("edited", file.text, file.sha256, "")
    found = applied.find_applied(
        where.settings.migrations_dir, block.path, block.content_hash, file.text
    )
    recorded = (
        f"{block.path} was edited after it was applied: its hash is now "
        f"{file.sha256[:12]}, the block recorded {block.content_hash[:12]}"
    )
    if found is None:
        doc["note"] = (
            f"{recorded}; the ledger keeps hashes, not the applied text, and no git "
            "revision of the file has that hash, so this is the file on disk"
        )
    else:
        doc["note"] = f"{recorded}; git commit {found.commit[:12]} has the applied text"
        doc.update(applied_sql=found.text, applied_commit=found.commit)
        doc["diff"] = list(found.diff)
    return doc


def _snapshot_at(
    conn: Conn, schema: str, heights: tuple[int, ...], height: int
) -> tuple[int, catalog.Snapshot]:
    """The newest stored snapshot at or below `height` (0 and EMPTY for none)."""
    i = bisect.bisect_right(heights, height)
    if i == 0:
        return 0, EMPTY
    found = heights[i - 1]
    blob = explore.read_snapshots(conn, schema, [found]).get(found)
    return (found, catalog.decompress(blob)) if blob else (0, EMPTY)


def _run_change(conn: Conn, schema: str, height: int) -> dict[str, Any]:
    """What the run that appended block `height` changed in the schema."""
    heights = explore.read_snapshot_heights(conn, schema)
    i = bisect.bisect_left(heights, height)
    if i == len(heights):
        note = "no schema snapshot was stored for this block's run"
        return {"from": None, "to": None, "changes": None, "note": note}
    end = heights[i]
    start = heights[i - 1] if i else 0
    blobs = explore.read_snapshots(conn, schema, [h for h in (start, end) if h])
    old = catalog.decompress(blobs[start]) if start else EMPTY
    new = catalog.decompress(blobs[end])
    return {
        "from": start,
        "to": end,
        "changes": catalog_diff.diff(old, new),
        "note": f"the run that appended blocks {start + 1}-{end}",
    }


def read_block(where: Target, height: int) -> dict[str, Any]:
    """Everything about one block; NotFoundError when the chain has no such height."""
    schema = where.settings.ledger_schema
    with api.open_session(where, "explorer") as conn:
        snapshot = ledger.read_snapshot(conn, schema)
        blocks = {b.height: b for b in snapshot.blocks}
        block = blocks.get(height)
        if block is None:
            raise NotFoundError(
                f"block {height} is not in the ledger; the chain has "
                f"{snapshot.height} blocks"
            )
        history = explore.read_history(conn, schema)
        change = _run_change(conn, schema, height)
    return {
        "block": _block_json(block),
        "previous": _neighbour(blocks.get(height - 1)),
        "next": _neighbour(blocks.get(height + 1)),
        "attempts": [history_json(r) for r in history if r.number == block.number],
        "file": _file_json(where, block),
        "drift": block.details.splitlines() if block.is_drift and block.details else [],
        "schema_change": change,
    }


def read_schema(where: Target, at: int | None, since: int | None) -> dict[str, Any]:
    """The schema at block `at` (the head when None); with `since`, what changed
    between block `since` and block `at`."""
    schema = where.settings.ledger_schema
    with api.open_session(where, "explorer") as conn:
        top = ledger.read_snapshot(conn, schema).height
        at = top if at is None else at
        for value in (at, since):
            if value is not None and not 0 <= value <= top:
                raise NotFoundError(
                    f"block {value} is not in the ledger; pick 0 to {top}"
                )
        heights = explore.read_snapshot_heights(conn, schema)
        stored, snap = _snapshot_at(conn, schema, heights, at)
        doc: dict[str, Any] = {
            "at": at,
            "height": top,
            "snapshot_height": stored,
            "snapshot_heights": list(heights),
            "kinds": list(catalog.KINDS),  # containers before what they contain
            "objects": snap.objects,
            "since": since,
            "changes": None,
        }
        if since is not None:
            _, old = _snapshot_at(conn, schema, heights, since)
            doc["changes"] = catalog_diff.diff(old, snap)
    return doc
