"""Column types for the linter: advice on the types a column is given, which type
changes PostgreSQL makes without a rewrite, and which defaults are volatile."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ConstrType as Ct

from chainops.lint.locks import type_of

# Functions whose value differs per row: as a column default they force a rewrite.
VOLATILE = frozenset({
    "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4",
    "random", "random_normal", "clock_timestamp", "timeofday", "nextval",
    "txid_current", "setseed",
})  # fmt: skip
_SERIAL = frozenset({"serial", "serial4", "serial8", "bigserial", "smallserial"})
_SMALL_INT = frozenset({"int2", "int4", "serial", "serial4", "smallserial"})
_BINARY_SAME = {"varchar": "text", "text": "text", "numeric": "numeric"}
Kind = tuple[str, tuple[int, ...]]


def advise(table: str, col: ast.ColumnDef, primary: bool) -> list[tuple[str, str]]:
    """(rule, message) for a column's type: timestamptz, bigint keys, text."""
    name, modifiers = type_of(col.typeName)
    what = f"{table}.{col.colname}"
    found = []
    is_pk = primary or any(
        isinstance(c, ast.Constraint) and c.contype == Ct.CONSTR_PRIMARY
        for c in col.constraints or ()
    )
    if name == "timestamp":
        found.append(("prefer-timestamptz", f"{what} is timestamp without time zone"))
    elif name == "bpchar":
        found.append(("ban-char", f"{what} is char({mods(modifiers)})"))
    elif name == "varchar" and modifiers:
        found.append(("prefer-text", f"{what} is varchar({mods(modifiers)})"))
    if is_pk and name in _SMALL_INT:
        found.append(("prefer-bigint-pk", f"primary key {what} is {name}"))
    return found


def new_column(table: str, col: ast.ColumnDef, version: int) -> list[tuple[str, str]]:
    """(rule, message) for a column added to an existing table."""
    kinds = {
        c.contype: c for c in col.constraints or () if isinstance(c, ast.Constraint)
    }
    default = kinds.get(Ct.CONSTR_DEFAULT)
    what = f"{table}.{col.colname}"
    found = []
    if Ct.CONSTR_IDENTITY in kinds or type_of(col.typeName)[0] in _SERIAL:
        found.append(("volatile-default", f"{what} is filled per row (identity or "
                      f"serial): rewrites {table}"))  # fmt: skip
    elif Ct.CONSTR_GENERATED in kinds:
        found.append(("volatile-default", f"stored generated {what} rewrites {table}"))
    elif default is not None and is_null(default.raw_expr):
        pass
    elif default is not None and version < 11:
        found.append(("volatile-default", f"before PostgreSQL 11 the default of "
                      f"{what} rewrites {table}"))  # fmt: skip
    elif default is not None and (volatile := volatile_call(default.raw_expr)):
        found.append(("volatile-default", f"{volatile}() is volatile: the default of "
                      f"{what} rewrites {table}"))  # fmt: skip
    elif default is None and (Ct.CONSTR_NOTNULL in kinds or Ct.CONSTR_PRIMARY in kinds):
        found.append(("add-required-column", f"{what} is NOT NULL without a default: "
                      f"fails if {table} has rows"))  # fmt: skip
    if Ct.CONSTR_UNIQUE in kinds or Ct.CONSTR_PRIMARY in kinds:
        found.append(("unique-without-index", f"{what} builds a unique index on "
                      f"{table} under ACCESS EXCLUSIVE"))  # fmt: skip
    return found


def mods(mods: tuple[int, ...]) -> str:
    return ",".join(map(str, mods))


def show(kind: Kind) -> str:
    name, modifiers = kind
    return f"{name}({mods(modifiers)})" if modifiers else name


def no_rewrite(old: Kind, new: Kind) -> bool:
    """Binary-coercible changes PostgreSQL makes without rewriting the table."""
    (old_name, old_mods), (new_name, new_mods) = old, new
    if old == new:
        return True
    if old_name in ("varchar", "text") and new_name == "text":
        return True
    if old_name == new_name and not new_mods:  # dropping the limit
        return old_name in _BINARY_SAME or old_name == "varbit"
    if old_name == new_name == "varchar" and old_mods and new_mods:
        return new_mods[0] >= old_mods[0]
    if old_name == new_name == "numeric" and len(old_mods) == len(new_mods) == 2:
        # More digits with the same scale; a new scale changes stored values.
        return new_mods[1] == old_mods[1] and new_mods[0] >= old_mods[0]
    return old_name == "text" and new_name == "varchar" and not new_mods


def is_null(expr: ast.Node | None) -> bool:
    return isinstance(expr, ast.A_Const) and bool(expr.isnull)


def volatile_call(expr: ast.Node | None) -> str | None:
    """The first volatile function called in an expression, if any."""
    stack: list[object] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FuncCall) and node.funcname:
            name = str(getattr(node.funcname[-1], "sval", ""))
            if name in VOLATILE:
                return name
        if isinstance(node, ast.Node):
            stack.extend(getattr(node, attr) for attr in node)
        elif isinstance(node, tuple):
            stack.extend(node)
    return None


def not_null_check(con: ast.Constraint) -> str | None:
    """The column of a `CHECK (col IS NOT NULL)`, the form SET NOT NULL can use."""
    expr = con.raw_expr
    if (
        isinstance(expr, ast.NullTest)
        and expr.nulltesttype is not None
        and expr.nulltesttype.name == "IS_NOT_NULL"
        and isinstance(expr.arg, ast.ColumnRef)
    ):
        fields = expr.arg.fields or ()
        last = fields[-1] if fields else None
        return str(last.sval) if isinstance(last, ast.String) else None
    return None
