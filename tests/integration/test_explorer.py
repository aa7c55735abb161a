"""The ledger explorer over HTTP against a real database: the shell, /api/chain, the
verdict, and what it refuses. tests/integration/test_explorer_api.py covers the other
endpoints; tests/browser the page in Chromium.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from chainops import api
from chainops.model import FORMAT_VERSION

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


def test_api_chain_lists_linked_blocks_then_pending_when_applied(project, explorer):
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)
    project.write({"002-functions/001-c.sql": "SELECT 1;\n"})

    doc = explorer.chain()

    first, second = doc["blocks"]
    assert [b["path"] for b in doc["blocks"]] == [
        "001-schema/001-a.sql",
        "001-schema/002-b.sql",
    ]
    assert first["previous_hash"] == "0" * 64
    assert second["previous_hash"] == first["block_hash"]
    assert doc["head"] == second["block_hash"]
    assert (second["height"], second["number"], second["state"]) == (2, 1002, "applied")
    assert second["applied_by"] == "postgres"
    assert second["applied_at"].endswith("Z")
    assert isinstance(second["duration_ms"], int)
    assert doc["pending"] == [
        {
            "number": 2001,
            "path": "002-functions/001-c.sql",
            "state": "pending",
            "applied_at": None,
            "height": None,
            "block_hash": None,
            "previous_hash": None,
            "content_hash": None,
            "mode": None,
            "duration_ms": None,
            "applied_by": None,
            "error": None,
            "reason": "ready: the next inv migrate applies it",
            "statements_done": None,
            "statements_total": None,
            "lint": [],
        }
    ]
    assert doc["ok"] is True
    assert doc["problems"] == []


@pytest.mark.parametrize("path", ["/", "/block/1", "/schema?at=1", "/analytics"])
def test_page_serves_the_shell_and_its_assets_when_fetched(explorer, path):
    reply = explorer.request(path)

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<script src="/assets/app.js" defer></script>' in reply.body
    for asset, kind in [("app.js", "text/javascript"), ("app.css", "text/css")]:
        served = explorer.request(f"/assets/{asset}")
        assert served.status == 200
        assert served.headers["Content-Type"] == f"{kind}; charset=utf-8"


def test_api_chain_marks_edited_block_changed_when_applied_file_edited(
    project, explorer
):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    before = explorer.chain()["version"]
    project.write({"001-schema/001-a.sql": TABLE_A + "-- edited\n"})

    doc = explorer.chain()

    assert doc["ok"] is False
    assert doc["version"] != before  # the open page redraws itself
    assert [p["kind"] for p in doc["problems"]] == ["changed"]
    assert (
        "001-schema/001-a.sql was edited after it was applied"
        in (doc["problems"][0]["message"])
    )
    assert doc["blocks"][0]["state"] == "changed"


def test_explorer_ok_is_the_verifiers_verdict_when_the_schema_drifted(
    project, explorer
):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.query("ALTER TABLE a ADD COLUMN note text")

    doc = explorer.chain()

    assert api.status(project.target).findings == ()  # status alone sees no problem
    assert doc["ok"] is False
    assert [p["kind"] for p in doc["problems"]] == ["schema"]
    assert "column note text added" in doc["problems"][0]["message"]


def test_page_shows_error_banner_when_a_file_is_badly_named(project, explorer):
    project.write({"001-schema/1-a.sql": TABLE_A})

    doc = explorer.chain()

    assert doc["error"].startswith("001-schema/1-a.sql does not match NNN-name.sql")
    assert doc["ok"] is False


def test_explorer_shows_one_line_error_when_ledger_has_an_unknown_shape(
    project, explorer
):
    # A ledger of an unknown shape: the server refuses the read, and the explorer
    # says so in one line instead of a traceback or an "unexpected error".
    project.query(
        "CREATE TABLE blockchain_migrations_meta (key text, value text);"
        "INSERT INTO blockchain_migrations_meta VALUES"
        f" ('format_version', '{FORMAT_VERSION}');"
        "CREATE TABLE blockchain_migrations_history (outcome text);"
        "CREATE TABLE blockchain_migrations (id int)"
    )

    reply = explorer.request("/api/chain")
    doc = json.loads(reply.body)

    assert reply.status == 200
    assert doc["ok"] is False
    assert "does not exist (SQLSTATE 42703)" in doc["error"]
    assert "\n" not in doc["error"]
    assert explorer.request("/").status == 200


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        ("GET", "/nowhere", None, 404),
        ("GET", "/api/nowhere", None, 404),
        ("GET", "/assets/../explorer.py", None, 404),
        ("POST", "/api/chain", None, 501),
        ("DELETE", "/", None, 501),
        ("GET", "/api/chain", "attacker.example:8765", 403),
        ("GET", "/api/chain", "localhost:9000", 200),
    ],
)
def test_explorer_refuses_request_when_not_a_local_read(
    explorer, method, path, host, status
):
    assert explorer.request(path, method, host).status == status


def test_explorer_sends_strict_headers_when_serving_page(explorer):
    headers = explorer.request("/").headers

    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "unsafe" not in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
