"""The explorer's shell, assets and pure helpers: no inline script or style, a strict
policy, every asset shipped, failures parsed into line and DETAIL, ports.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chainops.config import Settings
from chainops.errors import ConfigError
from chainops.web.chain import _has_sql, describe, error_parts
from chainops.web.explorer import (
    ASSETS,
    POLICY,
    BadRequestError,
    _height,
    parse_port,
    read_asset,
)


def test_shell_has_no_inline_script_or_style_when_served():
    page = read_asset("index.html").decode()

    assert re.findall(r"<script[^>]*>", page) == ['<script src="/assets/app.js" defer>']
    assert "<style" not in page
    assert " style=" not in page
    assert " on" not in re.sub(r"<noscript>.*?</noscript>", "", page, flags=re.S)


def test_policy_forbids_inline_code_and_other_origins_when_sent():
    directives = dict(d.strip().split(" ", 1) for d in POLICY.split(";"))

    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert "unsafe" not in POLICY
    assert "http" not in POLICY


@pytest.mark.parametrize("route", sorted(ASSETS))
def test_every_asset_ships_when_installed(route):
    name, _ = ASSETS[route]

    assert read_asset(name)


def test_assets_request_nothing_from_another_origin_when_read():
    for name in ("index.html", "app.js", "app.css"):
        text = read_asset(name).decode()
        # The SVG namespace is an identifier, never fetched.
        text = text.replace("http://www.w3.org/2000/svg", "")
        assert "http://" not in text
        assert "https://" not in text
        assert "//cdn" not in text


def test_app_never_writes_markup_from_data_when_drawing():
    script = read_asset("app.js").decode()

    assert "innerHTML" not in script
    assert "outerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "document.write" not in script
    assert "eval(" not in script


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        (
            'relation "nope" does not exist at line 3:15 (SQLSTATE 42P01)',
            {"line": 3, "column": 15, "sqlstate": "42P01", "detail": None},
        ),
        (
            "duplicate key value at line 2:1 (SQLSTATE 23505); detail: Key (id)=(1) "
            "already exists.; hint: drop it",
            {
                "line": 2,
                "column": 1,
                "sqlstate": "23505",
                "detail": "Key (id)=(1) already exists.",
                "hint": "drop it",
            },
        ),
        (None, {"line": None, "column": None, "sqlstate": None, "detail": None}),
    ],
)
def test_error_parts_reads_line_and_detail_when_recorded(text, parts):
    found = error_parts(text)

    assert {k: found.get(k) for k in parts} == parts


@pytest.mark.parametrize(
    ("text", "has"),
    [
        ("-- Migration: x\n-- Your SQL here\n", False),
        ("/* nothing\nhere */\n\n", False),
        ("-- a\nCREATE TABLE t ();\n", True),
    ],
)
def test_has_sql_tells_template_when_only_comments(text, has):
    assert _has_sql(text) is has


def test_describe_reads_the_same_when_embedded_alone_or_under_dev(tmp_path: Path):
    settings = Settings(project_root=tmp_path, migrations_dir=tmp_path / "migrations")
    socket = f"[{tmp_path}/.chainops/pgdata]:5432/app"

    assert describe(settings, socket) == "embedded PostgreSQL, database app"
    assert describe(settings, "embedded PostgreSQL 18.1").startswith(
        "embedded PostgreSQL, "
    )
    assert describe(settings, "db.internal:5432/app") == "db.internal:5432/app"


@pytest.mark.parametrize("value", ["-1", "x", "1e3", "9999999999"])
def test_height_refuses_value_when_not_a_height(value):
    with pytest.raises(BadRequestError, match="is not a block height"):
        _height({"at": [value]}, "at")


@pytest.mark.parametrize(
    ("value", "port"), [(None, 8765), ("", 8765), ("0", 0), ("5100", 5100)]
)
def test_parse_port_reads_port_when_valid(value, port):
    assert parse_port(value) == port


@pytest.mark.parametrize("value", ["http", "-1", "70000", "80.5"])
def test_parse_port_refuses_value_when_not_a_port(value):
    with pytest.raises(ConfigError) as caught:
        parse_port(value)

    assert str(caught.value).startswith(f"PORT={value!r} is not a port number")
