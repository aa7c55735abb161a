"""Split and classify the SQL of one migration file with pglast.

It reads text it is given, never files or a database; trees come from
`syntax_tree.parse`, which gives what pglast's `parse_sql` gives, faster.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pglast import ast, enums
from pglast import parser as pg_parser
from pglast.parser import ParseError, split

from chainops.errors import MigrationFileError, one_line
from chainops.source import scan, syntax_tree
from chainops.source.directives import parse_directives
from chainops.source.files import locate
from chainops.source.sql_text import SPACE as _SPACE
from chainops.source.sql_text import Cut, cut
from chainops.source.sql_text import skip_gap as _skip_gap

log = logging.getLogger(__name__)

PARSE_LIMIT = 1 << 20
"""Texts longer than this many characters are parsed only if the prefilter matches."""

_META = re.compile(r"\\[^\s\\]*")
# Statements starting with these are plain DML: never refused in a transaction, and
# often huge, so they are not turned into Python trees. No other statement's first
# keyword begins with one of these words.
_DML = ("(", "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "WITH", "VALUES", "TABLE")
_LOAD_DATA = (
    "load the data with COPY ... FROM stdin, its data lines after it and a line \\. "
    "(as pg_dump writes them), or with INSERT"
)
_FALSE = frozenset({"false", "off", "0"})
_TRANSACTION_WORDS = {"START": "START TRANSACTION", "PREPARE": "PREPARE TRANSACTION"}
_REINDEX_MANY = ("_SCHEMA", "_SYSTEM", "_DATABASE")  # they commit per table
_SIMPLE = {
    ast.CreatedbStmt: "CREATE DATABASE",
    ast.DropdbStmt: "DROP DATABASE",
    ast.CreateTableSpaceStmt: "CREATE TABLESPACE",
    ast.DropTableSpaceStmt: "DROP TABLESPACE",
    ast.AlterSystemStmt: "ALTER SYSTEM",
    # Whether the subscription still has a slot is only known to the server.
    ast.DropSubscriptionStmt: "DROP SUBSCRIPTION",
}


@dataclass(frozen=True)
class Statement:
    """One statement as written, located in the file for messages."""

    text: str
    offset: int
    line: int
    column: int
    no_transaction: bool
    transaction_control: bool
    copy: Cut | None = None  # a COPY … FROM stdin: where its data lies in the file


@dataclass(frozen=True)
class Plan:
    """How to apply a migration: as one message in one transaction, or one by one.

    `statements` is empty when a large file was deliberately not parsed.
    """

    transactional: bool
    reason: str | None
    statements: tuple[Statement, ...]


class EmptyMigration(MigrationFileError):  # noqa: N818 - leaves name the condition
    """The file holds no SQL yet, like a fresh template; a watcher waits for more."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(
            f"{path} has no SQL statements yet; write the migration or delete the file"
        )


def plan_migration(text: str, path: str) -> Plan:
    """Decide whether `text` can be sent as one message inside one transaction.

    A large file is parsed only if `prescan` finds something that could make it
    non-transactional: sending it as it is needs no split.
    """
    if len(text) > PARSE_LIMIT and not scan.needs_parse(text.encode()):
        log.debug("%s: %d characters, nothing to split; not parsed", path, len(text))
        return Plan(transactional=True, reason=None, statements=())
    classified = _classify_all(text, path)
    reason = None
    for statement, label in classified:
        if label:
            reason = f"{label} at line {statement.line}"
            if statement.transaction_control:
                reason = f"manages its own transaction ({reason})"
            break
    if line := parse_directives(text, path).no_transaction_line:
        reason = f"-- chainops:no-transaction directive at line {line}"
    statements = tuple(statement for statement, _ in classified)
    return Plan(transactional=reason is None, reason=reason, statements=statements)


def check_syntax(text: str, path: str) -> None:
    """Parse all of `text` and its directives; raise MigrationFileError if chainops
    cannot apply it."""
    parse_directives(text, path)
    _classify_all(text, path)


