"""Discover migration files and turn them into immutable records.

Knows the naming grammar, the content-hash rule and the template for new files;
never touches a database.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from chainops.config import DURATION as _DURATION
from chainops.errors import ConfigError, MigrationFileError

HASH_ALGORITHM = "sha256-lf"
"""SHA-256 of the UTF-8 text with a leading BOM removed and CRLF/CR turned into LF."""

# ASCII digits only (\d also matches other scripts' digits) and \Z, not $, which
# would accept a trailing newline.
CATEGORY_RE = re.compile(r"^([0-9]{3})-([a-z0-9][a-z0-9_-]*)\Z")
FILE_RE = re.compile(r"^([0-9]{3})-([A-Za-z0-9][A-Za-z0-9_.-]*)\.sql\Z")
RESERVED_TOP_LEVEL = {
    "schema.sql"
}  # chainops' own schema dump lives beside the folders


@dataclass(frozen=True)
class MigrationFile:
    """One migration file: where it is, its order key and its content."""

    category_index: int  # 1 for 001-schema
    category: str  # 001-schema
    index: int  # 5 for 005-user-settings.sql
    path: str  # 001-schema/005-user-settings.sql, relative to the migrations dir
    data: bytes  # normalised UTF-8 (no BOM, LF line ends): the exact SQL applied
    sha256: str

    @property
    def text(self) -> str:
        """The SQL as text, decoded on each use, so a big file is held once."""
        return self.data.decode("utf-8")

    @property
    def number(self) -> int:
        """The display number, #1005 for 001-schema/005-x.sql."""
        return self.category_index * 1000 + self.index

    @property
    def key(self) -> tuple[int, int]:
        return (self.category_index, self.index)

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


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
    """Return (category index, file index) for a valid name, None if not a migration."""
    cm, fm = CATEGORY_RE.match(category), FILE_RE.match(name)
    if not cm or not fm:
        return None
    return int(cm.group(1)), int(fm.group(1))


def _shown(path: str) -> str:
    """The path with control, invisible and undecodable characters escaped."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in path)


def _reject(path: str, why: str) -> MigrationFileError:
    return MigrationFileError(f"{_shown(path)} {why}")


def _looks_like_sql(name: str) -> bool:
    """True for `.sql` in any case, even followed by stray spaces or control bytes."""
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
            "digits, '-', '_' or '.'); rename it, for example 004-add-index.sql",
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
        _check_file_name(rel, name)
        index = int(name[:3])
        if index in by_index:
            raise _reject(
                rel,
                f"has the same number as {by_index[index].path}; renumber one of them",
            )
        by_index[index] = read_migration(entry.path, rel, category_index, index)
    return [by_index[i] for i in sorted(by_index)]


def read_migration(
    path: str, rel: str, category_index: int, index: int
) -> MigrationFile:
    try:
        with open(path, "rb", buffering=0) as file:  # no buffer object: one read
            data = file.readall()
    except OSError as err:
        raise _reject(
            rel, f"cannot be read ({err.strerror}); check its permissions"
        ) from err
    data = normalise(data, rel)
    if not data or data.isspace():  # PostgreSQL's spaces are ASCII; strip() copies
        raise _reject(rel, "is empty; write the migration or delete the file")
    digest = hashlib.sha256(data).hexdigest()  # the bytes of the normalised text
    category = rel.split("/", 1)[0]
    return MigrationFile(category_index, category, index, rel, data, digest)


DIRECTIVES = ("no-transaction", "lock-timeout", "statement-timeout")
_DIRECTIVE = re.compile(
    r"^[ \t]*--[ \t]*chainops:[ \t]*([A-Za-z-]+)[ \t]*(?:=[ \t]*(\S+))?[ \t]*$",
    re.MULTILINE,
)


def read_directives(text: str, path: str) -> dict[str, str]:
    """Read `-- chainops:name[=value]` lines; an unknown name is refused."""
    found: dict[str, str] = {}
    if "chainops:" not in text:  # a fast test, where the line regex reads every line
        return found
    for match in _DIRECTIVE.finditer(text):
        name, value = match.group(1).lower(), match.group(2) or ""
        if name not in DIRECTIVES:
            line, _ = locate(text, match.start())
            raise MigrationFileError(
                f"{path}:{line}: unknown directive chainops:{name}; "
                f"use one of {', '.join(DIRECTIVES)}"
            )
        if name != "no-transaction" and not _DURATION.match(value):
            line, _ = locate(text, match.start())
            raise MigrationFileError(
                f"{path}:{line}: chainops:{name}={value} is not a duration; "
                "use for example 30s, 500ms or 2min"
            )
        found[name] = value
    return found


def locate(text: str, offset: int) -> tuple[int, int]:
    """Turn a 0-based character offset into a 1-based (line, column)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


