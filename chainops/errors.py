"""The exception hierarchy: every failure a user can cause, with its exit code.

Messages are one line: subject, what is wrong, then `; ` and what to do. They never
contain a connection string or password.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PENDING = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_UNEXPECTED = 70


def short(digest: str | None) -> str:
    """Shorten a hex digest for display."""
    return (digest or "-")[:12]


def escape_controls(text: str) -> str:
    """Show control, invisible and undecodable characters escaped, as Python would.

    File names and server messages may hold terminal escapes.
    """
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def one_line(text: str) -> str:
    """Fold a multi-line text into one line, control characters escaped."""
    return escape_controls(" ".join(text.split()))


def more(count: int, noun: str = "problem") -> str:
    """' (and N more problems)' after a first item, or nothing when there are none."""
    if count <= 0:
        return ""
    return f" (and {count} more {noun}{'s' if count > 1 else ''})"


def with_more(message: str, count: int, noun: str = "problem") -> str:
    """Put ' (and N more …)' after a message's subject, before its advice."""
    subject, _, advice = message.partition("; ")
    extra = more(count, noun)
    return f"{subject}{extra}; {advice}" if advice else f"{subject}{extra}"


class ChainopsError(Exception):
    """Base of every error chainops reports to a user; never raised directly."""

    exit_code = EXIT_UNEXPECTED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(ChainopsError):
    """A setting or argument is missing or invalid."""

    exit_code = 2


class MigrationFileError(ChainopsError):
    """A migration file is badly named, duplicated, unreadable or unparsable."""

    exit_code = 3


class DriftError(ChainopsError):
    """The files or the ledger differ from what was applied.

    `findings` carries every problem found (chain.Finding records) for the report.
    """

    exit_code = 4

    def __init__(self, message: str, findings: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings


class AppliedFileChanged(DriftError):
    """An applied file's content no longer matches its block."""


class AppliedFileMissing(DriftError):
    """An applied file was deleted or renamed."""


class LedgerTampered(DriftError):
    """The ledger rows no longer form a valid chain."""


class SchemaDrift(DriftError):
    """The live schema differs from the fingerprint the chain recorded."""


class OutOfOrder(DriftError):
    def __init__(self, path: str, applied_path: str) -> None:
        self.path, self.applied_path = path, applied_path
        super().__init__(
            f"{path} is pending but numbered below the applied {applied_path}; "
            "renumber it above the highest applied file in its folder, "
            "or pass --allow-out-of-order to apply it anyway"
        )


class PartiallyApplied(DriftError):
    """A non-transactional migration stopped midway; some statements are in place."""


class DatabaseAccessError(ChainopsError):
    """The database cannot be reached or locked."""

    exit_code = 5


class CannotConnect(DatabaseAccessError):
    pass


class LockTimeout(DatabaseAccessError):
    pass


class LockHeld(DatabaseAccessError):
    """Another run holds the ledger lock while this one only reads (a dry run)."""


class PermissionDenied(DatabaseAccessError):
    """The role lacks a privilege, or the database is read-only."""


ROLLED_BACK = "the migration was rolled back; fix the file and run inv migrate again"


class MigrationFailed(ChainopsError):
    """The server rejected a migration; it was rolled back and recorded as failed."""

    exit_code = 6

    def __init__(
        self,
        path: str,
        server_message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        sqlstate: str | None = None,
        hint: str | None = None,
        detail: str | None = None,
        advice: str = ROLLED_BACK,
    ) -> None:
        self.path, self.server_message = path, server_message
        self.line, self.column, self.sqlstate, self.hint = line, column, sqlstate, hint
        self.detail = detail
        where = path if line is None else f"{path}:{line}:{column or 1}"
        text = f"{where}: {server_error(server_message, sqlstate, detail, hint)}"
        super().__init__(f"{text}; {advice}")


def server_error(
    message: str, sqlstate: str | None, detail: str | None, hint: str | None
) -> str:
    """A server error as psql shows it, on one line: message, SQLSTATE, detail, hint."""
    text = one_line(message)
    if sqlstate:
        text += f" (SQLSTATE {sqlstate})"
    if detail:
        text += f"; detail: {one_line(detail)}"
    if hint:
        text += f"; hint: {one_line(hint)}"
    return text


class Refused(ChainopsError):
    """A command refused to act, for example a reset in production."""

    exit_code = 7


class RequirementNotApplied(Refused):
    """A file requires a migration that is not applied before it."""


class CheckFailed(Refused):
    """A file's `chainops:check` precondition does not hold; nothing of it ran."""


class LintFailed(ChainopsError):
    """The linter found error-level problems; in production migrate refuses them.

    `findings` holds the lint findings (lint.catalog.LintFinding) for the report.
    """

    exit_code = 8

    def __init__(self, message: str, findings: tuple[object, ...] = ()) -> None:
        super().__init__(message)
        self.findings = findings


class FleetIncomplete(ChainopsError):
    """Some targets of a fleet run did not reach the head, or did not verify."""

    exit_code = 9


class Interrupted(ChainopsError):
    """The run was stopped by a signal; the current migration was rolled back."""

    exit_code = EXIT_INTERRUPTED


EXIT_CODES: dict[str, int] = {
    "success": EXIT_OK,
    "pending (status --check)": EXIT_PENDING,
    "ConfigError": ConfigError.exit_code,
    "MigrationFileError": MigrationFileError.exit_code,
    "DriftError": DriftError.exit_code,
    "DatabaseAccessError": DatabaseAccessError.exit_code,
    "MigrationFailed": MigrationFailed.exit_code,
    "Refused": Refused.exit_code,
    "LintFailed": LintFailed.exit_code,
    "FleetIncomplete": FleetIncomplete.exit_code,
    "unexpected error": EXIT_UNEXPECTED,
    "interrupted (Ctrl-C)": EXIT_INTERRUPTED,
}
