"""The explorer's JSON endpoints against a real database: failed attempts with line
and DETAIL, a block's every field and SQL, drift differences, schema changes,
chain.lock status and why pending files wait. Every bad request gets a JSON error.
"""

from __future__ import annotations

import json
import threading

import pytest

from chainops import api
from chainops.errors import MigrationFailed

TABLE_A = "CREATE TABLE a (id int PRIMARY KEY);\n"
TABLE_B = "CREATE TABLE b (id int PRIMARY KEY, note text);\n"
DUPLICATE = "INSERT INTO a VALUES (1);\nINSERT INTO a VALUES (1);\n"


def test_chain_lists_failed_attempt_with_line_and_detail_when_a_file_fails(
    project, explorer
):
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-d.sql": DUPLICATE})
    with pytest.raises(MigrationFailed):
        api.apply(project.target)

    doc = explorer.chain()

    (failed,) = doc["attempts"]
    assert failed["path"] == "001-schema/002-d.sql"
    assert failed["outcome"] == "failed"
    assert failed["sqlstate"] == "23505"
    assert failed["line"] == 2
    assert failed["detail"] == "Key (id)=(1) already exists."
    assert [r["outcome"] for r in doc["history"]] == ["completed", "failed"]
    (pending,) = doc["pending"]
    assert pending["state"] == "failed"
    assert pending["reason"].startswith("its last attempt failed")


def test_chain_shows_statements_done_when_a_non_transactional_file_fails(
    project, explorer
):
    project.write(
        {
            "001-schema/001-a.sql": "-- chainops:no-transaction\n"
            + TABLE_A
            + "CREATE TABLE c (id int);\nSELECT 1 / 0;\n"
        }
    )
    with pytest.raises(MigrationFailed):
        api.apply(project.target)

    (pending,) = explorer.chain()["pending"]

    assert pending["state"] == "failed"
    assert (pending["statements_done"], pending["statements_total"]) == (2, 3)
    assert "SQLSTATE 22012" in pending["error"]


def test_block_endpoint_answers_one_line_without_password_when_database_is_down(
    project,
):
    from chainops.web.explorer import ExplorerServer
    from tests.fixtures.explorer import Explorer

    secret = "s3cret-Pa55"
    url = f"postgresql://postgres:{secret}@127.0.0.1:1/nowhere?connect_timeout=2"
    server = ExplorerServer(project.with_settings(database_url=url), 0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,))
    thread.start()
    try:
        client = Explorer(server.server_address[1])
        status, doc = client.json("/api/block/1")
        chain = client.chain()
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()

    assert status == 503
    assert "127.0.0.1:1/nowhere" in doc["error"]
    assert "\n" not in doc["error"]
    assert secret not in doc["error"]
    assert secret not in json.dumps(chain)
    assert chain["ok"] is False


