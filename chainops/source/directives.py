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
from chainops.model import Directives, MigrationFile
from chainops.source.files import locate

NAMES = ("no-transaction", "lock-timeout", "statement-timeout", "lint-ignore")
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
    found: dict[str, str | int] = {}
    for match in _LINE.finditer(text):
        name, value = match.group(1).lower(), match.group(2)
        line = locate(text, match.start())[0]
        if name == "lint-ignore":  # read by parse_lint_ignores, for the linter
            continue
        if name not in NAMES:
            raise MigrationFileError(
                f"{path}:{line}: unknown directive chainops:{match.group(1)}; "
                f"use one of {', '.join(NAMES)}"
            )
        if name == "no-transaction":
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
    )


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
