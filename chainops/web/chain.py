"""The explorer's chain document: blocks, failed attempts, history, chain.lock and
why each pending file waits. Reads through `api` and `store.explore`; never writes.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from chainops import api, report
from chainops import verify as verifier
from chainops.chain import format_time
from chainops.config import Settings, describe_database, password_of, redact
from chainops.errors import ChainopsError
from chainops.model import (
    GENESIS,
    FindingKind,
    MigrationFile,
    Mode,
    Outcome,
    State,
    Target,
)
from chainops.results import VerifyReport
from chainops.source import lockfile
from chainops.store import explore

_LOCK_KINDS = (FindingKind.LOCK, FindingKind.UNLOCKED)
# What store.session writes for a failure: "message at line L:C (SQLSTATE X);
# detail: ...; hint: ...".
_AT_LINE = re.compile(r" at line (\d+):(\d+)")
_DETAIL = re.compile(r"; detail: (.*?)(?:; hint: |$)")
_HINT = re.compile(r"; hint: (.*)$")
_SQLSTATE = re.compile(r"\(SQLSTATE (\w{5})\)")
_SOCKET_HOST = re.compile(r"^\[(?P<dir>[^\]]+)\]:\d+/(?P<db>.+)$")


def describe(settings: Settings, description: str | None) -> str:
    """One description of the database for the header, however it was reached.

    Under `inv dev` DATABASE_URL names the embedded server's socket folder; alone,
    the explorer starts or finds that server itself. Both read the same here.
    """
    if description is None:
        if not settings.database_url:
            return "embedded PostgreSQL"
        description = describe_database(settings.database_url)
    found = _SOCKET_HOST.match(description)
    if found and Path(found["dir"]).is_relative_to(settings.project_root):
        return f"embedded PostgreSQL, database {found['db']}"
    if description.startswith("embedded PostgreSQL"):
        return "embedded PostgreSQL, " + description[len("embedded PostgreSQL ") :]
    return description


def error_parts(text: str | None) -> dict[str, Any]:
    """The line, column, SQLSTATE, DETAIL and hint a recorded failure names."""
    if not text:
        return dict.fromkeys(("line", "column", "sqlstate", "detail", "hint"))
    at = _AT_LINE.search(text)
    detail = _DETAIL.search(text)
    hint = _HINT.search(text)
    state = _SQLSTATE.search(text)
    return {
        "line": int(at.group(1)) if at else None,
        "column": int(at.group(2)) if at else None,
        "sqlstate": state.group(1) if state else None,
        "detail": detail.group(1) if detail else None,
        "hint": hint.group(1) if hint else None,
    }


def history_json(row: explore.HistoryEntry) -> dict[str, Any]:
    return {
        "number": row.number,
        "path": row.path,
        "content_hash": row.content_hash,
        "outcome": row.outcome,
        "started_at": format_time(row.started_at),
        "duration_ms": row.duration_ms,
        "applied_by": row.applied_by,
        "client_host": row.client_host,
        "error": row.error,
        **error_parts(row.error),
    }


Progress = dict[int, tuple[int, int | None]]


def read_history(where: Target) -> tuple[tuple[explore.HistoryEntry, ...], Progress]:
    """The history, and how far each failed or stopped attempt got."""
    schema = where.settings.ledger_schema
    with api.open_session(where, "explorer") as conn:
        return explore.read_history(conn, schema), explore.read_progress(conn, schema)


def _lock_json(
    settings: Settings, verdict: VerifyReport, files: list[MigrationFile]
) -> dict[str, Any]:
    """chain.lock: present or not, its head, and whether the files and blocks match."""
    try:
        lock = lockfile.read_lock(settings.migrations_dir)
    except ChainopsError as err:
        return {"present": True, "head": None, "files": None, "ok": False,
                "problems": [str(err)]}  # fmt: skip
    problems = [f.message for f in verdict.findings if f.kind in _LOCK_KINDS]
    if lock is not None:  # the files too, as migrate warns of a stale lock
        found = verifier.verify_lock(lock, files, created_ok=not settings.is_production)
        problems += [f.message for f in found if f.message not in problems]
    return {
        "present": lock is not None,
        "head": lock.head if lock else None,
        "files": len(lock.entries) if lock else None,
        "ok": lock is not None and not problems,
        "problems": problems,
    }


def _has_sql(text: str) -> bool:
    """Whether a file holds anything but comments and blank lines (the template)."""
    body = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return any(
        line.strip() and not line.strip().startswith("--") for line in body.splitlines()
    )


def _reasons(
    files: dict[str, MigrationFile],
    blocks: list[dict[str, Any]],
    pending: list[dict[str, Any]],
) -> None:
    """Say why each pending file waits, in place."""
    applied = [
        b
        for b in blocks
        if b["mode"] not in (Mode.DRIFT, Mode.BASELINE)
        and b["state"] != State.REVERTED  # a reverted block, or a revert block
    ]
    top = max(applied, key=lambda b: b["number"], default=None)
    blocked: dict[str, Any] | None = None
    for item in pending:
        file = files.get(item["path"])
        if item["state"] == State.FAILED:
            reason = "its last attempt failed; fix the file and run inv migrate again"
        elif item["state"] == State.RUNNING:
            reason = "it stopped midway; run inv migrate --resume to continue"
        elif file is not None and not _has_sql(file.text):
            reason = "it is still the template: it holds no SQL yet"
        elif top is not None and item["number"] < top["number"]:
            reason = (
                f"it is numbered below the applied #{top['number']} {top['path']}; "
                "migrate refuses it unless --allow-out-of-order"
            )
        elif blocked is not None:
            reason = f"it waits for #{blocked['number']} {blocked['path']}"
        else:
            reason = "ready: the next inv migrate applies it"
        item["reason"] = reason
        stops = item["state"] != State.PENDING or reason.startswith("it is still")
        if blocked is None and stops:
            blocked = item


def _lint(
    settings: Settings, files: dict[str, MigrationFile], pending: list[dict[str, Any]]
) -> None:
    """Each pending file's lint findings, as migrate would show them; production
    refuses a file with an error-level finding, and then that is why it waits."""
    todo = [files[p["path"]] for p in pending if p["path"] in files]
    for item in pending:
        item["lint"] = []
    if not todo:
        return
    from chainops.lint import live  # pglast: only when files are pending

    found = live.lint_files(
        None, settings, live.sources_of(todo), one_run=True, skip_unparsable=True
    )
    by_path = {item["path"]: item for item in pending}
    for f in found.shown:
        item = by_path[f.path]
        item["lint"].append(
            {
                "rule": f.rule,
                "severity": str(f.severity),
                "line": f.line,
                "column": f.column,
                "message": f.message,
                "fix": f.fix,
            }
        )
        if f.is_error and settings.is_production and item["state"] == State.PENDING:
            item["reason"] = (
                f"production refuses it: lint error {f.rule} at line {f.line}"
            )


def read_chain(settings: Settings) -> dict[str, Any]:
    """The chain as a JSON-ready document: blocks, pending files, attempts, history,
    chain.lock and problems; `version` changes whenever any of it does."""
    doc: dict[str, Any] = {
        "database": describe(settings, None),
        "head": GENESIS,
        "height": 0,
        "blocks": [],
        "pending": [],
        "attempts": [],
        "history": [],
        "lock": None,
        "problems": [],
        "error": None,
    }
    try:
        where = api.target(settings)
        # The embedded server's own description names its version, not the
        # database: its conninfo reads as it does under `inv dev`.
        shown = describe_database(where.conninfo) if where.conninfo else None
        doc["database"] = describe(settings, shown or where.description)
        # Three reads on three connections: the server works on them side by side.
        with ThreadPoolExecutor(3, thread_name_prefix="explorer-read") as pool:
            reading = pool.submit(api.status, where)
            checking = pool.submit(api.verify, where)  # the lock and the schema too
            listing = pool.submit(read_history, where)
            files = api.load_files(settings)  # once, for reasons, lint and the lock
            status, verdict, (history, progress) = (
                reading.result(),
                checking.result(),
                listing.result(),
            )
    except ChainopsError as err:
        doc["error"] = redact(str(err), password_of(settings.database_url))
    else:
        migrations = report.status_document(status)["migrations"]
        by_height = {b.height: b for e in status.entries if (b := e.block)}
        blocks = sorted(
            (m for m in migrations if m["height"] is not None),
            key=lambda m: int(m["height"]),
        )
        for item in blocks:
            block = by_height[item["height"]]
            item["client_host"] = block.client_host
            item["differences"] = (
                len(block.details.splitlines()) if block.details else 0
            )
        doc["head"], doc["height"] = status.head, status.height
        doc["blocks"] = blocks
        doc["pending"] = [m for m in migrations if m["height"] is None]
        by_path = {f.path: f for f in files}
        _reasons(by_path, blocks, doc["pending"])
        _lint(settings, by_path, doc["pending"])
        for item in doc["pending"]:  # a non-transactional file's statements done
            done, total = progress.get(item["number"], (None, None))
            item["statements_done"], item["statements_total"] = done, total
        rows = [history_json(row) for row in history]
        doc["history"] = rows
        doc["attempts"] = [r for r in rows if r["outcome"] == Outcome.FAILED]
        doc["lock"] = _lock_json(settings, verdict, files)
        doc["problems"] = [report.finding_json(f) for f in verdict.findings]
    doc["ok"] = doc["error"] is None and not doc["problems"]
    canonical = json.dumps(doc, sort_keys=True).encode("utf-8")
    doc["version"] = hashlib.sha256(canonical).hexdigest()[:16]
    return doc