def _classify_all(text: str, path: str) -> list[tuple[Statement, str | None]]:
    """Split `text` and pair each statement with the label of what it is, if special."""
    if (nul := text.find("\0")) >= 0:  # the parser would stop reading there
        line, column = locate(text, nul)
        raise MigrationFileError(
            f"{path}:{line}:{column}: NUL character in the SQL; PostgreSQL does not "
            "accept it, so remove it"
        )
    pieces = _split_around_copies(text, path)
    if not pieces:
        raise EmptyMigration(path)
    result: list[tuple[Statement, str | None]] = []
    line, line_start, scanned = 1, 0, 0
    for offset, source, copy in pieces:
        # Count lines incrementally: files may hold hundreds of thousands of statements.
        if newlines := text.count("\n", scanned, offset):
            line += newlines
            line_start = text.rfind("\n", scanned, offset) + 1
        scanned = offset
        column = offset - line_start + 1
        try:
            no_transaction, transaction = _classify(
                source, f"{path}:{line}:{column}", has_data=copy is not None
            )
        except ParseError as err:  # pragma: no cover - split parsed it already
            raise _explain(text, path, err, offset) from err
        no_tx, control = no_transaction is not None, transaction is not None
        statement = Statement(source, offset, line, column, no_tx, control, copy)
        result.append((statement, transaction or no_transaction))
    return result


def _split_around_copies(text: str, path: str) -> list[tuple[int, str, Cut | None]]:
    """Each statement's offset and source, a COPY … FROM stdin with its data's place.

    The SQL between the data is split piece by piece; the data is never parsed.
    """
    cuts = cut(text, _ends_in_copy_from_stdin, path)
    found: list[tuple[int, str, Cut | None]] = []
    for one in cuts:
        pieces = _split_or_explain(text, one.sql_start, one.sql_end, path)
        found.extend((offset, source, None) for offset, source in pieces[:-1])
        found.append((*pieces[-1], one))
    tail = cuts[-1].resume if cuts else 0
    pieces = _split_or_explain(text, tail, len(text), path)
    found.extend((offset, source, None) for offset, source in pieces)
    return found


def _split_or_explain(
    text: str, start: int, end: int, path: str
) -> list[tuple[int, str]]:
    """Split text[start:end]; offsets and errors placed in the whole text."""
    try:
        return [(start + offset, source) for offset, source in _split(text[start:end])]
    except ParseError as err:
        raise _explain(text, path, err, start) from err


def _ends_in_copy_from_stdin(sql: str) -> int | None:
    """Where the last statement of `sql` starts if it is COPY … FROM stdin."""
    try:
        pieces = _split(sql)
    except ParseError:
        return None
    start, source = pieces[-1] if pieces else (0, "")
    node = syntax_tree.parse(source)[0].stmt if source[:4].upper() == "COPY" else None
    if isinstance(node, ast.CopyStmt) and node.is_from and _refuse_copy(node, ""):
        return start
    return None


def _classify(
    source: str, where: str, *, has_data: bool = False
) -> tuple[str | None, str | None]:
    """Label a statement refused in a transaction block, or one controlling it."""
    if source[:6].upper().startswith(_DML):
        return None, None
    node = syntax_tree.parse(source)[0].stmt
    if isinstance(node, ast.CopyStmt) and not has_data:
        refusal = _refuse_copy(node, where)
        if refusal is not None:
            raise refusal
    if isinstance(node, ast.TransactionStmt) and node.kind is not None:
        label = node.kind.name.removeprefix("TRANS_STMT_").replace("_", " ")
        return None, _TRANSACTION_WORDS.get(label, label)
    return describe_no_transaction(node), None


