"""Discover migration files and turn them into immutable records.

Knows the naming grammar and the content-hash rule; never touches a database.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import replace
from pathlib import Path

from chainops.errors import MigrationFileError, escape_controls
from chainops.model import MigrationFile, Script

HASH_ALGORITHM = "sha256-lf"
"""SHA-256 of the UTF-8 text with a leading BOM removed and CRLF/CR turned into LF."""

# ASCII digits only (\d also matches other scripts' digits) and \Z, not $, which
# would accept a trailing newline.
CATEGORY_RE = re.compile(r"^([0-9]{3})-([a-z0-9][a-z0-9_-]*)\Z")
FILE_RE = re.compile(r"^([0-9]{3})-([A-Za-z0-9][A-Za-z0-9_.-]*)\.sql\Z")
VERIFY_SUFFIX = ".verify.sql"  # 004-x.verify.sql checks 004-x.sql
DOWN_SUFFIX = ".down.sql"  # 004-x.down.sql undoes 004-x.sql (revert)
# A repeatable file: applied after the numbered ones, again whenever it changes.
REPEATABLE_RE = re.compile(r"^R-([A-Za-z0-9][A-Za-z0-9_.-]*)\.sql\Z")
RESERVED_TOP_LEVEL = {
    "schema.sql"
}  # chainops' own schema dump lives beside the folders


def is_editor_leftover(name: str) -> bool:
    """True for names editors and tools leave behind, which chainops ignores."""
    return (
        name.startswith(".")
        or name.endswith(("~", ".swp", ".swo", ".swx", ".tmp", ".bak", ".orig"))
        or (name.startswith("#") and name.endswith("#"))
    )


def normalise(data: bytes, path: str) -> bytes:
    """Check that a file is UTF-8 text and return it without BOM, with LF line ends.

    Raises MigrationFileError for anything else.
    """
    if data.isascii() and b"\x00" not in data and b"\r" not in data:
        return data  # nearly every file: no BOM (not ASCII) and nothing to change
    if not _is_utf8(data):
        try:
            data.decode("utf-8")  # again whole, for the offset of the bad byte
        except UnicodeDecodeError as err:
            hint = (
                " (it looks like UTF-16)"
                if data[:2] in (b"\xff\xfe", b"\xfe\xff")
                else ""
            )
            raise _reject(
                path, f"is not valid UTF-8{hint} at byte {err.start}; save it as UTF-8"
            ) from err
    if b"\x00" in data:
        raise _reject(path, "contains a NUL byte; save it as UTF-8 text")
    data = data.removeprefix(_BOM)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


_BOM = "\ufeff".encode()
_CHUNK = 1 << 20


def _is_utf8(data: bytes) -> bool:
    """Check the encoding a chunk at a time, so a big file is never held as text."""
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _CHUNK):
            decoder.decode(view[start : start + _CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def parse_name(category: str, name: str) -> tuple[int, int] | None:
    """Return (category index, file index) for a valid name, None if not a migration.

    A repeatable file's index is 0.
    """
    # Both patterns start with three ASCII digits, so a match's number is [:3]:
    # verify parses every block's path on every run.
    if not CATEGORY_RE.match(category):
        return None
    if REPEATABLE_RE.match(name) and not name.endswith(VERIFY_SUFFIX):
        return int(category[:3]), 0
    return (int(category[:3]), int(name[:3])) if FILE_RE.match(name) else None


def _reject(path: str, why: str) -> MigrationFileError:
    return MigrationFileError(f"{escape_controls(path)} {why}")


def _looks_like_sql(name: str) -> bool:
    """True for `.sql` in any case, even followed by stray spaces or control bytes."""
    if name.endswith(".sql"):  # nearly every name: skip the scan from the end
        return True
    end = len(name)
    while end and (name[end - 1].isspace() or not name[end - 1].isprintable()):
        end -= 1
    return name[:end].lower().endswith(".sql")


def _holds_sql(folder: str) -> bool:
    return any(
        _looks_like_sql(p.name) and not is_editor_leftover(p.name)
        for p in Path(folder).rglob("*")
    )


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """As Path.is_dir: a looping or unreadable link is no folder, not an error."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _entries(folder: Path | str) -> list[os.DirEntry[str]]:
    """The folder's entries by name; scandir knows their types without a stat each."""
    with os.scandir(folder) as found:
        return sorted(found, key=lambda entry: entry.name)


def _check_file_name(rel: str, name: str) -> None:
    if name.lower().endswith(".sql") and not name.endswith(".sql"):
        raise _reject(rel, "has an upper-case extension; rename it to end in .sql")
    if not FILE_RE.match(name):
        raise _reject(
            rel,
            "does not match NNN-name.sql (three digits, a dash, then letters, "
            "digits, '-', '_' or '.') or R-name.sql (repeatable); rename it, for "
            "example 004-add-index.sql",
        )
    if name.startswith("000"):
        raise _reject(rel, "has number 000; numbers run from 001 to 999")


