"""Plain text work on SQL, without a parser: skipping what lies between statements,
and cutting the data of `COPY … FROM stdin` out of a file, as pg_dump writes it (the
statement ends its line, its data lines follow up to a line `\\.`). Whether a
candidate is really a COPY statement is decided by the caller's parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from chainops.errors import MigrationFileError
from chainops.source.files import locate

# `FROM stdin` then options, the ';' and nothing but a comment up to the line's end.
_CANDIDATE = re.compile(
    r"\bFROM\s+STDIN\b[^;\n]*;[ \t]*(?:--[^\n]*)?(?:\n|\Z)", re.IGNORECASE
)
_END = re.compile(r"^\\\.[ \t]*$", re.MULTILINE)
# PostgreSQL's whitespace; its scanner reads other Unicode spaces as identifier chars.
SPACE = frozenset(" \t\n\r\f\v")


@dataclass(frozen=True)
class Cut:
    """One COPY's data: the SQL before it ends at `sql_end` (after the COPY's ';')."""

    sql_start: int  # where the SQL leading to this COPY starts
    sql_end: int
    data_start: int
    data_end: int  # the data is text[data_start:data_end], its last line ending in \n
    resume: int  # where the SQL after the `\.` line starts


def cut(
    text: str, copy_from_stdin: Callable[[str], int | None], path: str
) -> list[Cut]:
    """Every COPY … FROM stdin with its data; `copy_from_stdin(sql)` is where the
    last statement of `sql` starts if it is one. Refuses data without its `\\.`."""
    found: list[Cut] = []
    start = search = 0
    while (match := _CANDIDATE.search(text, search)) is not None:
        search = match.end()
        semicolon = text.rindex(";", match.start(), match.end())
        statement = copy_from_stdin(text[start : semicolon + 1])
        if statement is None:
            continue
        data_start = match.end()
        end = _END.search(text, data_start)
        if end is None:
            line, column = locate(text, start + statement)
            raise MigrationFileError(
                f"{path}:{line}:{column}: the data of COPY … FROM stdin has no line "
                "\\. after it; end the data with a line holding only \\."
            )
        resume = min(end.end() + 1, len(text))
        found.append(Cut(start, semicolon + 1, data_start, end.start(), resume))
        start = search = resume
    return found


def skip_gap(text: str, position: int) -> int:
    """Skip whitespace, empty statements and comments up to the next statement."""
    while position < len(text):
        if text[position] in SPACE or text[position] == ";":
            position += 1
        elif text.startswith("--", position):
            end = text.find("\n", position)
            position = len(text) if end < 0 else end + 1
        elif text.startswith("/*", position):
            position = skip_block_comment(text, position)
        else:
            break
    return position


def skip_block_comment(text: str, position: int) -> int:
    """Return the offset after the (possibly nested) block comment at `position`."""
    depth = 0
    while True:
        opening, closing = text.find("/*", position), text.find("*/", position)
        if closing < 0:
            return len(text)
        if 0 <= opening < closing:
            depth, position = depth + 1, opening + 2
        else:
            depth, position = depth - 1, closing + 2
        if depth == 0:
            return position