def parse_tree(text: str, path: str) -> list[tuple[int, int, ast.Node]]:
    """Each statement's start and end (character offsets, the comments before it
    skipped) with its parse tree, for the linter; one parser call for the file."""
    cuts = cut(text, _ends_in_copy_from_stdin, path)  # COPY data is not SQL
    regions = [(c.sql_start, c.sql_end) for c in cuts]
    regions.append((cuts[-1].resume if cuts else 0, len(text)))
    found: list[tuple[int, int, ast.Node]] = []
    for start, stop in regions:
        try:
            raws = syntax_tree.parse(text[start:stop])
        except ParseError:
            check_syntax(text, path)  # raises the error placed at its line and column
            raise  # pragma: no cover - check_syntax refuses what parse_sql refused
        for raw in raws:  # pglast gives character offsets; a length of 0: the end
            begin = start + (raw.stmt_location or 0)
            end = begin + raw.stmt_len if raw.stmt_len else stop
            if raw.stmt is not None:
                found.append((_skip_gap(text, begin), end, raw.stmt))
    return found


def tokens_of(sql: str) -> list[str]:
    """PostgreSQL's tokens of a short text, with the text between them kept as
    tokens of their own: "".join(tokens_of(sql)) == sql."""
    data = sql.encode("utf-8")
    found: list[str] = []
    position = 0
    for token in pg_parser.scan(sql):  # byte offsets, the end inclusive
        if token.start > position:
            found.append(data[position : token.start].decode("utf-8"))
        found.append(data[token.start : token.end + 1].decode("utf-8"))
        position = token.end + 1
    if position < len(data):
        found.append(data[position:].decode("utf-8"))
    return found


def _split(text: str) -> list[tuple[int, str]]:
    """Return (character offset, source) of each statement, without its ';'.

    pglast's own slices map UTF-8 offsets to characters in quadratic time, so the
    statements it returns are found again by skipping what lies between them.
    Measured on 2,000 and 8,000 one-line INSERTs with accents: this 8 and 127 ms,
    split(text, True, True) 147 and 3,421 ms, pglast.parser.scan 4 s and 67 s.
    """
    found: list[tuple[int, str]] = []
    position = 0
    for source in split(text):  # the full raw parser, so it rejects any syntax error
        start = _skip_gap(text, position)
        if not text.startswith(source, start):
            log.debug("statement boundaries not found; using pglast slices")
            return [(piece.start, text[piece]) for piece in split(text, True, True)]
        end = start + len(source)
        # pglast strips Unicode spaces too, but they belong to a trailing identifier.
        while end < len(text) and text[end].isspace() and text[end] not in _SPACE:
            end += 1
        found.append((start, text[start:end]))
        position = end
    return found


def describe_no_transaction(node: ast.Node | None) -> str | None:
    """Name the statement if PostgreSQL refuses to run it inside a transaction block."""
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt):
        if _option(node.params, "concurrently", default=False):
            return "REINDEX CONCURRENTLY"
        kind = node.kind.name if node.kind is not None else ""
        return kind.replace("_OBJECT_", " ") if kind.endswith(_REINDEX_MANY) else None
    if isinstance(node, ast.VacuumStmt):  # plain ANALYZE shares the node
        return "VACUUM" if node.is_vacuumcmd else None
    if isinstance(node, ast.ClusterStmt):
        return "CLUSTER without a table name" if node.relation is None else None
    if isinstance(node, ast.AlterDatabaseStmt):
        moves = _option(node.options, "tablespace", default=False)
        return "ALTER DATABASE SET TABLESPACE" if moves else None
    if isinstance(node, ast.CreateSubscriptionStmt):
        connect = _option(node.options, "connect", default=True)
        creates_slot = _option(node.options, "create_slot", default=connect)
        return "CREATE SUBSCRIPTION creating a slot" if creates_slot else None
    if isinstance(node, ast.AlterSubscriptionStmt):
        return _describe_alter_subscription(node)
    if isinstance(node, ast.AlterTableStmt):
        for command in node.cmds or ():
            if (
                isinstance(command, ast.AlterTableCmd)
                and command.subtype == enums.AlterTableType.AT_DetachPartition
                and isinstance(command.def_, ast.PartitionCmd)
                and command.def_.concurrent
            ):
                return "DETACH PARTITION CONCURRENTLY"
        return None
    if isinstance(node, ast.DiscardStmt):
        return "DISCARD ALL" if node.target == enums.DiscardMode.DISCARD_ALL else None
    return _SIMPLE.get(type(node))


