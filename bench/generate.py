"""Write the same migrations in each tool's layout, under a scratch folder.

Every tool gets byte-identical SQL; only the file names (and dbmate's required
`-- migrate:up` marker, graphile-migrate's hash headers) differ. Never writes inside the
repository.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

FILES_PER_FOLDER = 100  # chainops numbers files 001-999 inside each category folder
ROWS_PER_INSERT = 1000
# What JavaScript's String.prototype.trim removes (WhiteSpace and LineTerminator);
# Python's str.strip() differs on a few code points, e.g. U+FEFF and U+001C..U+001F.
JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


@dataclass(frozen=True)
class Layout:
    """One workload's migrations, written once per tool."""

    root: Path
    count: int
    chainops: Path  # migrations dir: NNN-partN/NNN-name.sql
    dbmate: Path  # NNNNNN_name.sql with -- migrate:up
    yoyo: Path  # NNNNNN_name.sql
    graphile: Path  # .gmrc and migrations/committed/NNNNNN.sql with hash headers
    plain: tuple[Path, ...]  # one file per migration, for psql -f
    concatenated: Path  # every migration in one file, for a single psql

    @property
    def last_number(self) -> int:
        """chainops' display number of the last migration (category*1000 + index)."""
        category, index = divmod(self.count - 1, FILES_PER_FOLDER)
        return (category + 1) * 1000 + index + 1


def tiny_sql(i: int) -> str:
    return (
        f"CREATE TABLE t_{i} (id int primary key, v text);\n"
        f"INSERT INTO t_{i} VALUES (1, 'x');\n"
    )


def chainops_path(base: Path, i: int, name: str) -> Path:
    """Path of the i-th (0-based) migration in chainops' folder layout."""
    category, index = divmod(i, FILES_PER_FOLDER)
    return (
        base / f"{category + 1:03d}-part{category + 1}" / f"{index + 1:03d}-{name}.sql"
    )


def graphile_hash(body: str, previous: str | None) -> str:
    """graphile-migrate's `--! Hash:` of a committed migration's body.

    As calculateHash in graphile/migrate src/hash.ts (v1.4.1): sha1 over the previous
    hash, a newline and the trimmed body, trimmed again, plus a newline.
    """
    text = ((previous or "") + "\n" + body.strip(JS_SPACE)).strip(JS_SPACE) + "\n"
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def graphile_text(body: str, previous: str | None) -> tuple[str, str]:
    """(file text, hash) of a committed migration: two headers, a blank line, `body`."""
    digest = graphile_hash(body, previous)
    header = f"--! Previous: {previous or '-'}\n--! Hash: {digest}\n\n"
    return header + body, digest


def write_layout(
    root: Path, texts: list[tuple[str, str]], plain: bool = True
) -> Layout:
    """Write (name, sql) pairs for every tool under `root`, replacing what was there."""
    if root.exists():
        shutil.rmtree(root)
    tools = ("chainops", "dbmate", "yoyo", "graphile", "plain")
    dirs = {tool: root / tool for tool in tools}
    for folder in dirs.values():
        folder.mkdir(parents=True)
    committed = dirs["graphile"] / "migrations" / "committed"
    committed.mkdir(parents=True)
    # graphile-migrate refuses to start without a .gmrc; the URLs come from the
    # environment (DATABASE_URL), since every run gets a fresh database.
    gmrc = {"//": "written by bench/generate.py", "migrationsFolder": "./migrations"}
    (dirs["graphile"] / ".gmrc").write_text(json.dumps(gmrc) + "\n", encoding="utf-8")
    previous: str | None = None
    plain_files: list[Path] = []
    concatenated = root / "all.sql"
    with concatenated.open("w", encoding="utf-8") as whole:
        for i, (name, text) in enumerate(texts):
            target = chainops_path(dirs["chainops"], i, name)
            target.parent.mkdir(exist_ok=True)
            target.write_text(text, encoding="utf-8")
            flat = f"{i + 1:06d}_{name}.sql"
            (dirs["dbmate"] / flat).write_text(
                f"-- migrate:up\n{text}\n-- migrate:down\n", encoding="utf-8"
            )
            (dirs["yoyo"] / flat).write_text(text, encoding="utf-8")
            committed_text, previous = graphile_text(text, previous)
            (committed / f"{i + 1:06d}.sql").write_text(
                committed_text, encoding="utf-8"
            )
            if plain:
                (dirs["plain"] / flat).write_text(text, encoding="utf-8")
                plain_files.append(dirs["plain"] / flat)
                whole.write(text)
    return Layout(
        root,
        len(texts),
        dirs["chainops"],
        dirs["dbmate"],
        dirs["yoyo"],
        dirs["graphile"],
        tuple(plain_files),
        concatenated,
    )


def write_tiny(root: Path, n: int) -> Layout:
    return write_layout(root, [(f"t_{i}", tiny_sql(i)) for i in range(1, n + 1)])


def big_seed_sql(size: int, filler: str = "seed value") -> str:
    """One seed file of about `size` bytes: a table, then multi-row INSERTs."""
    parts = ["CREATE TABLE seed (id int primary key, v text);\n"]
    total, row = len(parts[0]), 1
    while total < size:
        values = ",\n".join(
            f"({i}, '{filler} {i} abcdefghijklmnopqrstuvwxyz')"
            for i in range(row, row + ROWS_PER_INSERT)
        )
        chunk = f"INSERT INTO seed VALUES\n{values};\n"
        parts.append(chunk)
        total += len(chunk)
        row += ROWS_PER_INSERT
    return "".join(parts)


def write_big(root: Path, size: int, filler: str = "seed value") -> Layout:
    return write_layout(root, [("seed", big_seed_sql(size, filler))])
