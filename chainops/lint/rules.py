"""The lint rules over pglast's parse tree: what each statement does to which table.

Pure: statements in, hits out. It tracks what the run so far created (so a table
made earlier in the same run is not "existing"), the NOT VALID constraints and enum
values a file added, and the column types it has seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pglast import ast
from pglast.enums import AlterTableType as At
from pglast.enums import ConstrType as Ct
from pglast.enums import ObjectType as Ot

from chainops.lint import locks, types
from chainops.lint.locks import Touch, dotted_name, table_key, type_of
from chainops.source.statements import describe_no_transaction

_CREATES = (ast.CreateSchemaStmt, ast.CreateSeqStmt, ast.CreateExtensionStmt)


@dataclass(frozen=True)
class Hit:
    """A rule firing on the statement at `index` of the file being linted."""

    rule: str
    index: int
    message: str


@dataclass
class Run:
    """What the statements so far did: kept across the files of one run."""

    created: set[str] = field(default_factory=set)  # tables made in this run
    indexes: set[str] = field(default_factory=set)  # indexes made in this run
    columns: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = field(
        default_factory=dict
    )
    not_null_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    validated: set[tuple[str, str]] = field(default_factory=set)  # (table, column)


@dataclass
class FileFacts:
    """One file's statements and how chainops applies it."""

    path: str
    nodes: list[ast.Node]
    texts: list[str]
    transactional: bool
    schema_category: bool
    version: int  # the target PostgreSQL major version
    no_transaction_directive: bool = False


def is_transactional(nodes: list[ast.Node]) -> bool:
    """Whether chainops applies these statements in one transaction (statements.py
    decides the same for applying)."""
    return not any(
        isinstance(node, ast.TransactionStmt) or describe_no_transaction(node)
        for node in nodes
    )


def check_file(facts: FileFacts, run: Run) -> tuple[list[Hit], list[tuple[int, Touch]]]:
    """Every hit in one file, and each statement's write-blocking locks on tables
    that existed before it; updates `run` with what the file creates."""
    checker = _Checker(facts, run)
    for index, node in enumerate(facts.nodes):
        checker.statement(index, node)
    checker.finish()
    return checker.hits, checker.blocking