def discover(migrations_dir: Path) -> list[MigrationFile]:
    """Read every migration under `migrations_dir`, sorted by (category, file) number.

    Refuses, naming the file, anything that looks like a migration but breaks the
    grammar, so that nothing is silently skipped.
    """
    if not migrations_dir.is_dir():
        raise MigrationFileError(
            f"migrations folder {migrations_dir} does not exist; create it or set "
            "CHAINOPS_MIGRATIONS_DIR"
        )
    found: list[MigrationFile] = []
    seen_categories: dict[int, str] = {}
    for entry in _entries(migrations_dir):
        name = entry.name
        if is_editor_leftover(name):
            continue
        if entry.is_symlink():
            if _looks_like_sql(name) or _is_dir(entry):
                raise _reject(name, "is a symbolic link; migrations must be real files")
            continue
        if _is_file(entry):
            if _looks_like_sql(name) and name not in RESERVED_TOP_LEVEL:
                raise _reject(
                    name,
                    "is not in a category folder; move it into one such as 001-schema/",
                )
            continue
        if not _is_dir(entry):
            continue
        match = CATEGORY_RE.match(name)
        if not match:
            if _holds_sql(entry.path):
                raise _reject(
                    f"{name}/",
                    "is not a category folder name (NNN-name, lower case); "
                    "rename it, for example 004-views",
                )
            continue
        category_index = int(match.group(1))
        if category_index == 0:
            raise _reject(f"{name}/", "has number 000; numbers run from 001 to 999")
        if category_index in seen_categories:
            raise _reject(
                f"{name}/",
                f"has the same number as {seen_categories[category_index]}/; "
                "renumber one of them",
            )
        seen_categories[category_index] = name
        found.extend(_discover_category(entry.path, name, category_index))
    return found


def _discover_category(
    folder: str, category: str, category_index: int
) -> list[MigrationFile]:
    by_index: dict[int, MigrationFile] = {}
    scripts: dict[str, Script] = {}  # by the name of the migration they verify
    downs: dict[str, Script] = {}  # by the name of the migration they undo
    repeatable: list[MigrationFile] = []  # in name order, after the numbered files
    for entry in _entries(folder):
        name = entry.name
        rel = f"{category}/{name}"
        if is_editor_leftover(name):
            continue
        if _is_dir(entry):
            if _holds_sql(entry.path):
                raise _reject(
                    rel + "/", "is a folder inside a category; move its files up"
                )
            continue
        if not _looks_like_sql(name):
            continue
        if entry.is_symlink():
            raise _reject(rel, "is a symbolic link; migrations must be real files")
        if REPEATABLE_RE.match(name) and not name.endswith(VERIFY_SUFFIX):
            repeatable.append(
                read_migration(entry.path, rel, category, category_index, 0)
            )
            continue
        _check_file_name(rel, name)
        index = int(name[:3])
        suffix = (
            VERIFY_SUFFIX
            if name.endswith(VERIFY_SUFFIX)
            else DOWN_SUFFIX
            if name.endswith(DOWN_SUFFIX)
            else ""
        )
        if suffix:
            read = read_migration(entry.path, rel, category, category_index, index)
            found = scripts if suffix == VERIFY_SUFFIX else downs
            found[name.removesuffix(suffix) + ".sql"] = Script(
                read.path, read.data, read.sha256
            )
            continue
        if index in by_index:
            raise _reject(
                rel,
                f"has the same number as {by_index[index].path}; renumber one of them",
            )
        by_index[index] = read_migration(
            entry.path, rel, category, category_index, index
        )
    by_name = {file.filename: file for file in by_index.values()}
    for name, verify in scripts.items():
        if name not in by_name:
            raise _reject(
                verify.path,
                f"has no migration {category}/{name} beside it; name a verify script "
                "after its migration (NNN-name.verify.sql for NNN-name.sql)",
            )
        file = by_name[name]
        by_index[file.index] = replace(file, verify_script=verify)
    for name, down in downs.items():
        if name not in by_name:
            raise _reject(
                down.path,
                f"has no migration {category}/{name} beside it; name a down script "
                "after its migration (NNN-name.down.sql for NNN-name.sql)",
            )
        file = by_index[by_name[name].index]
        by_index[file.index] = replace(file, down_script=down)
    return [by_index[i] for i in sorted(by_index)] + repeatable


def _read_bytes(path: str) -> bytes:
    """The whole file in five system calls: open, stat, read, read to the end, close
    (a file object also seeks, and stats twice)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, os.fstat(fd).st_size + 1)
        while more := os.read(fd, _CHUNK):  # only a file that grew since the stat
            data += more
    finally:
        os.close(fd)
    return data


def read_migration(
    path: str, rel: str, category: str, category_index: int, index: int
) -> MigrationFile:
    try:
        data = _read_bytes(path)
    except OSError as err:
        raise _reject(
            rel, f"cannot be read ({err.strerror}); check its permissions"
        ) from err
    data = normalise(data, rel)
    if not data or data.isspace():  # PostgreSQL's spaces are ASCII; strip() copies
        raise _reject(rel, "is empty; write the migration or delete the file")
    digest = hashlib.sha256(data).hexdigest()  # the bytes of the normalised text
    return MigrationFile(category_index, category, index, rel, data, digest)


def locate(text: str, offset: int) -> tuple[int, int]:
    """Turn a 0-based character offset into a 1-based (line, column)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column
