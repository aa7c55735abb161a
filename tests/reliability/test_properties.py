"""Property tests of the source layer, checked against an independent oracle:
the quick scan against PostgreSQL's parser, the content hash across line endings.

Pure, but they draw hundreds of examples, so they run with the reliability suite
rather than in the two-second unit run.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from chainops.errors import MigrationFileError
from chainops.source.files import normalise
from chainops.source.scan import needs_parse
from chainops.source.statements import plan_migration
from tests.unit.test_prescan import PLAIN, SPECIAL


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_of(data: bytes) -> str:
    return hashlib.sha256(normalise(data, "001-schema/001-a.sql")).hexdigest()


PIECES = st.sampled_from(
    [
        *SPECIAL,
        *PLAIN,
        "SELECT ';VACUUM';",
        "SELECT $$; COMMIT $$;",
        "SELECT $a$ ; vacuum; $a$;",
        "SELECT E'\\'; begin;';",
        'SELECT 1 AS ";vacuum";',
        "CREATE TABLE q (a text DEFAULT ';', b text DEFAULT 'x; y');",
        'ALTER TABLE t DETACH PARTITION "p;x" CONCURRENTLY;',
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql"
        " AS $$ BEGIN RETURN 1; END $$;",
        'CREATE TABLE "create" ("database" int);',
        "DO $$ BEGIN PERFORM 1; END $$;",
        "-- ; vacuum\n",
        "/* ; vacuum */",
        "/* a /* b */ ; vacuum */",
        "\n",
        ";",
        "SELECT 1",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=6).map(" ".join))
def test_parser_agrees_the_file_is_plain_when_scan_skips_it(sql):
    if needs_parse(sql.encode()):
        return
    try:
        plan = plan_migration(sql, "001-schema/001-x.sql")
    except MigrationFileError as err:
        error = str(err)
    else:
        assert plan.transactional, plan.reason
        return
    # The server reports syntax errors as well; nothing else may hide here.
    assert "syntax error" in error or "unterminated" in error, error


# Lines without line breaks, NUL (refused) or U+FEFF (a leading one is a BOM).
_LINE = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs",), exclude_characters="\r\n\x00\ufeff"
    ),
    max_size=20,
)


@settings(max_examples=40, deadline=None, database=None)
@given(lines=st.lists(_LINE, min_size=1, max_size=8), final_newline=st.booleans())
def test_hash_is_equal_when_lines_are_joined_with_any_line_ending(lines, final_newline):
    end = "\n" if final_newline else ""
    lf = ("\n".join(lines) + end).encode("utf-8")
    crlf = ("\r\n".join(lines) + end.replace("\n", "\r\n")).encode("utf-8")
    cr = ("\r".join(lines) + end.replace("\n", "\r")).encode("utf-8")
    bom = b"\xef\xbb\xbf" + crlf

    expected = sha256("\n".join(lines) + end)
    assert hash_of(lf) == hash_of(crlf) == hash_of(cr) == hash_of(bom) == expected
