"""Exit codes, one-line messages, and turning findings into the right error."""

from __future__ import annotations

import inspect

import pytest

from chainops import errors, verify
from chainops.errors import (
    AppliedFileChanged,
    AppliedFileMissing,
    CannotConnect,
    ChainopsError,
    CheckFailed,
    ConfigError,
    DatabaseAccessError,
    DriftError,
    FleetIncomplete,
    Interrupted,
    LedgerTampered,
    LintFailed,
    LockHeld,
    LockTimeout,
    MigrationFailed,
    MigrationFileError,
    OutOfOrder,
    PartiallyApplied,
    PermissionDenied,
    Refused,
    RequirementNotApplied,
    SchemaDrift,
)
from chainops.model import Finding

# The documented table (STYLE.md section 2 and the README's exit codes).
DOCUMENTED_EXIT_CODES = {
    ConfigError: 2,
    MigrationFileError: 3,
    DriftError: 4,
    AppliedFileChanged: 4,
    AppliedFileMissing: 4,
    LedgerTampered: 4,
    OutOfOrder: 4,
    PartiallyApplied: 4,
    SchemaDrift: 4,
    DatabaseAccessError: 5,
    CannotConnect: 5,
    LockTimeout: 5,
    LockHeld: 5,
    PermissionDenied: 5,
    MigrationFailed: 6,
    Refused: 7,
    RequirementNotApplied: 7,
    CheckFailed: 7,
    LintFailed: 8,
    FleetIncomplete: 9,
    Interrupted: 130,
}


@pytest.mark.parametrize(
    ("cls", "code"),
    [pytest.param(c, n, id=c.__name__) for c, n in DOCUMENTED_EXIT_CODES.items()],
)
def test_exit_code_matches_documented_table_when_error_is_raised(cls, code):
    assert cls.exit_code == code
    assert issubclass(cls, ChainopsError)


def test_exit_code_table_covers_every_error_class_when_one_is_added():
    defined = {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, ChainopsError) and obj is not ChainopsError
    }

    assert defined == set(DOCUMENTED_EXIT_CODES), (
        "add the new error class and its exit code to DOCUMENTED_EXIT_CODES "
        "and to the documentation"
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("success", 0),
        ("pending (status --check)", 1),
        ("ConfigError", 2),
        ("MigrationFileError", 3),
        ("DriftError", 4),
        ("DatabaseAccessError", 5),
        ("MigrationFailed", 6),
        ("Refused", 7),
        ("LintFailed", 8),
        ("unexpected error", 70),
        ("interrupted (Ctrl-C)", 130),
    ],
)
def test_exit_codes_table_lists_documented_status_when_rendered_for_help(name, code):
    assert errors.EXIT_CODES[name] == code


@pytest.mark.parametrize(
    "leaf",
    [AppliedFileChanged, AppliedFileMissing, LedgerTampered, PartiallyApplied],
)
def test_drift_leaf_is_caught_as_drift_error_when_handled_by_category(leaf):
    with pytest.raises(DriftError) as caught:
        raise leaf("001-schema/001-a.sql was edited; restore it")

    assert caught.value.findings == ()


def test_out_of_order_names_both_files_when_raised():
    err = OutOfOrder("001-schema/002-b.sql", "001-schema/003-c.sql")

    message = str(err)
    assert message.startswith("001-schema/002-b.sql ")
    assert "001-schema/003-c.sql" in message
    assert "--allow-out-of-order" in message
    assert "\n" not in message


# --- MigrationFailed -------------------------------------------------------------


def test_migration_failed_names_position_sqlstate_and_hint_when_server_gives_them():
    err = MigrationFailed(
        "001-schema/003-orders.sql",
        'syntax error at or near "TABL"',
        line=3,
        column=8,
        sqlstate="42601",
        hint="check the spelling of TABLE",
    )

    message = str(err)
    assert message.startswith("001-schema/003-orders.sql:3:8: ")
    assert 'syntax error at or near "TABL"' in message
    assert "SQLSTATE 42601" in message
    assert "hint: check the spelling of TABLE" in message
    assert "rolled back" in message
    assert "\n" not in message
    assert (err.path, err.line, err.column, err.sqlstate) == (
        "001-schema/003-orders.sql",
        3,
        8,
        "42601",
    )


