"""What the watcher says and applies after a change, decided from the folder and the
ledger alone; it remembers what it said, so each message appears once. Never prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timezone

from chainops.errors import ChainopsError, MigrationFileError, short
from chainops.model import Block, Finding, FindingKind, MigrationFile, State
from chainops.results import Entry, StatusReport
from chainops.reverts import standing
from chainops.source.statements import EmptyMigration, check_syntax

# Topics of messages that concern no single file; "!" starts no migration path.
_ERROR = "!error"
_CHAIN = "!chain"
_LEDGER = "!ledger "


@dataclass(frozen=True)
class Decision:
    """What to print, and the snapshot to apply: applied files plus the ready ones."""

    lines: tuple[str, ...]
    files: tuple[MigrationFile, ...] = ()
    ready: tuple[MigrationFile, ...] = ()


def check_file(file: MigrationFile) -> None:
    """Raise unless chainops can parse the file (EmptyMigration for a template) and
    its verify script."""
    check_syntax(file.text, file.path)
    if file.verify_script is not None:
        check_syntax(file.verify_script.text, file.verify_script.path)


def _paths(file: MigrationFile) -> frozenset[str]:
    """The file's path and its verify script's: saving either retries it."""
    script = file.verify_script
    return frozenset((file.path,) if script is None else (file.path, script.path))


class Decider:
    """Decides from the folder and the ledger what to say and what to apply.

    It remembers what it last said about each file, so every message appears once
    until the situation changes.
    """

    def __init__(
        self, folder: str, check: Callable[[MigrationFile], None] = check_file
    ) -> None:
        self._folder = folder  # the migrations folder as the user names it, for git
        self._check = check
        self._said: dict[str, tuple[str, ...]] = {}

    def _once(
        self, out: list[str], topic: str, key: tuple[str, ...], *lines: str
    ) -> None:
        if self._said.get(topic) != key:
            self._said[topic] = key
            out.extend(lines)

    def error(self, err: ChainopsError) -> list[str]:
        """Lines for an error that stops this round (bad file, database down)."""
        out: list[str] = []
        self._once(out, _ERROR, ("error", str(err)), f"✗ {err}")
        return out

    def failed(self, path: str) -> None:
        """Remember that the file failed: it is retried once it is saved again."""
        self._said[path] = ("failed",)

    def applied(self, path: str) -> None:
        self._said.pop(path, None)

    def decide(
        self,
        status: StatusReport,
        files: Sequence[MigrationFile],
        touched: frozenset[str],
        unsettled: frozenset[str] = frozenset(),
    ) -> Decision:
        """Warn about applied files, then pick the pending files ready to apply.

        `unsettled` files were written too recently to be complete: they and the
        files after them wait without a word for the next round.
        """
        self._said.pop(_ERROR, None)
        known = {f.path for f in files} | {e.path for e in status.entries}
        for topic in [t for t in self._said if t[0] != "!" and t not in known]:
            del self._said[topic]  # a file deleted and written again is new
        out = self._applied_files(status)
        # A changed repeatable file is pending with the block of its last version.
        pending = [
            e for e in status.entries if e.block is None or e.state == State.PENDING
        ]
        if status.findings:
            if pending:
                self._once(
                    out,
                    _CHAIN,
                    ("broken",),
                    f"○ {len(pending)} pending file(s) wait until the chain verifies "
                    "again",
                )
            return Decision(tuple(out))
        self._said.pop(_CHAIN, None)
        blocks = sorted(
            (e.block for e in status.entries if e.block is not None),
            key=lambda b: b.height,  # chain order: a revert follows what it undid
        )
        by_path = {f.path: f for f in files}
        ready: list[MigrationFile] = []
        held: str | None = None  # the first file that cannot be applied yet
        settling = False
        for entry in pending:
            file = by_path.get(entry.path)
            if file is None:
                continue  # deleted since the status was read
            above = _applied_above(blocks, file)
            if above is not None:
                self._out_of_order(out, file, above, files)
            elif _paths(file) & unsettled:
                settling = True
            elif problem := self._problem(entry, file, touched):
                self._once(out, file.path, *problem)
                held = held or file.path
            elif held is not None and not settling:
                self._once(
                    out,
                    file.path,
                    ("after", held),
                    f"○ {file.path} waits for {held}, which is applied first",
                )
            elif held is None and not settling:
                ready.append(file)
        chosen = {f.path for f in ready}
        # A repeatable file is applied as the version its newest block holds.
        live = standing(blocks)  # a reverted file is pending again
        applied = {(b.path, b.content_hash if b.is_repeatable else "") for b in live}
        snapshot = tuple(
            f
            for f in files
            if f.path in chosen
            or (f.path, f.sha256 if f.is_repeatable else "") in applied
        )
        return Decision(tuple(out), snapshot, tuple(ready))

    def _problem(
        self, entry: Entry, file: MigrationFile, touched: frozenset[str]
    ) -> tuple[tuple[str, ...], str] | None:
        """Why a pending file cannot be applied yet: (memory key, message)."""
        if entry.state == State.RUNNING:
            return ("running",), (
                f"✗ {file.path} stopped midway through its statements; "
                "run inv migrate --resume to continue it"
            )
        if entry.state == State.FAILED and not _paths(file) & touched:
            return ("failed",), f"○ {file.path} failed last time; save it to retry"
        try:
            self._check(file)
        except EmptyMigration:
            return ("empty",), f"○ {file.path} waits for SQL (it has none yet)"
        except MigrationFileError as err:
            return ("invalid", file.sha256), f"✗ {err}"
        return None

    def _out_of_order(
        self,
        out: list[str],
        file: MigrationFile,
        above: Block,
        files: Sequence[MigrationFile],
    ) -> None:
        taken = [f.index for f in files if f.category == file.category]
        number = max([*taken, above.number % 1000]) + 1
        target = f"{file.category}/{number:03d}{file.filename[3:]}"
        self._once(
            out,
            file.path,
            ("order", above.path),
            f"✗ {file.path} is numbered below the applied {above.path}, so it is not "
            "applied (files apply in order and the ledger already moved past it); "
            f"rename it to {target}, or apply it as it is with inv migrate "
            "--allow-out-of-order",
        )

    def _applied_files(self, status: StatusReport) -> list[str]:
        out: list[str] = []
        entries = {e.path: e for e in status.entries if e.block is not None}
        flagged: set[str] = set()
        for finding in status.findings:
            entry = entries.get(finding.path)
            if finding.kind.is_file and entry is not None:
                flagged.add(finding.path)
                self._warn(out, finding, entry.block)
            else:
                topic = _LEDGER + finding.message
                flagged.add(topic)
                self._once(out, topic, ("tampered",), f"✗ {finding.message}")
        for topic in list(self._said):
            if topic.startswith(_LEDGER) and topic not in flagged:
                del self._said[topic]
        for path, entry in entries.items():
            said = self._said.get(path, ("",))[0]
            if path not in flagged and said in ("changed", "missing", "renamed"):
                del self._said[path]
                height = entry.block.height if entry.block else "?"
                out.append(f"✓ {path} is intact again (it matches block {height})")
        return out

    def _warn(self, out: list[str], finding: Finding, block: Block | None) -> None:
        path = finding.path
        when = ""
        if block is not None:
            at = block.applied_at.astimezone(timezone.utc)
            when = (
                f" (block {block.height}, applied {at:%Y-%m-%d %H:%M:%S} UTC "
                f"by {block.applied_by})"
            )
        restore = f"  restore it: git restore {self._folder}/{path}"
        if finding.kind == FindingKind.CHANGED:
            self._once(
                out,
                path,
                ("changed", finding.current or ""),
                f"✗ WARNING: {path} was edited after it was applied{when}",
                f"  the ledger holds {short(finding.expected)}, the file now hashes to "
                f"{short(finding.current)}; the database keeps the applied version "
                "and nothing new is applied until the file is restored",
                restore,
                "  then put the change in a new migration (inv migrate.create)",
            )
        elif finding.kind == FindingKind.MISSING:
            self._once(
                out,
                path,
                ("missing",),
                f"✗ WARNING: {path} was deleted, but it was applied{when}",
                f"{restore} (applied migrations are never deleted; undo a change "
                "with a new migration)",
            )
        else:
            self._once(out, path, ("renamed",), f"✗ WARNING: {finding.message}")


def _applied_above(blocks: Sequence[Block], file: MigrationFile) -> Block | None:
    """The highest applied block of the file's folder numbered above it, if any."""
    if file.is_repeatable:  # applied after the numbered files, whatever their order
        return None
    above = [
        b
        for b in standing(blocks)
        if b.number // 1000 == file.category_index and b.number > file.number
    ]
    return max(above, key=lambda b: b.number) if above else None