class _Checker:
    def __init__(self, facts: FileFacts, run: Run) -> None:
        self.f, self.run = facts, run
        self.hits: list[Hit] = []
        self.not_valid: set[tuple[str, str]] = set()  # added NOT VALID in this file
        self.enum_values: list[tuple[int, str]] = []
        self.ddl_tables: set[str] = set()
        self.dml: list[tuple[int, str]] = []
        self.said_transaction = False
        self.blocking: list[tuple[int, Touch]] = []

    def hit(self, rule: str, index: int, message: str) -> None:
        self.hits.append(Hit(rule, index, message))

    def existing(self, table: str) -> bool:
        return table not in self.run.created

    def statement(self, i: int, node: ast.Node) -> None:
        for touch in locks.touches(node):
            if touch.blocks_writes and self.existing(touch.table):
                self.ddl_tables.add(touch.table)
                self.blocking.append((i, touch))
        if isinstance(node, ast.CreateStmt):
            self.create_table(i, node)
        elif isinstance(node, ast.IndexStmt):
            self.create_index(i, node)
        elif isinstance(node, ast.AlterTableStmt) and node.objtype == Ot.OBJECT_TABLE:
            table = table_key(node.relation)
            for cmd in node.cmds or ():
                if isinstance(cmd, ast.AlterTableCmd):
                    self.alter(i, table, cmd)
        elif isinstance(node, ast.DropStmt):
            self.drop(i, node)
        elif isinstance(node, (ast.UpdateStmt, ast.DeleteStmt)):
            self.dml_statement(i, node)
        elif isinstance(node, ast.InsertStmt) and node.selectStmt is not None:
            if (
                isinstance(node.selectStmt, ast.SelectStmt)
                and node.selectStmt.fromClause
            ):
                self.dml.append((i, table_key(node.relation)))
        else:
            self.other(i, node)
        if self.enum_values:
            self.enum_use(i)

    # --- tables and columns ---------------------------------------------------

    def create_table(self, i: int, node: ast.CreateStmt) -> None:
        table = table_key(node.relation)
        self.run.created.add(table)
        if not node.if_not_exists:
            self.hit("create-without-if-not-exists", i, f"CREATE TABLE {table}")
        keys: set[str] = set()  # a one-column key: a composite one holds references
        for element in node.tableElts or ():
            if (
                isinstance(element, ast.Constraint)
                and element.contype == Ct.CONSTR_PRIMARY
                and len(element.keys or ()) == 1
            ):
                keys.update(str(k.sval) for k in element.keys or ())
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                self.column(i, table, element, primary=element.colname in keys)

    def column(self, i: int, table: str, col: ast.ColumnDef, primary: bool) -> None:
        self.run.columns.setdefault(table, {})[str(col.colname)] = type_of(col.typeName)
        for rule, message in types.advise(table, col, primary):
            self.hit(rule, i, message)

    def add_column(self, i: int, table: str, cmd: ast.AlterTableCmd) -> None:
        col = cmd.def_
        if not isinstance(col, ast.ColumnDef):
            return
        self.column(i, table, col, primary=False)
        if not cmd.missing_ok:
            self.hit("create-without-if-not-exists", i, f"ADD COLUMN {col.colname}")
        if not self.existing(table):
            return
        for rule, message in types.new_column(table, col, self.f.version):
            self.hit(rule, i, message)

    def alter(self, i: int, table: str, cmd: ast.AlterTableCmd) -> None:
        kind, column = cmd.subtype, str(cmd.name or "")
        if kind == At.AT_AddColumn:
            self.add_column(i, table, cmd)
        elif kind == At.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            self.add_constraint(i, table, cmd.def_)
        elif kind == At.AT_ValidateConstraint:
            key = (table, column)
            if key in self.run.not_null_checks:
                self.run.validated.add((table, self.run.not_null_checks[key]))
            if key in self.not_valid and self.f.transactional:
                self.hit(
                    "validate-same-transaction",
                    i,
                    f"{column} on {table} was added NOT VALID in this file",
                )
        elif not self.existing(table):
            if kind == At.AT_AlterColumnType and isinstance(cmd.def_, ast.ColumnDef):
                self.run.columns.setdefault(table, {})[column] = type_of(
                    cmd.def_.typeName
                )
        elif kind == At.AT_AlterColumnType and isinstance(cmd.def_, ast.ColumnDef):
            self.type_change(i, table, column, cmd.def_)
        elif kind == At.AT_SetNotNull:
            if self.f.version < 12 or (table, column) not in self.run.validated:
                self.hit(
                    "set-not-null",
                    i,
                    f"{table}.{column} has no validated CHECK ({column} IS NOT NULL) "
                    "before it",
                )
        elif kind == At.AT_DropNotNull:
            self.hit("drop-not-null", i, f"{table}.{column} may now hold NULL")
        elif kind == At.AT_DropColumn:
            self.hit("drop-column", i, f"drops {table}.{column}")

    def type_change(self, i: int, table: str, column: str, col: ast.ColumnDef) -> None:
        new = type_of(col.typeName)
        old = self.run.columns.get(table, {}).get(column)
        self.run.columns.setdefault(table, {})[column] = new
        if col.raw_default is None and old is not None and types.no_rewrite(old, new):
            return
        was = f" from {types.show(old)}" if old else ""
        self.hit(
            "column-type-rewrite",
            i,
            f"{table}.{column}{was} to {types.show(new)} rewrites {table}",
        )

    def add_constraint(self, i: int, table: str, con: ast.Constraint) -> None:
        name = str(con.conname or "")
        checked = types.not_null_check(con) if con.contype == Ct.CONSTR_CHECK else None
        if checked:
            self.run.not_null_checks[(table, name)] = checked
            if not con.skip_validation:
                self.run.validated.add((table, checked))
        if con.skip_validation:
            self.not_valid.add((table, name))
        if not self.existing(table):
            return
        label = {Ct.CONSTR_FOREIGN: "FOREIGN KEY", Ct.CONSTR_CHECK: "CHECK"}
        if con.contype in label and not con.skip_validation:
            self.hit(
                "constraint-not-valid",
                i,
                f"{label[con.contype]} {name} scans {table} while it blocks writes",
            )
        if con.contype in (Ct.CONSTR_UNIQUE, Ct.CONSTR_PRIMARY) and not con.indexname:
            word = "UNIQUE" if con.contype == Ct.CONSTR_UNIQUE else "PRIMARY KEY"
            self.hit(
                "unique-without-index",
                i,
                f"{word} builds its index on {table} under ACCESS EXCLUSIVE",
            )

    # --- indexes, drops, renames ----------------------------------------------

    def create_index(self, i: int, node: ast.IndexStmt) -> None:
        table = table_key(node.relation)
        if node.idxname:
            self.run.indexes.add(table_key(node.relation, str(node.idxname)))
        if not node.if_not_exists:
            self.hit(
                "create-without-if-not-exists",
                i,
                f"CREATE INDEX {node.idxname or ''}".rstrip(),
            )
        if node.concurrent:
            self.concurrent(i)
        elif self.existing(table):
            self.hit(
                "index-not-concurrent",
                i,
                f"CREATE INDEX takes SHARE on {table}: writes wait until it is built",
            )

    def concurrent(self, i: int) -> None:
        others = [n for n in self.f.nodes if not isinstance(n, ast.VariableSetStmt)]
        if len(others) > 1 and not self.f.no_transaction_directive:
            self.hit(
                "concurrent-in-mixed-file", i,
                f"this file's {len(others) - 1} other statements run one by one "
                "without a transaction too: a failure leaves it partly applied "
                "(inv migrate --resume)",
            )  # fmt: skip

    def drop(self, i: int, node: ast.DropStmt) -> None:
        names = [dotted_name(o) for o in node.objects or ()]
        if node.removeType == Ot.OBJECT_INDEX:
            if node.concurrent:
                self.concurrent(i)
                return
            fresh = [n for n in names if n not in self.run.indexes]
            if fresh:
                self.hit(
                    "drop-index-not-concurrent",
                    i,
                    f"DROP INDEX {fresh[0]} takes ACCESS EXCLUSIVE on its table",
                )
        elif node.removeType == Ot.OBJECT_TABLE:
            for name in names:
                if self.existing(name):
                    self.hit("drop-table", i, f"drops table {name}")
        elif node.removeType == Ot.OBJECT_SCHEMA:
            self.hit("drop-schema", i, f"drops schema {', '.join(names)} and all in it")

    def dml_statement(self, i: int, node: ast.UpdateStmt | ast.DeleteStmt) -> None:
        table = table_key(node.relation)
        self.dml.append((i, table))
        if node.whereClause is None and self.f.schema_category and self.existing(table):
            verb = "UPDATE" if isinstance(node, ast.UpdateStmt) else "DELETE"
            self.hit("dml-without-where", i, f"{verb} {table} without WHERE")

    def other(self, i: int, node: ast.Node) -> None:
        if isinstance(node, ast.ReindexStmt) and not locks.option(
            node.params, "concurrently"
        ):
            self.hit(
                "reindex-not-concurrent", i, "REINDEX blocks writes while it rebuilds"
            )
        elif isinstance(node, ast.ReindexStmt):
            self.concurrent(i)
        elif isinstance(node, ast.TruncateStmt):
            tables = [table_key(r) for r in node.relations or ()]
            if any(self.existing(t) for t in tables):
                self.hit("truncate", i, f"empties {', '.join(tables)}")
        elif isinstance(node, ast.RenameStmt) and node.renameType == Ot.OBJECT_TABLE:
            self.hit(
                "rename-table",
                i,
                f"renames {table_key(node.relation)} to {node.newname}",
            )
        elif isinstance(node, ast.RenameStmt) and node.renameType == Ot.OBJECT_COLUMN:
            if node.relationType == Ot.OBJECT_TABLE and node.relation is not None:
                table = table_key(node.relation)
                self.hit(
                    "rename-column",
                    i,
                    f"renames {table}.{node.subname} to {node.newname}",
                )
        elif isinstance(node, ast.LockStmt):
            self.hit("lock-table", i, f"LOCK TABLE takes {locks.lock_name(node.mode)}")
        elif isinstance(node, ast.TransactionStmt) and not self.said_transaction:
            self.said_transaction = True
            self.hit(
                "transaction-control",
                i,
                "the file manages its own transaction: chainops applies it "
                "statement by statement, and its block separately",
            )
        elif isinstance(node, ast.VariableSetStmt) and not node.is_local and node.name:
            if (
                self.f.transactional
                and node.kind is not None
                and node.kind.name.startswith("VAR_SET_")
            ):
                self.hit(
                    "set-without-local",
                    i,
                    f"SET {node.name} lasts beyond this file's transaction",
                )
        elif isinstance(node, ast.AlterEnumStmt) and node.newVal and not node.oldVal:
            if self.f.transactional:
                self.enum_values.append((i, str(node.newVal)))
        elif isinstance(node, _CREATES) and not node.if_not_exists:
            words = " ".join(self.f.texts[i].split()[:3]).upper()
            self.hit("create-without-if-not-exists", i, words)

    def enum_use(self, i: int) -> None:
        for added_at, value in self.enum_values:
            quoted = "'" + value.replace("'", "''") + "'"
            if added_at < i and quoted in self.f.texts[i]:
                self.hit(
                    "enum-value-used-same-file",
                    i,
                    f"uses {quoted}, added by ALTER TYPE earlier in this transaction",
                )

    def finish(self) -> None:
        if not self.f.transactional:
            return
        for i, table in self.dml:
            if table in self.ddl_tables:
                self.hit(
                    "backfill-with-ddl",
                    i,
                    f"changes rows of {table}, which this transaction also locks "
                    "with DDL",
                )


__all__ = ["FileFacts", "Hit", "Run", "Touch", "check_file"]
