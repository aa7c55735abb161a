"""Block composition shared by every ledger append, and the appends that run no
file: a baseline adopting a file, a drift block recording a hand-made change.

`store.session` builds on it to run files; neither prints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timezone

from chainops import __version__, chain, reverts
from chainops.model import Block, MigrationFile, Mode, Outcome, Status
from chainops.source.files import HASH_ALGORITHM
from chainops.store import ledger
from chainops.store.connection import Conn
from chainops.store.writer import Row, Writer


class Recorder:
    """Writes blocks on one connection on behalf of one user and host."""

    def __init__(
        self,
        conn: Conn,
        schema: str,
        user: str,
        host: str,
        mark: str | None,
        scope: str | None,
    ) -> None:
        """`mark`: the environment to record with the run's first block, if the
        ledger's marker says otherwise; `scope`: the one schema fingerprinted."""
        self.conn, self.schema, self.user, self.host = conn, schema, user, host
        self.scope = scope
        self._mark = (
            ledger.mark_environment(schema, mark).as_bytes(conn) if mark else b""
        )
        self._writer = Writer(conn, schema)
        # The height the next block takes: a repeatable file's block and attempts
        # are numbered -height, as drift blocks are (numbers are unique).
        self.next_height = 1

    def record_baseline(
        self, file: MigrationFile, blocks: Sequence[Block], seal: bool
    ) -> Block:
        """Write a block for a file whose effect is already in the database; the
        last of a baseline seals the schema's fingerprint."""
        started = datetime.now(timezone.utc)
        sealed, snapshot = self.fingerprint() if seal else (None, None)
        block = self._block(file, blocks, started, Mode.BASELINE, sealed)
        row = self._row(file, started, Mode.BASELINE, 0)
        self._send_block(
            self._writer.write(
                row,
                status=Status.COMPLETED,
                block=block,
                outcome=Outcome.BASELINED,
                schema_snapshot=snapshot,
            )
        )
        return block

    def record_drift(self, blocks: Sequence[Block], changes: Sequence[str]) -> Block:
        """Append a block that makes accepted schema drift part of the audit trail,
        sealing the drifted schema's fingerprint as the new reference."""
        started = datetime.now(timezone.utc)
        height = len(blocks) + 1
        details = "\n".join(changes)
        sealed, snapshot = self.fingerprint()
        block = chain.build_block(
            blocks,
            number=-height,  # never a file's number
            path=f"(schema drift accepted at block {height})",
            content_hash=hashlib.sha256(details.encode("utf-8")).hexdigest(),
            hash_algorithm=HASH_ALGORITHM,
            applied_at=started,
            applied_by=self.user,
            client_host=self.host,
            mode=Mode.DRIFT,
            sealed_schema=sealed,
        )
        row = self._row_of(
            block.number, block.path, block.content_hash, started, Mode.DRIFT, 0
        )
        self._send_block(
            self._writer.write(
                row,
                status=Status.COMPLETED,
                block=block,
                outcome=Outcome.DRIFT_ACCEPTED,
                details=details,
                schema_snapshot=snapshot,
            )
        )
        return block

    def fingerprint(self) -> tuple[str, bytes]:
        """The live schema's fingerprint and compressed snapshot, for a block."""
        from chainops.store import catalog  # only when sealing: not on the no-op path

        live = catalog.read_snapshot(self.conn, self.schema, ledger.TABLES, self.scope)
        return catalog.fingerprint(live), catalog.compress(live)

    def _row(
        self, file: MigrationFile, started: datetime, mode: str, ms: int | None
    ) -> Row:
        if file.is_repeatable or reverts.is_down(file):
            number, mode = -self.next_height, _mode_of(file, mode)
        else:
            number = file.number
        return self._row_of(number, file.path, file.sha256, started, mode, ms)

    def _row_of(
        self, n: int, path: str, h: str, at: datetime, mode: str, ms: int | None
    ) -> Row:
        return Row(n, path, h, HASH_ALGORITHM, at, ms, mode, self.user, self.host,
                   __version__)  # fmt: skip

    def _block(
        self,
        file: MigrationFile,
        blocks: Sequence[Block],
        started: datetime,
        mode: str,
        sealed: str | None = None,
    ) -> Block:
        own = file.is_repeatable or reverts.is_down(file)  # numbered -height
        return chain.build_block(
            blocks,
            number=-(len(blocks) + 1) if own else file.number,
            path=file.path,
            content_hash=file.sha256,
            hash_algorithm=HASH_ALGORITHM,
            applied_at=started,
            applied_by=self.user,
            client_host=self.host,
            mode=_mode_of(file, mode),
            sealed_schema=sealed,
        )

    def _send_block(self, query: bytes, *, begin: bool = False) -> None:
        """Send SQL that appends a block; the run's first also marks the ledger, in
        the block's transaction."""
        self.conn.execute((b"BEGIN;" if begin else b"") + self._mark + query)
        self._mark = b""


def _mode_of(file: MigrationFile, mode: str) -> str:
    """A repeatable file's version, or a down script's revert, is its own mode."""
    if file.is_repeatable:
        return Mode.REPEATABLE
    return Mode.REVERT if reverts.is_down(file) else mode