MIGRATION_TYPES = {"schema": 1, "functions": 2, "seed-data": 3}
"""`create --type`: the folder named NNN-<type>, and its number when it is new."""

TEMPLATE = """\
-- Migration: {name}
-- Date: {date}
-- Description: {description}

-- ============================================
-- IMPORTANT: This migration is immutable once applied!
-- Do not modify this file after it has been run in any environment.
-- ============================================

-- Your SQL here
"""
_NAME_LIMIT = 100  # keeps NNN-name.sql well below the 255-byte file-name limit


def slugify(name: str) -> str:
    """Lower-case ASCII words joined by dashes: 'Add Prefs' becomes add-prefs."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def _type_folder(migrations_dir: Path, kind: str) -> Path:
    """The folder for a type: an existing NNN-<type> (the highest), else a new one."""
    folders = sorted(
        (int(m.group(1)), p)
        for p in migrations_dir.iterdir()
        if p.is_dir() and (m := CATEGORY_RE.match(p.name))
    )
    own = [p for _, p in folders if p.name[4:] == kind]
    if own:
        return own[-1]
    number = MIGRATION_TYPES[kind]
    taken = [p.name for n, p in folders if n == number]
    if taken:
        raise MigrationFileError(
            f"there is no {kind} folder and its usual number {number:03d} is taken by "
            f"{taken[0]}/; create one yourself, for example "
            f"{folders[-1][0] + 1:03d}-{kind}/"
        )
    folder = migrations_dir / f"{number:03d}-{kind}"
    folder.mkdir()
    return folder


def write_template(
    migrations_dir: Path,
    kind: str,
    name: str,
    description: str | None,
    now: datetime,
) -> Path:
    """Write the next migration of a type from the template; return its path.

    The number is the folder's highest plus one, so gaps are never filled.
    """
    slug = slugify(name)
    if not slug:
        raise ConfigError(
            f"the migration name {name!r} has no letters or digits; pass one, "
            "for example --name add-user-preferences"
        )
    if len(slug) > _NAME_LIMIT:
        raise ConfigError(
            f"the migration name is {len(slug)} characters long; "
            f"use at most {_NAME_LIMIT}"
        )
    if kind not in MIGRATION_TYPES:
        raise ConfigError(
            f"--type {kind!r} is not a migration type; use one of "
            f"{', '.join(MIGRATION_TYPES)}"
        )
    folder = _type_folder(migrations_dir, kind)
    highest = 0
    for entry in folder.iterdir():
        match = FILE_RE.match(entry.name)
        if not match:
            continue
        if slugify(match.group(2)) == slug:
            raise ConfigError(
                f"{folder.name}/{entry.name} already has the name {slug}; "
                "choose another name"
            )
        highest = max(highest, int(match.group(1)))
    if highest >= 999:
        raise MigrationFileError(
            f"{folder.name}/ is full: it already holds number 999; "
            "start a new category folder"
        )
    moment = now.astimezone(timezone.utc)
    text = TEMPLATE.format(
        name=slug,
        date=f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z",
        description=" ".join((description or "").split())
        or "Add your migration description here",
    )
    path = folder / f"{highest + 1:03d}-{slug}.sql"
    with path.open("x", encoding="utf-8", newline="\n") as out:
        out.write(text)
    return path
