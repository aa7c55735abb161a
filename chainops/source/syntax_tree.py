"""pglast's parse tree, built fast from the parser's JSON (issue 20).

`parse_sql` builds each node through pglast's validating `Node.__setattr__`; this module
builds the same nodes from `parse_sql_json` directly, and calls `parse_sql` for any text
whose JSON it cannot map exactly. Pure: text in, nodes out.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Callable
from functools import cache
from itertools import repeat
from typing import Any

from pglast import ast, enums
from pglast.parser import Displacements, ParseError, parse_sql, parse_sql_json

# The JSON leaves out empty strings, so a char* field holding '' reads as NULL: a text
# with an empty literal ('', $$$$, $x$$x$, also the '' inside 'it''s') goes to pglast.
_EMPTY_LITERAL = re.compile(r"''|(\$(?:[A-Za-z_]\w*)?\$)\1")
# pglast's C integer types (ast._fixup_attribute_types_in_slots), copied as they are.
_INTEGERS = frozenset(
    {"AclMode", "AttrNumber", "Index", "RelFileNumber", "SubTransactionId", "bits32"}
    | {"int", "int16", "int32", "long", "uint32", "uint64"}
)
# What a field holds, as pglast's Cython fills it from the C struct.
_PLAIN, _LOCATION, _NODE, _LIST, _TYPED, _ENUM, _FLOAT, _SET, _CONST = range(9)
_VALUES = {  # A_Const's ValUnion: the JSON key names the value node
    "ival": ast.Integer,
    "fval": ast.Float,
    "boolval": ast.Boolean,
    "sval": ast.String,
    "bsval": ast.BitString,
}

Field = tuple[str, int, Any]
Spec = tuple[dict[str, Field], dict[str, Any]]


class _Unmapped(Exception):  # noqa: N818 - internal signal, never leaves the module
    """The JSON holds something this builder does not map exactly."""


def parse(text: str) -> tuple[ast.RawStmt, ...]:
    """Parse `text` like `pglast.parser.parse_sql`, with the identical result.

    Raises pglast's own ParseError, from `parse_sql`, for invalid SQL.
    """
    found = build_from_json(text)
    return parse_sql(text) if found is None else found


def build_from_json(text: str) -> tuple[ast.RawStmt, ...] | None:
    """The statements of `text` built from its JSON; None where only pglast can."""
    if _EMPTY_LITERAL.search(text):
        return None
    try:
        data = json.loads(parse_sql_json(text))
        return _Builder(text).statements(data.get("stmts", ()))
    except (ParseError, _Unmapped, KeyError, TypeError, ValueError, AttributeError):
        return None  # ParseError too: pglast raises it with its own arguments


class _Builder:
    """Nodes from one text's JSON; locations become character indexes as in pglast."""

    def __init__(self, text: str) -> None:
        if text.isascii():  # byte offsets are character indexes
            size = len(text)
            self.index: Callable[[int], int | None] = lambda offset: (
                offset if 0 <= offset < size else None
            )
        else:
            self.index = Displacements(text)

    def statements(self, raws: list[dict[str, Any]]) -> tuple[ast.RawStmt, ...]:
        """RawStmt nodes; stmt_len in characters, computed as pglast does."""
        found = []
        setattr_ = object.__setattr__
        for raw in raws:
            if set(raw) - {"stmt", "stmt_location", "stmt_len"}:
                raise _Unmapped(raw)
            start = raw.get("stmt_location", 0)
            first = self.index(start)
            last = self.index(start + raw.get("stmt_len", 0))
            if first is None or last is None:
                raise _Unmapped(raw)  # pglast itself would fail on this arithmetic
            node = ast.RawStmt.__new__(ast.RawStmt)
            stmt = raw.get("stmt")
            setattr_(node, "stmt", None if stmt is None else self.node(stmt))
            setattr_(node, "stmt_location", first)
            setattr_(node, "stmt_len", last - first)
            found.append(node)
        return tuple(found)

    def node(self, wrapped: dict[str, Any]) -> Any:
        """A node written as {"Type": {fields}}; a List as the tuple of its items."""
        if not wrapped:
            return None  # a NULL item in a list
        if len(wrapped) != 1:
            raise _Unmapped(wrapped)
        ((name, body),) = wrapped.items()
        if name == "List":
            if set(body) != {"items"} or not body["items"]:
                raise _Unmapped(wrapped)
            return tuple([self.node(item) for item in body["items"]])
        return self.build(_classes()[name], body)  # KeyError: not a pglast node

    def build(self, cls: type, body: dict[str, Any]) -> ast.Node:
        """A node of `cls` from its fields; the fields the JSON omits get C's zero.

        Plain values are copied as they are; a key with no slot makes setting it
        raise AttributeError, so the text goes to pglast.
        """
        if cls is ast.A_Const:
            return self.constant(body)
        convert, defaults = _spec(cls)
        values = defaults.copy()
        values.update(body)
        for key, value in body.items():
            field = convert.get(key)
            if field is None:
                continue
            name, kind, extra = field
            if kind == _LOCATION:
                value = self.index(value)
            elif kind == _LIST:
                value = tuple([self.node(item) for item in value])
            elif kind == _NODE:
                value = self.node(value)
            elif kind == _TYPED:
                value = (
                    self.typed(extra, value)
                    if len(value) == 1
                    else self.build(extra, value)
                )
            elif kind == _ENUM:
                value = extra[value]
            elif kind == _FLOAT:
                value = float(value)
            elif kind == _SET:
                value = set(value)
            elif kind != _PLAIN:
                raise _Unmapped(cls, key)
            if name is not key:  # pglast's def_ for C's def
                del values[key]
            values[name] = value
        node: ast.Node = object.__new__(cls)
        # One C-level pass over every slot: a Python loop per slot was the cost.
        any(map(object.__setattr__, repeat(node), values, values.values()))
        return node

    def typed(self, cls: type[ast.Node], body: dict[str, Any]) -> ast.Node:
        """A field of one node type, written without its type name."""
        if len(body) == 1:
            key = next(iter(body))
            if key not in _slots(cls) and isinstance(getattr(ast, key, None), type):
                found: ast.Node = self.node(
                    body
                )  # written with its type name after all
                return found
        return self.build(cls, body)

    def constant(self, body: dict[str, Any]) -> ast.A_Const:
        """A_Const as pglast keeps it: isnull and its value node, no location."""
        node = ast.A_Const.__new__(ast.A_Const)
        setattr_ = object.__setattr__
        keys = set(body) - {"location"}
        value = None
        if keys == {"isnull"}:
            if body["isnull"] is not True:
                raise _Unmapped(body)
        elif len(keys) == 1:
            (key,) = keys
            value = self.build(_VALUES[key], body[key])
        else:
            raise _Unmapped(body)
        setattr_(node, "isnull", value is None)
        setattr_(node, "val", value)
        return node


