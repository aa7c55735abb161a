"""The module map in docs/architecture.md, enforced: imports flow down, third-party
packages stay with their owners, no prints, no SQL built with string formatting.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import pytest

import chainops

PACKAGE_DIR = Path(chainops.__file__).resolve().parent
MAP = PACKAGE_DIR.parent / "docs" / "architecture.md"
PACKAGE = "__init__"  # the package itself: __version__ and a lazy re-export of api
MAY_PRINT = {"cli", "dev.watch", "output"}
_ROW = re.compile(r"^\| `([\w.]+)` \|[^|]*\|([^|]*)\|$")


def read_map(text: str) -> dict[str, tuple[int, frozenset[str]]]:
    """Module → (row, third-party packages it may import), from the map's table."""
    rows: dict[str, tuple[int, frozenset[str]]] = {}
    for line in text.splitlines():
        if match := _ROW.match(line.strip()):
            allowed = re.findall(r"`([\w.]+)`", match.group(2))
            packages = frozenset(name.split(".")[0] for name in allowed)
            rows[match.group(1)] = (len(rows), packages)
    return rows


LAYERS = read_map(MAP.read_text(encoding="utf-8"))


def module_files() -> dict[str, Path]:
    """Every module in the package by dotted name; a package by its own name."""
    found = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = module_files()


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


_walked: dict[int, tuple[ast.AST, tuple[ast.AST, ...]]] = {}


def walk(tree: ast.AST) -> tuple[ast.AST, ...]:
    """ast.walk, remembered per tree: several tests walk every module."""
    found = _walked.get(id(tree))
    if found is None or found[0] is not tree:  # an id reused by a newer tree
        found = _walked[id(tree)] = (tree, tuple(ast.walk(tree)))
    return found[1]


def _resolve(dotted: str, names: list[str]) -> list[str]:
    """The modules `from chainops.<dotted> import <names>` reaches."""
    found = []
    for name in names:
        candidate = f"{dotted}.{name}" if dotted else name
        if candidate in MODULES or candidate in LAYERS:
            found.append(candidate)
        else:
            found.append(dotted or PACKAGE)
    return found


def chainops_imports(tree: ast.AST) -> list[tuple[str, int]]:
    """(module, line) for every chainops module imported anywhere in the tree."""
    found: list[tuple[str, int]] = []
    for node in walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head, _, rest = alias.name.partition(".")
                if head == "chainops":
                    found.append((rest or PACKAGE, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            head, _, rest = node.module.partition(".")
            if head == "chainops":
                names = [alias.name for alias in node.names]
                found += [(m, node.lineno) for m in _resolve(rest, names)]
    return found


def third_party_imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return {
        n
        for n in names
        if n not in sys.stdlib_module_names and n not in ("chainops", "__future__")
    }


# --- the map ---------------------------------------------------------------------


def test_map_lists_every_module_when_modules_are_added_or_removed():
    unlisted = sorted(m for m in MODULES if m not in LAYERS and m != PACKAGE)
    stale = sorted(m for m in LAYERS if m not in MODULES)

    assert not unlisted, (
        f"modules missing from docs/architecture.md: {unlisted}; add a row for each, "
        "below everything it imports"
    )
    assert not stale, f"docs/architecture.md lists modules that do not exist: {stale}"


def test_modules_import_only_rows_above_when_walked_at_any_depth():
    upward = [
        f"chainops/{module} line {line} imports {target}"
        for module in sorted(LAYERS, key=lambda m: LAYERS[m][0])
        if module in MODULES
        for target, line in chainops_imports(parse(MODULES[module]))
        if target != PACKAGE
        and LAYERS.get(target, (len(LAYERS), None))[0] >= LAYERS[module][0]
    ]

    assert not upward, (
        f"imports against the map: {upward}; move the code down the map or pass the "
        "value in (docs/architecture.md)"
    )


def test_modules_import_only_their_own_third_party_packages_when_scanned():
    foreign = {
        module: sorted(extra)
        for module in sorted(MODULES)
        if module in LAYERS
        and (extra := third_party_imports(parse(MODULES[module])) - LAYERS[module][1])
    }

    assert not foreign, (
        f"third-party imports the map does not allow: {foreign}; route them through "
        "the module that owns the package (docs/architecture.md)"
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


def test_read_map_fails_the_layering_when_a_row_moves_below_its_importer():
    text = (
        "| `store.ledger` | tables | `psycopg` |\n"
        "| `model` | records | |\n"
        "| `plan` | pure | |\n"
    )
    rows = read_map(text)

    assert rows == {
        "store.ledger": (0, frozenset({"psycopg"})),
        "model": (1, frozenset()),
        "plan": (2, frozenset()),
    }
    assert rows["model"][0] > rows["store.ledger"][0]  # ledger importing model: upward


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import chainops.store.ledger", ["store.ledger"]),
        ("import chainops.model as m", ["model"]),
        ("from chainops.errors import ConfigError", ["errors"]),
        ("from chainops import api, plan", ["api", "plan"]),
        ("from chainops.store import ledger, lock", ["store.ledger", "store.lock"]),
        ("from chainops import __version__", [PACKAGE]),
        ("import chainops", [PACKAGE]),
        ("def f():\n    from chainops import cli\n", ["cli"]),
        (
            "if TYPE_CHECKING:\n    from chainops.source.statements import S\n",
            ["source.statements"],
        ),
        ("import chainops_extra\nfrom os import path", []),
    ],
)
def test_chainops_imports_finds_module_when_import_is_written_any_way(source, expected):
    assert [target for target, _ in chainops_imports(ast.parse(source))] == expected


# --- output ----------------------------------------------------------------------


def writes_to_terminal(tree: ast.AST) -> list[int]:
    """Lines that call print() or sys.stdout/sys.stderr.write()."""
    lines = []
    for node in walk(tree):
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
        f"chainops/{m}": lines
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
    for node in walk(scope):
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
        f"chainops/{m}": lines
        for m in sorted(MODULES)
        if (lines := formatted_sql(parse(MODULES[m])))
    }

    assert not found, (
        f"SQL built with string formatting at {found}; pass values as parameters "
        "and compose identifiers with psycopg.sql"
    )