@pytest.mark.parametrize(
    ("line", "column", "prefix"),
    [
        (None, None, "001-schema/003-orders.sql: "),
        (7, None, "001-schema/003-orders.sql:7:1: "),
        (7, 12, "001-schema/003-orders.sql:7:12: "),
    ],
)
def test_migration_failed_starts_with_location_when_position_is_partial(
    line, column, prefix
):
    err = MigrationFailed(
        "001-schema/003-orders.sql", "division by zero", line=line, column=column
    )

    assert str(err).startswith(prefix)
    assert "SQLSTATE" not in str(err)
    assert "hint" not in str(err)


@pytest.mark.parametrize(
    ("server_message", "hint"),
    [
        pytest.param(
            "balance check failed\naccount 7 is negative",
            None,
            id="multi-line-message",
        ),
        pytest.param(
            "balance check failed",
            "run the repair script first,\nthen apply again",
            id="multi-line-hint",
        ),
    ],
)
def test_migration_failed_stays_one_line_when_server_text_has_line_breaks(
    server_message, hint
):
    # RAISE EXCEPTION E'...\n...' USING HINT = E'...\n...' in a migration gives the
    # server's message and hint line breaks; the error must still be one line.
    err = MigrationFailed(
        "001-schema/003-orders.sql",
        server_message,
        line=2,
        column=1,
        sqlstate="P0001",
        hint=hint,
    )

    message = str(err)
    assert "\n" not in message
    assert message.startswith("001-schema/003-orders.sql:2:1: ")


# --- raise_findings --------------------------------------------------------------


def finding(kind: str, n: int = 1) -> Finding:
    path = f"001-schema/00{n}-x.sql"
    if kind == "tampered":
        message = f"the ledger: block {n} ({path}) was altered; restore the ledger"
    else:
        message = f"{path} was {kind} after it was applied; restore it from git"
    return Finding(kind, path, message, expected="a" * 64, current="b" * 64)


def test_raise_findings_returns_when_there_are_no_findings():
    assert verify.raise_findings([]) is None


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("changed", AppliedFileChanged),
        ("missing", AppliedFileMissing),
        ("renamed", AppliedFileMissing),
        ("tampered", LedgerTampered),
    ],
)
def test_raise_findings_raises_leaf_class_when_there_is_one_finding(kind, cls):
    only = finding(kind)

    with pytest.raises(cls) as caught:
        verify.raise_findings([only])

    err = caught.value
    assert type(err) is cls
    assert err.exit_code == 4
    assert err.findings == (only,)
    message = str(err)
    assert message.startswith(only.message.split("; ")[0])
    assert message.endswith("; nothing was applied")
    assert "more problem" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("count", "mention"),
    [
        pytest.param(2, "(and 1 more problem)", id="one-more"),
        pytest.param(3, "(and 2 more problems)", id="two-more"),
        pytest.param(12, "(and 11 more problems)", id="eleven-more"),
    ],
)
def test_raise_findings_mentions_the_rest_when_there_are_several(count, mention):
    found = [finding("changed", 1)] + [
        finding("tampered", n) for n in range(2, count + 1)
    ]

    with pytest.raises(AppliedFileChanged) as caught:
        verify.raise_findings(found)

    err = caught.value
    assert err.findings == tuple(found)
    message = str(err)
    assert message.startswith("001-schema/001-x.sql was changed after it was applied")
    assert mention in message
    # The count sits with the subject, before the advice.
    assert message.index(mention) < message.index("; restore it from git")
    assert message.endswith("; nothing was applied")
    assert "\n" not in message


def test_raise_findings_appends_count_when_first_message_has_no_advice():
    bare = Finding("tampered", "001-schema/001-x.sql", "the ledger: block 1 is odd")

    with pytest.raises(LedgerTampered) as caught:
        verify.raise_findings([bare, finding("tampered", 2), finding("tampered", 3)])

    assert str(caught.value) == (
        "the ledger: block 1 is odd (and 2 more problems); nothing was applied"
    )
