"""Discovering migration files: layout, refusals, ignored files, the hash rule."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chainops.errors import MigrationFileError
from chainops.source.files import HASH_ALGORITHM, discover, locate, normalise

VALID = b"CREATE TABLE t (id int);\n"


def write_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    """Write files (relative path -> content) under root/migrations; return that dir."""
    migrations = root / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        path = migrations / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8") if isinstance(content, str) else content
        path.write_bytes(data)
    return migrations


def discover_error(migrations: Path) -> str:
    with pytest.raises(MigrationFileError) as caught:
        discover(migrations)
    return str(caught.value)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- valid layouts ---------------------------------------------------------------


def test_discover_sorts_by_category_then_file_when_names_sort_differently(tmp_path):
    # Written in an order where the words after the numbers sort the other way round.
    migrations = write_tree(
        tmp_path,
        {
            "002-aaa-functions/001-zeta.sql": VALID,
            "001-zzz-schema/010-alpha.sql": VALID,
            "001-zzz-schema/002-omega.sql": VALID,
            "001-zzz-schema/001-beta.sql": VALID,
            "010-aa-seed/001-a.sql": VALID,
            "002-aaa-functions/003-aardvark.sql": VALID,
        },
    )

    found = discover(migrations)

    assert [f.path for f in found] == [
        "001-zzz-schema/001-beta.sql",
        "001-zzz-schema/002-omega.sql",
        "001-zzz-schema/010-alpha.sql",
        "002-aaa-functions/001-zeta.sql",
        "002-aaa-functions/003-aardvark.sql",
        "010-aa-seed/001-a.sql",
    ]
    assert [f.key for f in found] == [(1, 1), (1, 2), (1, 10), (2, 1), (2, 3), (10, 1)]


def test_discover_returns_empty_list_when_folder_has_no_migrations(tmp_path):
    migrations = write_tree(tmp_path, {"README.md": "# migrations\n"})

    assert discover(migrations) == []


def test_discover_refuses_with_one_line_when_migrations_dir_is_missing(tmp_path):
    message = discover_error(tmp_path / "nowhere")

    assert "nowhere" in message
    assert "CHAINOPS_MIGRATIONS_DIR" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("rel", "number", "category", "index", "filename"),
    [
        ("001-schema/005-x.sql", 1005, "001-schema", 5, "005-x.sql"),
        ("001-schema/001-initial-tables.sql", 1001, "001-schema", 1, None),
        ("002-functions/010-totals.sql", 2010, "002-functions", 10, None),
        ("012-views/999-last.sql", 12999, "012-views", 999, None),
        ("001-schema/004-v1.2_fix-A.sql", 1004, "001-schema", 4, None),
    ],
)
def test_discover_parses_record_when_name_is_valid(
    tmp_path, rel, number, category, index, filename
):
    migrations = write_tree(tmp_path, {rel: VALID})

    [found] = discover(migrations)

    assert found.number == number
    assert found.category == category
    assert found.category_index == int(category[:3])
    assert found.index == index
    assert found.path == rel
    assert found.filename == (filename or rel.rsplit("/", 1)[-1])
    assert found.text == VALID.decode()
    assert found.sha256 == sha256(VALID.decode())


def test_discover_stores_normalised_text_when_file_has_bom_and_crlf(tmp_path):
    migrations = write_tree(
        tmp_path, {"001-schema/001-a.sql": b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n"}
    )

    [found] = discover(migrations)

    assert found.text == "SELECT 1;\nSELECT 2;\n"
    assert found.sha256 == sha256("SELECT 1;\nSELECT 2;\n")


def test_discover_accepts_schema_dump_when_it_is_at_top_level(tmp_path):
    migrations = write_tree(
        tmp_path,
        {"schema.sql": "CREATE TABLE t ();\n", "001-schema/001-a.sql": VALID},
    )

    assert [f.path for f in discover(migrations)] == ["001-schema/001-a.sql"]


# --- refusals --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "offender"),
    [
        pytest.param(
            {"001-schema/4-x.sql": VALID}, "001-schema/4-x.sql", id="one-digit"
        ),
        pytest.param(
            {"001-schema/004_x.sql": VALID}, "001-schema/004_x.sql", id="underscore"
        ),
        pytest.param(
            {"001-schema/004-.sql": VALID}, "001-schema/004-.sql", id="no-name"
        ),
        pytest.param(
            {"001-schema/abcd.sql": VALID}, "001-schema/abcd.sql", id="no-num"
        ),
        pytest.param(
            {"001-schema/0004-x.sql": VALID}, "001-schema/0004-x.sql", id="four-digits"
        ),
        pytest.param(
            {"001-schema/004-x y.sql": VALID}, "001-schema/004-x y.sql", id="space"
        ),
        pytest.param(
            {"001-schema/004-x.SQL": VALID}, "001-schema/004-x.SQL", id="upper-ext"
        ),
        pytest.param(
            {"001-schema/004-x.Sql": VALID}, "001-schema/004-x.Sql", id="mixed-ext"
        ),
        pytest.param(
            {"001-schema/000-x.sql": VALID}, "001-schema/000-x.sql", id="file-000"
        ),
        pytest.param({"000-base/001-x.sql": VALID}, "000-base/", id="category-000"),
        pytest.param(
            {"001-schema/004-a.sql": VALID, "001-schema/004-b.sql": VALID},
            "001-schema/004-b.sql",
            id="duplicate-file-number",
        ),
        pytest.param(
            {"001-schema/001-a.sql": VALID, "001-tables/002-b.sql": VALID},
            "001-tables/",
            id="duplicate-category-number",
        ),
        pytest.param(
            {"001-schema/001-a.sql": b"SELECT '\xe9t\xe9';\n"},
            "001-schema/001-a.sql",
            id="latin-1",
        ),
        pytest.param(
            {"001-schema/001-a.sql": "SELECT 1;\n".encode("utf-16")},
            "001-schema/001-a.sql",
            id="utf-16",
        ),
        pytest.param(
            {"001-schema/001-a.sql": "SELECT 1;\n".encode("utf-16-le")},
            "001-schema/001-a.sql",
            id="utf-16-no-bom",
        ),
        pytest.param(
            {"001-schema/001-a.sql": b"SELECT 1;\x00\n"},
            "001-schema/001-a.sql",
            id="nul-byte",
        ),
        pytest.param({"001-schema/001-a.sql": b""}, "001-schema/001-a.sql", id="empty"),
        pytest.param(
            {"001-schema/001-a.sql": b" \n\t\r\n  \n"},
            "001-schema/001-a.sql",
            id="whitespace-only",
        ),
        pytest.param(
            {"001-schema/001-a.sql": b"\xef\xbb\xbf\r\n"},
            "001-schema/001-a.sql",
            id="bom-only",
        ),
        pytest.param({"004-x.sql": VALID}, "004-x.sql", id="top-level"),
        pytest.param({"schema/001-x.sql": VALID}, "schema/", id="folder-no-number"),
        pytest.param({"1-schema/001-x.sql": VALID}, "1-schema/", id="folder-one-digit"),
        pytest.param(
            {"001-Schema/001-x.sql": VALID}, "001-Schema/", id="folder-upper-case"
        ),
        pytest.param(
            {"001_schema/001-x.sql": VALID}, "001_schema/", id="folder-underscore"
        ),
        pytest.param(
            {"001-schema/old/001-x.sql": VALID}, "001-schema/old/", id="nested-folder"
        ),
    ],
)
def test_discover_refuses_naming_the_file_when_layout_is_invalid(
    tmp_path, files, offender
):
    migrations = write_tree(tmp_path, files)

    message = discover_error(migrations)

    assert message.startswith(offender + " "), message
    assert "\n" not in message
    assert "; " in message  # says what to do


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(b"SELECT '\xe9';\n", ["not valid UTF-8"], id="latin-1"),
        pytest.param("SELECT 1;".encode("utf-16"), ["UTF-16"], id="utf-16"),
        pytest.param(b"SELECT 1;\x00", ["NUL"], id="nul"),
        pytest.param(b"\n\n", ["empty"], id="blank"),
    ],
)
def test_discover_explains_cause_when_content_is_not_text(tmp_path, data, words):
    migrations = write_tree(tmp_path, {"001-schema/001-a.sql": data})

    message = discover_error(migrations)

    for word in words:
        assert word in message


def test_discover_refuses_when_file_is_symlink(tmp_path):
    migrations = write_tree(tmp_path, {"001-schema/001-a.sql": VALID})
    (migrations / "001-schema" / "002-b.sql").symlink_to(
        migrations / "001-schema" / "001-a.sql"
    )

    message = discover_error(migrations)

    assert message.startswith("001-schema/002-b.sql ")
    assert "symbolic link" in message


def test_discover_refuses_when_category_folder_is_symlink(tmp_path):
    outside = write_tree(tmp_path / "elsewhere", {"001-schema/001-a.sql": VALID})
    migrations = write_tree(tmp_path, {"001-schema/001-a.sql": VALID})
    (migrations / "002-shared").symlink_to(outside / "001-schema")

    message = discover_error(migrations)

    assert message.startswith("002-shared ")
    assert "symbolic link" in message


# --- ignored files ---------------------------------------------------------------


@pytest.mark.parametrize(
    "ignored",
    [
        "README.md",
        "001-schema/README.md",
        "001-schema/notes.txt",
        "001-schema/.x.sql.swp",
        "001-schema/.002-x.sql.swp",
        "001-schema/004-x.sql~",
        "001-schema/.#004-x.sql",
        "001-schema/#004-x.sql#",
        "001-schema/.hidden.sql",
        "001-schema/004-x.sql.bak",
        "001-schema/004-x.sql.orig",
        ".#004-x.sql",
        "#004-x.sql#",
        "004-x.sql~",
        ".hidden.sql",
        ".git/objects/001-x.sql",
        "docs/notes.md",
        "schema/README.md",
        "1-misc/diagram.png",
    ],
)
def test_discover_ignores_file_when_it_is_not_a_migration(tmp_path, ignored):
    migrations = write_tree(
        tmp_path, {"001-schema/001-a.sql": VALID, ignored: b"\xff\x00 junk"}
    )

    assert [f.path for f in discover(migrations)] == ["001-schema/001-a.sql"]


# --- the hash rule ---------------------------------------------------------------


def hash_of(data: bytes) -> str:
    return hashlib.sha256(normalise(data, "001-schema/001-a.sql")).hexdigest()


BASE = "CREATE TABLE t (\n  id int\n);\nSELECT 1;\n"


def test_hash_algorithm_names_sha256_over_lf_text_when_read():
    assert HASH_ALGORITHM == "sha256-lf"
    assert hash_of(BASE.encode()) == sha256(BASE)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(BASE.replace("\n", "\r\n").encode(), id="crlf"),
        pytest.param(BASE.replace("\n", "\r").encode(), id="cr-only"),
        pytest.param(b"\xef\xbb\xbf" + BASE.encode(), id="bom"),
        pytest.param(
            b"\xef\xbb\xbf" + BASE.replace("\n", "\r\n").encode(), id="bom-crlf"
        ),
        pytest.param(BASE.replace("\n", "\r\n", 2).encode(), id="mixed-crlf-lf"),
    ],
)
def test_hash_is_unchanged_when_only_line_endings_or_bom_differ(variant):
    assert hash_of(variant) == hash_of(BASE.encode())


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param("CREATE TABLE t (  id int\n);\nSELECT 1;\n", id="join-lines"),
        pytest.param("CREATE TABLE t (\n  id int);\nSELECT 1;\n", id="join-last"),
        pytest.param(
            "CREATE TABLE t ( \n  id int\n);\nSELECT 1;\n", id="trailing-space"
        ),
        pytest.param(
            "CREATE TABLE t (\t\n  id int\n);\nSELECT 1;\n", id="trailing-tab"
        ),
        pytest.param(BASE + "\n", id="added-newline-at-end"),
        pytest.param(BASE.rstrip("\n"), id="removed-newline-at-end"),
        pytest.param(BASE.replace("  id", "    id"), id="indent"),
        pytest.param(BASE.replace("\n", "\n\n", 1), id="blank-line"),
    ],
)
def test_hash_changes_when_text_changes_beyond_line_endings(variant):
    assert hash_of(variant.encode()) != hash_of(BASE.encode())


# --- locate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (0, (1, 1)),
        (1, (1, 2)),
        (3, (1, 4)),  # the newline ending line 1 still belongs to it
        (4, (2, 1)),
        (6, (2, 3)),
        (7, (3, 1)),  # an empty line
        (8, (4, 1)),
        (10, (4, 3)),
        (11, (4, 4)),  # end of text
        (500, (4, 4)),  # clamped to the end
        (-5, (1, 1)),  # clamped to the start
    ],
)
def test_locate_returns_line_and_column_when_given_offset(offset, expected):
    text = "abc\nde\n\nfgh"

    assert locate(text, offset) == expected


def test_discover_attaches_verify_script_to_its_migration(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "001-schema/001-a.sql": "CREATE TABLE a ();\r\n",
            "001-schema/001-a.verify.sql": "SELECT 1 FROM a WHERE false;\r\n",
            "001-schema/002-b.sql": "CREATE TABLE b ();\n",
        },
    )

    files = discover(root)

    assert [f.path for f in files] == ["001-schema/001-a.sql", "001-schema/002-b.sql"]
    script = files[0].verify_script
    assert script is not None
    assert script.path == "001-schema/001-a.verify.sql"
    assert script.sha256 == sha256("SELECT 1 FROM a WHERE false;\n")
    assert files[1].verify_script is None


def test_discover_refuses_verify_script_without_its_migration(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "001-schema/001-a.sql": "SELECT 1;",
            "001-schema/001-b.verify.sql": "SELECT 1;",
        },
    )

    assert discover_error(root) == (
        "001-schema/001-b.verify.sql has no migration 001-schema/001-b.sql beside it; "
        "name a verify script after its migration (NNN-name.verify.sql for "
        "NNN-name.sql)"
    )
