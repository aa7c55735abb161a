"""Tell, without parsing, whether a migration can be sent to the server as it is.

Parsing costs pglast's import once and time for every file, a lot of it for a large
seed file, and almost every migration is plain SQL that runs in one transaction. This
scan is a cheap superset test: it flags every file that could hold a statement that
must run outside a transaction, a transaction command, COPY with STDIN or STDOUT, a
psql meta-command, a `chainops:` directive, or no SQL at all. A flagged file is
parsed; a false flag costs only that parse. Works on the file's bytes, never copied.
"""

from __future__ import annotations

import re

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


def needs_parse(data: bytes) -> bool:
    """False only for SQL that can be sent as it is, inside one transaction."""
    if b"chainops:" in data or _has_meta_command(data):
        return True
    # Found with bytes.find, which runs at memory speed on a big file; a regex
    # searching for the same places would try every position.
    start = 0
    while start >= 0:
        if _special_at(data, start):
            return True
        start = data.find(b";", start + 1)
    return False


def _special_at(data: bytes, start: int) -> bool:
    """Whether the statement after `start` (0, or the offset of a ';') needs a parse."""
    match = _WORD.match(data, start)
    if match is None:  # pragma: no cover - the pattern matches the empty string
        return True
    word = match.group(1).lower()
    if not word:
        # End of file, data or a quote after a ';', or a comment the gap pattern
        # cannot skip (a nested one): only the last is a reason to parse.
        if data.startswith(b"/*", match.end()):
            return True
        return start == 0 and match.end() == len(data)  # only comments: empty
    if word in _ALONE:
        return True
    if word in _QUALIFIED:
        end = data.find(b";", match.end())
        statement = data[match.end() : None if end < 0 else end]
        if _QUOTING.search(statement):
            # That ';' may be quoted, so the statement may go on: look to the end.
            return bool(_QUALIFIER.search(data, match.end()))
        return bool(_QUALIFIER.search(statement))
    return False


def _has_meta_command(data: bytes) -> bool:
    """A backslash first on its line, as psql meta-commands are written."""
    at = data.find(b"\\")
    while at >= 0:
        line_start = data.rfind(b"\n", 0, at) + 1
        if not data[line_start:at].strip(b" \t"):
            return True
        at = data.find(b"\\", at + 1)
    return False