def _describe_alter_subscription(node: ast.AlterSubscriptionStmt) -> str | None:
    """Name the ALTER SUBSCRIPTION forms that refresh or touch the remote slot."""
    if node.kind == enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_REFRESH:
        return "ALTER SUBSCRIPTION ... REFRESH"
    if node.kind in (
        enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_SET_PUBLICATION,
        enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_ADD_PUBLICATION,
        enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_DROP_PUBLICATION,
    ) and _option(node.options, "refresh", default=True):
        return "ALTER SUBSCRIPTION with refresh"
    if node.kind == enums.AlterSubscriptionType.ALTER_SUBSCRIPTION_OPTIONS and any(
        _option(node.options, name, default=False) for name in ("failover", "two_phase")
    ):
        return "ALTER SUBSCRIPTION ... SET (failover or two_phase)"
    return None


def _option(options: tuple[object, ...] | None, name: str, *, default: bool) -> bool:
    """Read a boolean DefElem option the way PostgreSQL's defGetBoolean does."""
    for option in options or ():
        if not isinstance(option, ast.DefElem) or option.defname != name:
            continue
        arg = option.arg
        if arg is None:  # a bare option name means true
            return True
        if isinstance(arg, ast.Integer):
            return arg.ival != 0
        if isinstance(arg, ast.Boolean):
            return bool(arg.boolval)
        if isinstance(arg, ast.TypeName) and arg.names:  # `off` parses as a type name
            arg = arg.names[-1]
        return not (isinstance(arg, ast.String) and str(arg.sval).lower() in _FALSE)
    return default


def _refuse_copy(node: ast.CopyStmt, where: str) -> MigrationFileError | None:
    """Refuse COPY with STDIN or STDOUT: they need a client-side data stream."""
    if node.filename is not None or node.is_program:
        return None
    if node.is_from:
        return MigrationFileError(
            f"{where}: COPY ... FROM STDIN has no data after it; end the statement's "
            "line with its ';', put the data on the lines after it and end them with "
            "a line \\. (as pg_dump writes them)"
        )
    return MigrationFileError(
        f"{where}: COPY ... TO STDOUT is not supported; a migration cannot send rows "
        "back to chainops, so remove it or COPY ... TO a file on the server"
    )


def _explain(
    text: str, path: str, err: ParseError, base: int = 0
) -> MigrationFileError:
    """Turn a pglast error into one line pointing at the offending position."""
    index = err.args[1] if len(err.args) > 1 else None
    # pglast reports a character index already; None means the end of the input.
    offset = base + index if isinstance(index, int) else len(text.rstrip())
    line, column = locate(text, offset)
    where = f"{path}:{line}:{column}"
    # psql would have sent the lines after COPY ... FROM STDIN as its data.
    prefix = text[: text.rfind("\n", 0, offset) + 1]
    try:
        pieces = _split(prefix)
    except ParseError:
        pieces = []
    start, source = pieces[-1] if pieces else (0, "")
    node = syntax_tree.parse(source)[0].stmt if source[:4].upper() == "COPY" else None
    if isinstance(node, ast.CopyStmt) and node.is_from:
        copy_line, copy_column = locate(text, start)
        if refusal := _refuse_copy(node, f"{path}:{copy_line}:{copy_column}"):
            return refusal
    meta = _META.match(text, offset)
    if meta:
        advice = "write the SQL it stands for inline"
        if meta.group().lower() == "\\copy":
            advice = _LOAD_DATA
        elif meta.group() == "\\.":
            advice = "a line \\. ends the data of a COPY ... FROM stdin; put that "
            advice += "statement, ending its line, before the data"
        return MigrationFileError(
            f"{where}: psql meta-command {one_line(meta.group())} is not supported; "
            f"chainops sends plain SQL to the server, so {advice}"
        )
    message = one_line(str(err.args[0]))  # the token quoted may span lines
    if len(message) > 120:
        message = message[:117] + "..."
    return MigrationFileError(
        f"{where}: {message}; fix the SQL and run inv migrate again"
    )
