"""The text an edited file had when it was applied, found in git by its content hash,
and its diff against the file on disk. Reads git only; never writes.

The ledger keeps hashes, not text: where the project is a git repository, the
revision of the file whose normalised bytes hash to the block's content hash is the
applied text. Without git, or when no revision matches, there is no diff to show.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chainops.errors import ChainopsError
from chainops.source.files import normalise

MAX_REVISIONS = 200
_TIMEOUT_S = 5.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """A revision of the file whose content is what the block recorded."""

    commit: str
    text: str
    diff: tuple[str, ...]  # unified diff, applied → disk


def _git(folder: Path, *args: str) -> bytes | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        log.debug("git %s failed", args, exc_info=True)
        return None
    return done.stdout if done.returncode == 0 else None


def find_applied(
    migrations_dir: Path, path: str, content_hash: str, disk_text: str
) -> Applied | None:
    """The revision of `path` that hashes to `content_hash`, and its diff to disk."""
    file = migrations_dir / path
    top = _git(migrations_dir, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    root = Path(top.decode().strip())
    try:
        relative = file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
    found = _git(
        root, "log", "--all", f"-n{MAX_REVISIONS}", "--format=%H", "--", relative
    )
    for commit in (found or b"").decode().split():
        blob = _git(root, "show", f"{commit}:{relative}")
        if blob is None:
            continue
        try:
            data = normalise(blob, path)
        except ChainopsError:
            continue
        if hashlib.sha256(data).hexdigest() == content_hash:
            text = data.decode("utf-8")
            diff = difflib.unified_diff(
                text.splitlines(),
                disk_text.splitlines(),
                f"applied ({commit[:12]})",
                "on disk",
                lineterm="",
            )
            return Applied(commit, text, tuple(diff))
    return None
