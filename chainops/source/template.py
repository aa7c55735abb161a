"""The template `create` writes, and where it goes: the next number of a type's folder.

Writes one new file and nothing else; never touches a database.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

from chainops.errors import ConfigError, MigrationFileError
from chainops.source.files import CATEGORY_RE, FILE_RE, REPEATABLE_RE

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
REPEATABLE_TEMPLATE = """\
-- Migration: {name}
-- Date: {date}
-- Description: {description}

-- ============================================
-- A repeatable file: applied after the numbered migrations, and again each time
-- its content changes (each version a new block). Write it so that it can run
-- again: CREATE OR REPLACE FUNCTION / VIEW, DROP ... IF EXISTS first.
-- ============================================

-- Your SQL here
"""
_HEADER = re.compile(r"-- Migration: [^\n]*\n-- Date: [^\n]*\n-- Description: [^\n]*\n")
_BODY = TEMPLATE.split("{description}\n", 1)[1]


def template_hash(text: str) -> str | None:
    """The content hash of the template `create` wrote for a file that starts with
    its header, or None: lets a lock entry of the untouched template be known."""
    header = _HEADER.match(text)
    if header is None:
        return None
    return hashlib.sha256((header.group(0) + _BODY).encode("utf-8")).hexdigest()


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
    repeatable: bool = False,
) -> Path:
    """Write the next migration of a type from the template; return its path.

    The number is the folder's highest plus one, so gaps are never filled; a
    repeatable file is R-<name>.sql, with no number.
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
        match = FILE_RE.match(entry.name) or REPEATABLE_RE.match(entry.name)
        if not match:
            continue
        if slugify(match.group(match.lastindex or 1)) == slug:
            raise ConfigError(
                f"{folder.name}/{entry.name} already has the name {slug}; "
                "choose another name"
            )
        if match.re is FILE_RE:
            highest = max(highest, int(match.group(1)))
    if highest >= 999:
        raise MigrationFileError(
            f"{folder.name}/ is full: it already holds number 999; "
            "start a new category folder"
        )
    moment = now.astimezone(timezone.utc)
    template = REPEATABLE_TEMPLATE if repeatable else TEMPLATE
    text = template.format(
        name=slug,
        date=f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z",
        description=" ".join((description or "").split())
        or "Add your migration description here",
    )
    path = folder / (f"R-{slug}.sql" if repeatable else f"{highest + 1:03d}-{slug}.sql")
    with path.open("x", encoding="utf-8", newline="\n") as out:
        out.write(text)
    return path
