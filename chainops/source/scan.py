"""Tell, without parsing, whether a migration can be sent to the server as it is.

Parsing costs pglast's import once and time for every file, a lot of it for a large
seed file, and almost every migration is plain SQL that runs in one transaction. This
scan is a cheap superset test: it flags every file that could hold a statement that
must run outside a transaction, a transaction command, COPY with STDIN or STDOUT, a
psql meta-command, a `chainops:` directive, or no SQL at all. A flagged file is
parsed; a false flag costs only that parse. Works on the file's bytes, never copied.
PostgreSQL's own scanner (pglast.parser.scan) cannot stand in: on 2,000 one-line
INSERTs it takes 4 s where this takes 8 ms.
"""

from __future__ import annotations

import re

from chainops.source.directives import has_directive

# Statements begin at the start of the file or after a ';' (a ';' inside a literal
# only adds a place to look). Between them: spaces, empty statements, comments.
_GAP = rb"(?:[ \t\n\r\f\v;]+|--[^\n]*|/\*(?:[^*/]|\*(?!/)|/(?!\*))*\*/)*"
_WORD = re.compile(_GAP + rb"([A-Za-z]*)")
# First words of statements that manage the transaction or must run outside one.
_ALONE = frozenset(
    b"vacuum reindex cluster discard begin start commit end rollback abort savepoint"
    b" release prepare".split()
)
# First words whose statement is special only with one of the qualifier words.
_QUALIFIED = frozenset(b"create drop alter copy".split())
_QUALIFIER = re.compile(
    rb"(?<![\w$])(?:concurrently|database|tablespace|system|subscription|stdin|stdout)"
    rb"(?![\w$])",
    re.IGNORECASE,
)
# What could hide a ';' that does not end the statement.
_QUOTING = re.compile(rb"['\"$\\]|--|/\*")
_SMALL = 1 << 20  # bytes: below this, any backslash is worth a parse
# Two patterns: one alternating \A and \n would be tried at every offset.
_FIRST_LINE_META = re.compile(rb"[ \t]*\\")
_LATER_LINE_META = re.compile(rb"\n[ \t]*\\")


def needs_parse(data: bytes) -> bool:
    """False only for SQL that can be sent as it is, inside one transaction.

    Linear in the file's size: every search moves forward through the data.
    """
    if has_directive(data) or _has_meta_command(data):
        return True
    qualifier = _Forward(_QUALIFIER, data)
    # Found with bytes.find, which runs at memory speed on a big file; a regex
    # searching for the same places would try every position.
    start = 0
    while start >= 0:
        special, end = _special_at(data, start, qualifier)
        if special:
            return True
        start = data.find(b";", max(start + 1, end))  # the gap's own ';' are done
    return False


def _special_at(data: bytes, start: int, qualifier: _Forward) -> tuple[bool, int]:
    """Whether the statement after `start` (0, or a ';') needs a parse; and where
    its first word ends."""
    match = _WORD.match(data, start)
    if match is None:  # pragma: no cover - the pattern matches the empty string
        return True, start
    word, end = match.group(1).lower(), match.end()
    if not word:
        # End of file, data or a quote after a ';', or a comment the gap pattern
        # cannot skip (a nested one): only the last is a reason to parse.
        if data.startswith(b"/*", end):
            return True, end
        return start == 0 and end == len(data), end  # only comments: empty
    if word in _ALONE:
        return True, end
    if word in _QUALIFIED:
        stop = data.find(b";", end)
        stop = len(data) if stop < 0 else stop
        if _QUOTING.search(data, end, stop):
            # That ';' may be quoted, so the statement may go on: look to the end.
            return qualifier.found_after(end), end
        return bool(_QUALIFIER.search(data, end, stop)), end
    return False, end


class _Forward:
    """The first match of a pattern after a position, for positions that only grow:
    each stretch of the data is searched once."""

    def __init__(self, pattern: re.Pattern[bytes], data: bytes) -> None:
        self._pattern, self._data = pattern, data
        self._searched_from: int | None = None
        self._found: re.Match[bytes] | None = None

    def found_after(self, position: int) -> bool:
        still_valid = self._searched_from is not None and (
            self._found is None or self._found.start() >= position
        )
        if not still_valid:
            self._found = self._pattern.search(self._data, position)
            self._searched_from = position
        return self._found is not None


def _has_meta_command(data: bytes) -> bool:
    """Whether the file may hold a psql meta-command.

    In a small file any backslash counts (E'' strings hold them too, but a parse is
    cheap); in a big one only a backslash first on its line, as they are written.
    """
    if len(data) <= _SMALL:
        return b"\\" in data
    return bool(_FIRST_LINE_META.match(data) or _LATER_LINE_META.search(data))
