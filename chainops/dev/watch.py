"""Watch the migrations folder: apply new files once settled, warn about edited ones.

`Settle` (which events count, when writes have settled) is pure, like the triage it
feeds; `Watcher` wires both to a watchdog observer and applies through `api`.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from chainops import api, report
from chainops.config import Settings
from chainops.dev.triage import Decider
from chainops.errors import (
    ChainopsError,
    ConfigError,
    Interrupted,
    MigrationFailed,
    MigrationFileError,
    Refused,
)
from chainops.events import Applied, Event
from chainops.model import MigrationFile
from chainops.source.files import RESERVED_TOP_LEVEL, is_editor_leftover

DELAY = 0.3  # seconds without a change before a file counts as complete
# After its writer closed it: a shell's `>` then `>>`, or a tool that closes and
# reopens, writes again within this; a person saving again takes longer.
AFTER_CLOSE = 0.05
HOLD = 5.0  # longest wait for a writer that keeps a changed file open
_EVENTS = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileAttribEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]
_FILE_CHANGES = {"created", "modified", "closed", "attrib", "moved", "deleted"}
_DIR_CHANGES = {"created", "moved", "deleted"}


@dataclass
class Settle:
    """Collects changes to migration files until writes have settled.

    Where the observer reports closes (inotify), a change is settled `after_close`
    seconds after every file it touched was closed by its writer or renamed into
    place, unless it is written again meanwhile: the writer says it is done.
    Elsewhere, and for files that come with no close (found
    in a new folder, deleted), settled means `delay` seconds without a change. A
    file still open after a write holds everything for up to `hold` seconds, so a
    writer pausing mid-file never has its half-written file applied. Writes made
    while a new folder's watch is being set up go unreported, so a writer pausing
    in a folder created that very moment is the one case this cannot see.
    """

    root: Path
    delay: float = DELAY
    hold: float = HOLD
    tracks_close: bool = False
    after_close: float = AFTER_CLOSE
    touched: set[str] = field(default_factory=set)
    writing: set[str] = field(default_factory=set)
    # Files whose last event was their writer's close or a rename into place, with
    # the wall-clock time it was seen: a write before then is finished.
    closed: dict[str, float] = field(default_factory=dict)
    last: float | None = None

    def note(self, event: FileSystemEvent, now: float, wall: float = 0.0) -> bool:
        """Record an event seen at `now` (monotonic) and `wall` (the clock file times
        use); True if it concerns the migrations."""
        kind = event.event_type
        if kind not in (_DIR_CHANGES if event.is_directory else _FILE_CHANGES):
            return False
        # An atomic save renames a temporary file onto the target: a write to dest.
        raw = [event.src_path, event.dest_path] if kind == "moved" else [event.src_path]
        paths = [p for p in (self.relative(r, event.is_directory) for r in raw) if p]
        # The file a writer finished: closed, or renamed into place.
        done = None
        if kind == "moved":
            done = self.relative(event.dest_path, event.is_directory)
        elif kind == "closed":
            done = paths[0] if paths else None
        for path in [] if event.is_directory else paths:
            self.touched.add(path)
            # Only a write is sure to be followed by its close: watchdog reports files
            # found in a new folder as created, with no close to come.
            if self.tracks_close and kind == "modified":
                self.writing.add(path)
            elif kind in ("closed", "moved", "deleted"):
                self.writing.discard(path)
            if self.tracks_close and path == done:
                self.closed[path] = wall
            else:
                self.closed.pop(path, None)
        if paths:
            self.last = now
        return bool(paths)

    def relative(self, raw: bytes | str, is_directory: bool) -> str | None:
        """The path below the root, or None for editor leftovers and other files."""
        try:
            parts = Path(os.fsdecode(raw)).relative_to(self.root).parts
        except ValueError:
            return None
        if not parts or any(is_editor_leftover(part) for part in parts):
            return None
        if not is_directory and not parts[-1].lower().endswith(".sql"):
            return None  # swap files, backups and temporary names end otherwise
        if len(parts) == 1 and parts[0] in RESERVED_TOP_LEVEL:
            return None  # schema.sql, rewritten by every apply in development
        return "/".join(parts)

    def poke(self, now: float) -> None:
        """Ask for another round once `delay` has passed, as if a file changed now."""
        self.last = now

    def due(self) -> float | None:
        """When the pending changes count as settled; None if there are none."""
        if self.last is None:
            return None
        if self.writing:
            return self.last + self.hold
        if self.touched and self.touched <= self.closed.keys():
            return self.last + self.after_close  # every writer said it was done
        return self.last + self.delay

    def take(self) -> frozenset[str]:
        """Hand over the files touched since the last call and start afresh."""
        touched = frozenset(self.touched)
        self.touched.clear()
        self.writing.clear()
        self.last = None
        return touched


class _Handler(FileSystemEventHandler):
    def __init__(self, note: Callable[[FileSystemEvent], None]) -> None:
        self._note = note

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._note(event)


class Watcher:
    """A watchdog observer on the migrations folder, feeding settled changes to a
    Decider and applying on the thread that calls `run`.

    Applying on that thread lets Ctrl-C interrupt and roll back an apply exactly as
    it does for inv migrate. Use it as a context manager: leaving joins its threads.
    """

    def __init__(
        self,
        settings: Settings,
        say: Callable[[str], None],
        *,
        delay: float = DELAY,
        hold: float = HOLD,
    ) -> None:
        if settings.is_production:
            raise Refused(
                "CHAINOPS_ENV is production, and the watcher applies files as they "
                "are saved, which is for development only; apply with inv migrate"
            )
        folder = settings.migrations_dir
        if not folder.is_dir():
            raise MigrationFileError(
                f"migrations folder {folder} does not exist; create it or set "
                "CHAINOPS_MIGRATIONS_DIR"
            )
        self._settings, self._out = settings, say
        self._target = api.target(settings)
        self._label = (
            str(folder.relative_to(settings.project_root))
            if folder.is_relative_to(settings.project_root)
            else str(folder)
        )
        self._observer = Observer()
        # Only inotify reports when a writer closes a file; elsewhere quiet decides.
        tracks_close = type(self._observer).__module__ == "watchdog.observers.inotify"
        self._settle = Settle(folder, delay, hold, tracks_close)
        self._decider = Decider(self._label)
        # A failed file's content hash and when it failed: retried once saved again.
        self._failures: dict[str, tuple[str, float]] = {}
        self._batches: queue.Queue[frozenset[str] | None] = queue.Queue()
        self._changed = threading.Condition()
        self._stopping = False
        self._debouncer = threading.Thread(
            target=self._debounce, name="chainops-watch-debounce", daemon=True
        )

    def __enter__(self) -> Watcher:
        folder = self._settle.root
        self._observer.schedule(
            _Handler(self._note), str(folder), recursive=True, event_filter=_EVENTS
        )
        try:
            self._observer.start()
        except OSError as err:
            raise ConfigError(
                f"{folder} cannot be watched ({err.strerror or err}); on Linux raise "
                "fs.inotify.max_user_watches"
            ) from err
        self._debouncer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._observer.stop()
        with self._changed:
            self._stopping = True
            self._changed.notify()
        self._observer.join()
        self._debouncer.join()

    def run(self) -> None:
        """Apply what is ready now, then every settled change until `close`."""
        self._say(f"○ watching {self._label}/ for new and edited migrations")
        self.reconcile(frozenset())
        while (touched := self._batches.get()) is not None:
            self.reconcile(touched)

    def close(self) -> None:
        """Make `run` return after the change it is handling."""
        self._batches.put(None)

    def reconcile(self, touched: frozenset[str]) -> None:
        """Compare the folder with the ledger; warn, then apply the ready files."""
        started = time.time()
        try:
            files = api.load_files(self._settings)
            status = api.status(self._target)
        except MigrationFileError as err:
            # A file an in-place save has just created is empty or half-written:
            # wait for the folder to settle before calling it bad.
            if self._folder_settling(started):
                self._poke()
            else:
                self._print(self._decider.error(err))
            return
        except ChainopsError as err:
            self._print(self._decider.error(err))
            return
        unsettled = self._unsettled(files, started)
        if unsettled:
            self._poke()
        touched = self._saved_since_failing(touched, files)
        decision = self._decider.decide(status, files, touched, unsettled)
        self._print(decision.lines)
        if not decision.ready:
            return
        try:
            # The snapshot is exactly what was checked, so a file changing meanwhile
            # is never applied half-written; its hash is the hash of what runs.
            api.apply(self._target, files=decision.files, on_event=self._on_event)
        except Interrupted:
            raise
        except MigrationFailed as err:
            self._decider.failed(err.path)
            for file in decision.files:
                if file.path == err.path:
                    self._failures[file.path] = (file.sha256, time.time())
            # One line: what failed, and that saving the file applies it again.
            self._say(f"✗ {err}")
        except ChainopsError as err:
            self._print(self._decider.error(err))

    def _unsettled(
        self, files: Sequence[MigrationFile], started: float
    ) -> frozenset[str]:
        """Files still open for writing, or written within `delay` of being read.

        The modification time comes from the write itself, so this also catches a
        write whose event the observer has not delivered yet.
        """
        with self._changed:
            found = set(self._settle.writing)
            closed = dict(self._settle.closed)
        # A time in the future is a skewed clock (a copy from another machine), not
        # a write in progress: waiting for it to pass could take forever.
        latest = time.time() + 1.0
        for file in files:
            try:
                mtime = (self._settle.root / file.path).stat().st_mtime
            except OSError:
                mtime = started  # gone already: the next round decides
            if mtime <= closed.get(file.path, 0.0):
                continue  # written before its writer closed it: whole
            if started - self._settle.delay < mtime < latest:
                found.add(file.path)
        return frozenset(found)

    def _saved_since_failing(
        self, touched: frozenset[str], files: Sequence[MigrationFile]
    ) -> frozenset[str]:
        """Leave out a failed file not saved since it failed: the events of the save
        that failed can arrive after the round that applied it (the first round runs
        without waiting for events), and must not retry the same content."""
        kept = set(touched)
        for file in files:
            failure = self._failures.get(file.path)
            if file.path not in kept or failure is None:
                continue
            content, when = failure
            try:
                saved = (self._settle.root / file.path).stat().st_mtime
            except OSError:
                continue  # gone: the next round sees it
            if file.sha256 == content and saved < when:
                kept.discard(file.path)
        return frozenset(kept)

    def _folder_settling(self, started: float) -> bool:
        """True while any SQL file in the folder is being written or just was."""
        with self._changed:
            if self._settle.writing or self._settle.last is not None:
                return True
        for path in self._settle.root.rglob("*"):
            if not path.name.lower().endswith(".sql"):
                continue
            try:
                mtime = path.stat().st_mtime
            except OSError:
                return True  # gone while listing: the folder is changing
            if started - self._settle.delay < mtime < started + 1.0:
                return True
        return False

    def _poke(self) -> None:
        with self._changed:
            self._settle.poke(time.monotonic())
            self._changed.notify()

    def _on_event(self, event: Event) -> None:
        if isinstance(event, Applied):
            self._decider.applied(event.file.path)
            label = "R" if event.file.is_repeatable else f"#{event.file.number}"
            extra = f", block {event.block.height}" if event.file.is_repeatable else ""
            self._say(
                f"✓ applied {label} {event.file.filename} "
                f"({event.duration_ms} ms{extra})"
            )
        else:
            self._say(report.event_line(event))

    def _say(self, line: str) -> None:
        # The watcher applies on save: "run migrate again" reads "save it again".
        self._out(line.replace("run inv migrate again", "save the file again"))

    def _print(self, lines: Sequence[str]) -> None:
        for line in lines:
            self._say(line)

    def _note(self, event: FileSystemEvent) -> None:
        with self._changed:
            if self._settle.note(event, time.monotonic(), time.time()):
                self._changed.notify()

    def _debounce(self) -> None:
        with self._changed:
            while not self._stopping:
                due = self._settle.due()
                wait = None if due is None else due - time.monotonic()
                if wait is None or wait > 0:
                    self._changed.wait(wait)
                else:
                    self._batches.put(self._settle.take())
