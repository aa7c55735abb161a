"""The ledger explorer: a read-only page of the chain and `/api/chain`, on 127.0.0.1.

Standard library HTTP server only; it reads through `api.status` and never writes.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import logging
from collections.abc import Callable
from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from chainops import api, report
from chainops.config import Settings, describe_database, password_of, redact
from chainops.errors import ChainopsError, ConfigError, short
from chainops.model import GENESIS

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
REFRESH_MS = 2000
# Names a browser may use for this server; anything else is a DNS-rebinding attempt.
_LOCAL_NAMES = {"127.0.0.1", "localhost", "[::1]"}

log = logging.getLogger(__name__)

_SCRIPT = (
    "setInterval(async () => {"
    " try {"
    ' const r = await fetch("/api/chain", {cache: "no-store"});'
    " const doc = await r.json();"
    " if (doc.version !== document.body.dataset.version) location.reload();"
    " } catch (e) {}"
    f" }}, {REFRESH_MS});"
)
_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem;
  color: #222; }
h1 { font-size: 1.3rem; margin-bottom: .2rem; }
.meta { color: #666; margin-top: 0; }
.banner { background: #b00020; color: #fff; padding: .8rem 1rem; border-radius: 6px; }
.banner ul { margin: .4rem 0 0; padding-left: 1.2rem; }
.block { border: 2px solid #2e7d32; border-radius: 6px; padding: .6rem .9rem; }
.block.changed, .block.missing { border-color: #b00020; }
.block.pending { border: 2px dashed #999; color: #555; }
.block.failed, .block.running { border: 2px dashed #b00020; }
.link { text-align: center; color: #888; margin: .1rem 0; }
.title { font-weight: 600; }
.hash { font-family: ui-monospace, monospace; }
.state { float: right; font-size: .8rem; text-transform: uppercase; }
.detail { color: #555; font-size: .9rem; }
.empty { color: #666; }
"""


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Only the two inline blocks above may run: a file name can never become markup.
_POLICY = (
    f"default-src 'none'; script-src {_csp_hash(_SCRIPT)}; "
    f"style-src {_csp_hash(_STYLE)}; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def read_chain(settings: Settings) -> dict[str, Any]:
    """The chain as a JSON-ready document: blocks, pending files and problems."""
    database = (
        describe_database(settings.database_url)
        if settings.database_url
        else "the embedded PostgreSQL"
    )
    doc: dict[str, Any] = {
        "database": database,
        "head": GENESIS,
        "height": 0,
        "blocks": [],
        "pending": [],
        "problems": [],
        "error": None,
    }
    try:
        where = api.target(settings)
        doc["database"] = where.description
        status = api.status(where)
        verdict = api.verify(where)  # the lock and the schema too: verify's answer
    except ChainopsError as err:
        doc["error"] = redact(str(err), password_of(settings.database_url))
    else:
        status_doc = report.status_document(status)
        migrations = status_doc["migrations"]
        doc["head"], doc["height"] = status.head, status.height
        doc["blocks"] = sorted(
            (m for m in migrations if m["height"] is not None),
            key=lambda m: int(m["height"]),
        )
        doc["pending"] = [m for m in migrations if m["height"] is None]
        doc["problems"] = [report.finding_json(f) for f in verdict.findings]
    doc["ok"] = doc["error"] is None and not doc["problems"]
    canonical = json.dumps(doc, sort_keys=True).encode("utf-8")
    doc["version"] = hashlib.sha256(canonical).hexdigest()[:16]
    return doc


def render_page(doc: dict[str, Any]) -> str:
    """The HTML page for a chain document; every value from the ledger is escaped."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>chainops ledger</title>",
        f"<style>{_STYLE}</style>",
        f'<noscript><meta http-equiv="refresh" content="{REFRESH_MS // 1000}">'
        "</noscript>",
        f'</head><body data-version="{escape(doc["version"])}">',
        "<h1>chainops ledger</h1>",
        f'<p class="meta">{escape(doc["database"])} · {doc["height"]} blocks · head '
        f'<span class="hash">{escape(short(doc["head"]))}</span> · read-only, '
        "refreshes itself</p>",
        *_banner(doc),
    ]
    heights = {b["block_hash"]: b["height"] for b in doc["blocks"]}
    for i, block in enumerate(doc["blocks"]):
        if i:
            parts.append('<div class="link">↑</div>')
        parts.append(_block_html(block, heights))
    if not doc["blocks"] and doc["error"] is None:
        parts.append('<p class="empty">No blocks yet: nothing has been applied.</p>')
    if doc["pending"]:
        parts.append("<h2>After the head</h2>")
    for i, item in enumerate(doc["pending"]):
        if i or doc["blocks"]:
            parts.append('<div class="link">⋮</div>')
        parts.append(_pending_html(item))
    parts += [f"<script>{_SCRIPT}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


def _banner(doc: dict[str, Any]) -> list[str]:
    if doc["error"] is not None:
        return [f'<div class="banner">✗ {escape(doc["error"])}</div>']
    if not doc["problems"]:
        return []
    items = "".join(f"<li>{escape(p['message'])}</li>" for p in doc["problems"])
    n = len(doc["problems"])
    return [
        f'<div class="banner">✗ Verification failed: {n} problem'
        f"{'s' if n != 1 else ''}; nothing is applied until they are fixed"
        f"<ul>{items}</ul></div>"
    ]


def _block_html(block: dict[str, Any], heights: dict[str, int]) -> str:
    previous = block["previous_hash"]
    if previous == GENESIS:
        link = "genesis"
    elif previous in heights:
        link = f"block {heights[previous]}"
    else:
        link = "an unknown block"
    state = escape(block["state"])
    return (
        f'<div class="block {state}"><span class="state">{state}</span>'
        f'<div class="title">#{block["number"]} {escape(block["path"])}</div>'
        f'<div class="detail">block {block["height"]} · hash '
        f'<span class="hash">{escape(short(block["block_hash"]))}</span> · links to '
        f'{link} (<span class="hash">{escape(short(previous))}</span>) · content '
        f'<span class="hash">{escape(short(block["content_hash"]))}</span></div>'
        f'<div class="detail">applied {escape(block["applied_at"] or "")} by '
        f"{escape(block['applied_by'])} in {block['duration_ms']} ms "
        f"({escape(block['mode'])})</div></div>"
    )


def _pending_html(item: dict[str, Any]) -> str:
    state = escape(item["state"])
    error = (
        f'<div class="detail">{escape(item["error"])}</div>' if item["error"] else ""
    )
    return (
        f'<div class="block {state}"><span class="state">{state}</span>'
        f'<div class="title">#{item["number"]} {escape(item["path"])}</div>'
        f"{error}</div>"
    )


class _Handler(BaseHTTPRequestHandler):
    server: ExplorerServer
    server_version = "chainops-explorer"

    def do_GET(self) -> None:
        host = self.headers.get("Host", HOST).rsplit(":", 1)[0].lower()
        path = urlsplit(self.path).path
        if host not in _LOCAL_NAMES:
            self._send(HTTPStatus.FORBIDDEN, "text/plain", b"local access only\n")
        elif path not in ("/", "/api/chain"):
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        else:
            try:
                doc = read_chain(self.server.settings)
            except Exception as err:  # a front end's last resort: one line, no trace
                log.debug("reading the chain failed", exc_info=True)
                text = f"✗ unexpected error: {type(err).__name__}: {err}"
                secrets = password_of(self.server.settings.database_url)
                line = redact(text.splitlines()[0], secrets) + "\n"
                self._send(
                    HTTPStatus.INTERNAL_SERVER_ERROR, "text/plain", line.encode()
                )
            else:
                if path == "/":
                    body, kind = render_page(doc), "text/html"
                else:
                    body, kind = json.dumps(doc, indent=2) + "\n", "application/json"
                self._send(HTTPStatus.OK, kind, body.encode("utf-8"))

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _POLICY)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)  # a poll every two seconds would drown the app's log


class ExplorerServer(ThreadingHTTPServer):
    """Serves the explorer for one project; `server_close` joins request threads."""

    daemon_threads = False

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as err:
            raise ConfigError(
                f"the explorer cannot listen on {HOST}:{port} ({err.strerror}); "
                "pass another --port or set PORT"
            ) from err

    def handle_error(self, request: object, client_address: object) -> None:
        # A browser that reloads mid-response resets the connection: not worth a trace.
        log.debug("request from %s failed", client_address, exc_info=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"


def parse_port(value: str | None) -> int:
    """The port from PORT, or the default; 0 lets the system pick a free one."""
    if not value:
        return DEFAULT_PORT
    if not value.isdigit() or int(value) > 65535:
        raise ConfigError(f"PORT={value!r} is not a port number; use 0 to 65535")
    return int(value)


def listen(settings: Settings, port: int) -> ExplorerServer:
    """A server on `port`, or on a free port when another program holds `port`."""
    try:
        return ExplorerServer(settings, port)
    except ConfigError as err:
        cause = err.__cause__
        if port == 0 or not isinstance(cause, OSError):
            raise
        if cause.errno != errno.EADDRINUSE:
            raise
        return ExplorerServer(settings, 0)


def serve(settings: Settings, port: int, on_ready: Callable[[str], None]) -> None:
    """Serve until interrupted, on a free port when `port` is taken."""
    server = listen(settings, port)
    try:
        on_ready(server.url)
        server.serve_forever()
    finally:
        server.server_close()
