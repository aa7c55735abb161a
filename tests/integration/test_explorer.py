"""The ledger explorer over HTTP against a real database: the page, /api/chain, the
red banner, and what it refuses.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chainops import api
from chainops.model import FORMAT_VERSION
from chainops.web.explorer import ExplorerServer

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY);\n"


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str


@dataclass(frozen=True)
class Explorer:
    port: int

    def request(
        self, path: str, method: str = "GET", host: str | None = None
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Host": host} if host else {}
            conn.request(method, path, headers=headers)
            reply = conn.getresponse()
            return Response(reply.status, reply.headers, reply.read().decode())
        finally:
            conn.close()

    def chain(self) -> dict:
        reply = self.request("/api/chain")
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
        return json.loads(reply.body)


@pytest.fixture
def explorer(project) -> Iterator[Explorer]:
    server = ExplorerServer(project.settings, 0)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="test-explorer"
    )
    thread.start()
    try:
        yield Explorer(server.server_address[1])
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


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
        }
    ]
    assert doc["ok"] is True
    assert doc["problems"] == []


def test_page_shows_blocks_links_and_pending_when_fetched(project, explorer):
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-b.sql": TABLE_B})
    applied = api.apply(project.target)
    project.write({"001-schema/003-c.sql": "SELECT 1;\n"})

    reply = explorer.request("/")

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    page = reply.body
    assert "#1001 001-schema/001-a.sql" in page
    assert "links to genesis" in page
    assert "links to block 1" in page
    assert applied.head[:12] in page
    assert page.index("#1002 001-schema/002-b.sql") < page.index("After the head")
    assert page.index("After the head") < page.index("#1003 001-schema/003-c.sql")
    assert "banner" not in page.split("</style>")[1]
    assert f'data-version="{explorer.chain()["version"]}"' in page
    assert 'fetch("/api/chain"' in page


def test_page_shows_red_banner_when_applied_file_edited(project, explorer):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    before = explorer.chain()["version"]
    project.write({"001-schema/001-a.sql": TABLE_A + "-- edited\n"})

    page = explorer.request("/").body
    doc = explorer.chain()

    assert '<div class="banner">✗ Verification failed: 1 problem' in page
    assert "001-schema/001-a.sql was edited after it was applied" in page
    assert '<div class="block changed">' in page
    assert doc["ok"] is False
    assert doc["version"] != before  # the open page reloads itself
    assert [p["kind"] for p in doc["problems"]] == ["changed"]


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
    page = explorer.request("/").body

    assert doc["error"].startswith("001-schema/1-a.sql does not match NNN-name.sql")
    assert '<div class="banner">✗ 001-schema/1-a.sql does not match' in page


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
    page = explorer.request("/")
    assert page.status == 200
    assert "SQLSTATE 42703" in page.body


@pytest.mark.parametrize(
    ("method", "path", "host", "status"),
    [
        ("GET", "/nowhere", None, 404),
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

    assert "script-src 'sha256-" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
