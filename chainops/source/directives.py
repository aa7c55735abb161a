"""The one parser of `-- chainops:` directives, the per-file options.

A directive is a line of its own: `-- chainops:name` or `-- chainops:name=value`. The
prefix and the name are read in any case; an unknown name or a bad value is refused
with the file's line, so a misspelt directive never goes silently unobeyed.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from chainops.config import DURATION
from chainops.errors import MigrationFileError
from chainops.model import Check, Directives, MigrationFile, Requirement
from chainops.source.files import locate, parse_name

NAMES = (
    "no-transaction",
    "lock-timeout",
    "statement-timeout",
    "lint-ignore",
    "requires",
    "check",
)
_LINE = re.compile(
    r"^[ \t]*--[ \t]*chainops:[ \t]*(\S*?)[ \t]*(?:=[ \t]*(\S*))?[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
# `-- chainops:lint-ignore=rule[,rule] reason`: the reason is free text.
_IGNORE = re.compile(
    r"^[ \t]*--[ \t]*chainops:[ \t]*lint-ignore[ \t]*(?:=[ \t]*([^\s]*))?(.*)$",
    re.MULTILINE | re.IGNORECASE,
)
_START = re.compile(rb"--[ \t]*chainops:", re.IGNORECASE)
# Every directive line, by its name alone: a misspelt one is refused, never ignored.
_ANY = re.compile(
    r"^[ \t]*--[ \t]*chainops:[ \t]*([^\s=]*)", re.MULTILINE | re.IGNORECASE
)
# `-- chainops:check=<query>`: the query is the rest of the line.
_CHECK = re.compile(
    r"^[ \t]*--[ \t]*chainops:[ \t]*check[ \t]*=?[ \t]*(.*?)[ \t]*$",
    re.MULTILINE | re.IGNORECASE,
)
_NUMBER = re.compile(r"#?([0-9]{4,6})")


NONE = Directives()


def has_directive(data: bytes) -> bool:
    """A quick test on the file's bytes: could it hold a directive at all?

    bytes.find runs at memory speed; a case-blind regex searching a big seed file
    for the same places would try every offset.
    """
    at = data.find(b"--")
    while at >= 0:
        if _START.match(data, at):
            return True
        at = data.find(b"--", at + 2)
    return False


def parse_directives(text: str, path: str) -> Directives:
    """Read every directive line of a file; raise MigrationFileError on a bad one."""
    for match in _ANY.finditer(text):
        if match.group(1).lower() not in NAMES:
            line = locate(text, match.start())[0]
            raise MigrationFileError(
                f"{path}:{line}: unknown directive chainops:{match.group(1)}; "
                f"use one of {', '.join(NAMES)}"
            )
    found: dict[str, str | int] = {}
    requires: list[Requirement] = []
    for match in _LINE.finditer(text):
        name, value = match.group(1).lower(), match.group(2)
        line = locate(text, match.start())[0]
        if name in ("lint-ignore", "check"):  # read by their own parsers
            continue
        if name == "requires":
            requires.append(_requirement(value, path, line))
        elif name == "no-transaction":
            if value is not None:
                raise MigrationFileError(
                    f"{path}:{line}: chainops:no-transaction takes no value; "
                    "write the line as -- chainops:no-transaction"
                )
            found[name] = line
        elif value is None or not DURATION.match(value):
            raise MigrationFileError(
                f"{path}:{line}: chainops:{name}={value or ''} is not a duration; "
                "use for example 30s, 500ms or 2min"
            )
        else:
            found[name] = value
    no_tx = found.get("no-transaction")
    lock, statement = found.get("lock-timeout"), found.get("statement-timeout")
    return Directives(
        no_tx if isinstance(no_tx, int) else None,
        str(lock) if lock is not None else None,
        str(statement) if statement is not None else None,
        _checks(text, path),
        tuple(requires),
    )


def _requirement(value: str | None, path: str, line: int) -> Requirement:
    """`requires=1003`, `requires=#1003` or `requires=001-schema/003-x.sql`."""
    if value and (number := _NUMBER.fullmatch(value)):
        return Requirement(line, int(number.group(1)), None)
    category, _, name = (value or "").partition("/")
    if parse_name(category, name) is not None:
        return Requirement(line, None, value)
    raise MigrationFileError(
        f"{path}:{line}: chainops:requires={value or ''} is neither a migration "
        "number nor a path; write for example requires=1003 or "
        "requires=001-schema/003-add-users.sql"
    )


def _checks(text: str, path: str) -> tuple[Check, ...]:
    """Each `check=<query>` line, the query located for the server's errors."""
    found = []
    for match in _CHECK.finditer(text):
        line = locate(text, match.start())[0]
        if not match.group(1):
            raise MigrationFileError(
                f"{path}:{line}: chainops:check needs a query that returns true, "
                "for example -- chainops:check=SELECT count(*) = 0 FROM t"
            )
        found.append(Check(line, match.start(1), match.group(1)))
    return tuple(found)


class LintIgnore(NamedTuple):
    """A `-- chainops:lint-ignore=<rule> <reason>` line; the linter judges it."""

    offset: int  # where the line starts in the text
    line: int
    rules: tuple[str, ...]
    reason: str


def parse_lint_ignores(text: str) -> list[LintIgnore]:
    """Every lint-ignore line, also those without rule or reason (a lint finding)."""
    found = []
    for match in _IGNORE.finditer(text):
        rules = tuple(r for r in (match.group(1) or "").lower().split(",") if r)
        line = locate(text, match.start())[0]
        found.append(LintIgnore(match.start(), line, rules, match.group(2).strip()))
    return found


def read_directives(file: MigrationFile) -> Directives:
    """A file's directives; a quick look at its bytes spares a big file the decode."""
    return parse_directives(file.text, file.path) if has_directive(file.data) else NONE