def test_block_shows_every_field_neighbours_and_sql_when_file_matches(
    project, explorer
):
    project.write({"001-schema/001-a.sql": TABLE_A, "001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)

    status, doc = explorer.json("/api/block/1")

    assert status == 200
    block = doc["block"]
    assert (block["height"], block["number"], block["path"]) == (
        1,
        1001,
        "001-schema/001-a.sql",
    )
    for field in ("block_hash", "previous_hash", "content_hash", "applied_by",
                  "client_host", "mode", "duration_ms", "hash_algorithm"):  # fmt: skip
        assert block[field] is not None, field
    assert doc["previous"] is None
    assert doc["next"] == {"height": 2, "number": 1002, "path": "001-schema/002-b.sql"}
    assert doc["file"]["state"] == "matches"
    assert doc["file"]["sql"] == TABLE_A
    assert [a["outcome"] for a in doc["attempts"]] == ["completed"]


def test_block_shows_schema_change_of_its_run_when_snapshots_stored(project, explorer):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.write({"001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)

    _, first = explorer.json("/api/block/1")
    _, second = explorer.json("/api/block/2")

    assert first["schema_change"]["changes"] == [
        "table public.a added",
        "constraint public.a.a_pkey added: PRIMARY KEY (id)",
        "index public.a_pkey added: CREATE UNIQUE INDEX a_pkey ON a USING btree (id)",
    ] or any("public.a" in line for line in first["schema_change"]["changes"])
    assert (second["schema_change"]["from"], second["schema_change"]["to"]) == (1, 2)
    assert any("public.b" in line for line in second["schema_change"]["changes"])
    assert not any("public.a " in line for line in second["schema_change"]["changes"])


def test_block_says_hash_differs_and_shows_disk_file_when_applied_file_edited(
    project, explorer
):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.write({"001-schema/001-a.sql": TABLE_A + "-- edited\n"})

    _, doc = explorer.json("/api/block/1")

    assert doc["file"]["state"] == "edited"
    assert doc["file"]["sql"] == TABLE_A + "-- edited\n"
    assert doc["file"]["current_hash"] != doc["block"]["content_hash"]
    assert "was edited after it was applied" in doc["file"]["note"]


def test_block_shows_diff_from_applied_text_in_git_when_applied_file_edited(
    project, explorer
):
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=project.root,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    project.write({"001-schema/001-a.sql": TABLE_A})
    git("add", "-A")
    git("commit", "-qm", "a")
    api.apply(project.target)
    project.write({"001-schema/001-a.sql": TABLE_B})
    git("commit", "-qam", "edited after it was applied")

    _, doc = explorer.json("/api/block/1")

    assert doc["file"]["state"] == "edited"
    assert doc["file"]["applied_sql"] == TABLE_A
    assert "-CREATE TABLE a (id int PRIMARY KEY);" in doc["file"]["diff"]
    assert "+CREATE TABLE b (id int PRIMARY KEY, note text);" in doc["file"]["diff"]
    assert f"git commit {doc['file']['applied_commit'][:12]}" in doc["file"]["note"]


def test_block_lists_recorded_differences_when_drift_accepted(project, explorer):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.query("ALTER TABLE a ADD COLUMN note text")
    api.apply(project.target, accept_drift=True)

    chain = explorer.chain()
    _, doc = explorer.json("/api/block/2")

    assert chain["blocks"][1]["mode"] == "drift"
    assert chain["blocks"][1]["differences"] == 1
    assert doc["block"]["mode"] == "drift"
    assert doc["drift"] == ["table public.a: column note text added"]
    assert doc["file"]["state"] == "none"


def test_schema_shows_objects_at_block_and_diff_between_blocks_when_asked(
    project, explorer
):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    project.write({"001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)

    _, at_one = explorer.json("/api/schema?at=1")
    _, between = explorer.json("/api/schema?at=2&from=1")
    _, head = explorer.json("/api/schema")

    assert set(at_one["objects"]["table"]) == {"public.a"}
    assert set(head["objects"]["table"]) == {"public.a", "public.b"}
    assert between["since"] == 1
    assert between["changes"][0] == "table public.b added"
    assert head["snapshot_heights"] == [1, 2]


def test_chain_reports_lock_status_when_chain_lock_present_or_stale(project, explorer):
    project.write({"001-schema/001-a.sql": TABLE_A})
    first = explorer.chain()
    assert first["error"] is None, first["error"]
    assert first["lock"]["present"] is False
    api.lock(project.settings)
    api.apply(project.target)
    locked = explorer.chain()["lock"]
    project.write({"001-schema/002-b.sql": TABLE_B})
    api.lock(project.settings)
    project.write({"001-schema/002-b.sql": TABLE_B + "-- after locking\n"})
    api.apply(project.target)

    stale = explorer.chain()["lock"]

    assert (locked["present"], locked["ok"], locked["files"]) == (True, True, 1)
    assert (stale["present"], stale["ok"], stale["files"]) == (True, False, 2)
    assert any("002-b.sql" in p for p in stale["problems"])


def test_chain_says_why_pending_files_wait_when_template_or_out_of_order(
    project, explorer
):
    project.write({"001-schema/002-b.sql": TABLE_B})
    api.apply(project.target)
    project.write(
        {
            "001-schema/001-a.sql": TABLE_A,
            "001-schema/003-c.sql": "-- Migration: c\n-- Your SQL here\n",
            "001-schema/004-d.sql": "SELECT 1;\n",
        }
    )

    reasons = {p["path"]: p["reason"] for p in explorer.chain()["pending"]}

    assert reasons["001-schema/001-a.sql"].startswith(
        "it is numbered below the applied #1002"
    )
    assert (
        reasons["001-schema/003-c.sql"]
        == "it is still the template: it holds no SQL yet"
    )
    assert reasons["001-schema/004-d.sql"] == "it waits for #1003 001-schema/003-c.sql"


def test_chain_answers_unchanged_when_poll_names_the_current_version(project, explorer):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    version = explorer.chain()["version"]

    _, same = explorer.json(f"/api/chain?unchanged={version}")
    project.write({"001-schema/002-b.sql": TABLE_B})
    _, moved = explorer.json(f"/api/chain?unchanged={version}")

    assert same == {"version": version, "unchanged": True}
    assert moved["version"] != version
    assert [p["path"] for p in moved["pending"]] == ["001-schema/002-b.sql"]


def test_polls_at_once_all_get_the_chain_when_many_pages_are_open(project, explorer):
    # Polls that meet share one read (ExplorerServer.read_chain): each still gets
    # the whole document, and an error in one read reaches every waiting poll.
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    versions: list[str] = []

    def poll() -> None:
        versions.append(explorer.chain()["version"])

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(versions) == 8
    assert len(set(versions)) == 1


@pytest.mark.parametrize(
    ("environment", "reason"),
    [
        ("development", "ready: the next inv migrate applies it"),
        ("production", "production refuses it: lint error index-not-concurrent at"),
    ],
)
def test_chain_shows_lint_findings_of_pending_file_when_a_rule_fires(
    project, environment, reason
):
    from chainops.web.chain import read_chain

    project.write({"001-schema/001-a.sql": TABLE_B})
    api.apply(project.target)
    project.write({"001-schema/002-i.sql": "CREATE INDEX b_note ON b (note);\n"})

    doc = read_chain(project.with_settings(environment=environment))

    (pending,) = doc["pending"]
    assert pending["reason"].startswith(reason)
    (finding,) = [f for f in pending["lint"] if f["rule"] == "index-not-concurrent"]
    assert (finding["severity"], finding["line"]) == ("error", 1)
    assert "CONCURRENTLY" in finding["fix"]


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/api/block/7", 404, "block 7 is not in the ledger"),
        ("/api/block/x", 400, "is not a block height"),
        ("/api/block/", 400, "the block height is missing"),
        ("/api/schema?at=-1", 400, "is not a block height"),
        ("/api/schema?at=5", 404, "block 5 is not in the ledger"),
        ("/api/schema?from=abc", 400, "is not a block height"),
        ("/api/whatever", 404, "is not an endpoint"),
    ],
)
def test_api_answers_json_error_when_request_is_bad(
    project, explorer, path, status, says
):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)

    got, doc = explorer.json(path)

    assert got == status
    assert says in doc["error"]
    assert "Traceback" not in doc["error"]


def test_explorer_never_writes_when_every_endpoint_is_read(project, explorer):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)
    before = project.query(
        "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
        " WHERE relname LIKE 'blockchain_migrations%' ORDER BY relname"
    )
    counts = project.query("SELECT count(*) FROM blockchain_migrations_history")

    for path in ("/api/chain", "/api/block/1", "/api/schema?at=1&from=0", "/"):
        assert explorer.request(path).status == 200

    assert project.query("SELECT count(*) FROM blockchain_migrations_history") == counts
    assert before  # the ledger tables exist


ROUTES = (
    "/",
    "/block/1",
    "/schema",
    "/analytics",
    "/assets/app.js",
    "/assets/app.css",
    "/assets/favicon.svg",
    "/api/chain",
    "/api/block/1",
    "/api/schema?at=1",
)
FOREIGN_HOSTS = (
    "attacker.example",
    "127.0.0.1.attacker.example",
    "localhost.attacker.example:8765",
    "127.0.0.2",
    "0.0.0.0",
    "[::2]",
)


def test_every_route_refuses_foreign_host_and_sends_policy_when_requested(
    project, explorer
):
    project.write({"001-schema/001-a.sql": TABLE_A})
    api.apply(project.target)

    for path in ROUTES:
        reply = explorer.request(path)
        assert reply.status == 200, path
        assert reply.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        for host in FOREIGN_HOSTS:
            refused = explorer.request(path, host=host)
            assert (refused.status, refused.body) == (403, "local access only\n"), (
                path,
                host,
            )