@cache
def _classes() -> dict[str, type]:
    """Every pglast node class by name."""
    return {
        name: cls
        for name, cls in vars(ast).items()
        if isinstance(cls, type) and issubclass(cls, ast.Node)
    }


@cache
def _spec(cls: type) -> Spec:
    """The JSON keys of `cls` that need converting, and the zero of every slot."""
    convert: dict[str, Field] = {}
    defaults: dict[str, Any] = {}
    for name, info in _slots(cls).items():
        kind, extra, default = _kind(info.c_type)
        key = name[:-1] if name.endswith("_") and keyword.iskeyword(name[:-1]) else name
        if kind != _PLAIN or key != name:
            convert[key] = (name, kind, extra)
        defaults[name] = default
    return convert, defaults


def _slots(cls: type) -> dict[str, Any]:
    """pglast's slot table of a node class: name → SlotTypeInfo."""
    slots: dict[str, Any] = cls.__dict__["__slots__"]
    return slots


def _kind(ctype: str) -> tuple[int, Any, Any]:
    """A slot's conversion, its argument and the value pglast gives a zeroed field."""
    if ctype == "ParseLoc":
        return _LOCATION, None, 0  # an omitted location is offset 0, index 0
    if ctype == "char*":
        return _PLAIN, None, None
    if ctype == "bool":
        return _PLAIN, None, False  # the JSON writes true and omits false
    if ctype == "char":
        return _PLAIN, None, "\x00"
    if ctype in _INTEGERS:
        return _PLAIN, None, 0
    if ctype in ("Cardinality", "Cost"):
        return _FLOAT, None, 0.0
    if ctype == "List*":
        return _LIST, None, None
    if ctype in ("Node*", "Expr*"):
        return _NODE, None, None
    if ctype == "Bitmapset*":
        return _SET, None, None
    enum = getattr(enums, ctype, None)
    if enum is not None:
        try:
            zero = enum(0)
        except ValueError:
            zero = None  # never zero in C; pglast fails on it, so must the builder
        return _ENUM, enum, zero
    target = getattr(ast, ctype.removesuffix("*"), None)
    if isinstance(target, type) and issubclass(target, ast.Node):
        return _TYPED, target, None
    return _CONST, None, None  # ValUnion, JsonTablePlan: not mapped
