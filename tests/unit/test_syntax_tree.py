"""Unit tests for chainops.source.syntax_tree: the tree from JSON is pglast's own tree.

Equality is pglast's full serialisation, `node()`, which keeps locations and statement
lengths; `==` on nodes ignores them.
"""

from __future__ import annotations

import ast as python_ast
import re
from pathlib import Path

import pytest
from pglast.parser import ParseError, parse_sql, split

from bench.lint import lint_sql
from chainops.source import syntax_tree

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "data" / "syntax_tree_corpus.sql"
EMPTY = re.compile(r"''|(\$\w*\$)\1")
SKIP = {".git", ".venv", "node_modules", ".chainops"}


def repository_sql() -> list[str]:
    """Every .sql file in the repository: migrations, docs, test data."""
    return [
        text
        for path in sorted(ROOT.rglob("*.sql"))
        if not SKIP.intersection(path.relative_to(ROOT).parts)
        and is_sql(text := path.read_text(encoding="utf-8"))  # not psql scripts
    ]


def is_sql(text: str) -> bool:
    try:
        return bool(parse_sql(text))
    except ParseError:
        return False


def strings_in_tests() -> list[str]:
    """Every string literal in the unit tests that PostgreSQL parses as SQL."""
    found = []
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        tree = python_ast.parse(path.read_text(encoding="utf-8"))
        for node in python_ast.walk(tree):
            if isinstance(node, python_ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
    return [text for text in dict.fromkeys(found) if is_sql(text)]


def corpus() -> list[str]:
    """Whole texts, and each statement of the sample corpus on its own."""
    sample = CORPUS.read_text(encoding="utf-8")
    texts = [sample, *split(sample), *repository_sql(), *strings_in_tests()]
    return texts + [lint_sql(i) for i in range(3)]


def serialised(statements: tuple[object, ...]) -> list[object]:
    return [statement() for statement in statements]  # type: ignore[operator]


def test_build_equals_parse_sql_with_locations_when_given_the_corpus():
    texts = corpus()
    fallbacks = []
    for text in texts:
        built = syntax_tree.build_from_json(text)
        if built is None:
            fallbacks.append(text)
            continue
        assert serialised(built) == serialised(parse_sql(text)), text
    assert len(texts) > 400
    # Only texts with an empty literal go to pglast: the JSON drops '' strings.
    assert [text for text in fallbacks if not EMPTY.search(text)] == []
    assert len(fallbacks) < len(texts) // 10


def test_parse_moves_locations_by_characters_when_text_has_multibyte_letters():
    text = "SELECT 'é€🙂' AS a;\nSELECT b FROM \"ü\" WHERE c = 1"
    built = syntax_tree.parse(text)
    assert serialised(built) == serialised(parse_sql(text))
    assert built[1].stmt_location == text.index("SELECT b")  # a character index
    assert built[1].stmt.targetList[0].location == text.index("b FROM")


@pytest.mark.parametrize(
    "text",
    [
        "COMMENT ON TABLE t IS ''",
        "COPY t FROM '' WITH (NULL '')",
        "SELECT $$$$",
        "SELECT $x$$x$",
    ],
)
def test_parse_uses_parse_sql_when_text_has_an_empty_literal(text):
    assert syntax_tree.build_from_json(text) is None
    assert serialised(syntax_tree.parse(text)) == serialised(parse_sql(text))


@pytest.mark.parametrize("text", ["", "  ", "-- only a comment\n", ";"])
def test_parse_returns_what_parse_sql_returns_when_text_has_no_statement(text):
    assert serialised(syntax_tree.parse(text)) == serialised(parse_sql(text))


def test_parse_raises_pglast_error_when_sql_is_invalid():
    with pytest.raises(ParseError) as expected:
        parse_sql("SELECT 1;\nSELEC 2")
    with pytest.raises(ParseError) as raised:
        syntax_tree.parse("SELECT 1;\nSELEC 2")
    assert raised.value.args == expected.value.args
