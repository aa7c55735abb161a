"""The explorer's HTTP server on 127.0.0.1: its pages, static assets and JSON.

Standard library only; every route reads, none writes. One HTML shell serves each
view and `assets/app.js` draws it from the JSON, so no inline script needs a hash.
"""

from __future__ import annotations

import errno
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from chainops import api
from chainops.config import Settings, password_of, redact
from chainops.errors import ChainopsError, ConfigError
from chainops.web import block
from chainops.web.chain import read_chain

__all__ = ["ExplorerServer", "listen", "parse_port", "read_chain", "serve"]

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# Names a browser may use for this server; anything else is a DNS-rebinding attempt.
_LOCAL_NAMES = {"127.0.0.1", "localhost", "[::1]"}
PAGES = ("/", "/schema", "/analytics")
ASSETS = {
    "/assets/app.js": ("app.js", "text/javascript"),
    "/assets/app.css": ("app.css", "text/css"),
    "/assets/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

log = logging.getLogger(__name__)


def read_asset(name: str) -> bytes:
    """A file shipped in `chainops/web/assets`."""
    return (resources.files("chainops.web") / "assets" / name).read_bytes()


class BadRequestError(ConfigError):
    """A query the explorer cannot answer as asked (HTTP 400)."""


def _height(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values or values[0] == "":
        return None
    if not values[0].isdigit() or len(values[0]) > 9:
        raise BadRequestError(
            f"{name}={values[0]!r} is not a block height; use 0 or more"
        )
    return int(values[0])


class _Handler(BaseHTTPRequestHandler):
    server: ExplorerServer
    server_version = "chainops-explorer"

    def do_GET(self) -> None:
        host = self.headers.get("Host", HOST).rsplit(":", 1)[0].lower()
        url = urlsplit(self.path)
        if host not in _LOCAL_NAMES:
            self._send(HTTPStatus.FORBIDDEN, "text/plain", b"local access only\n")
        elif url.path in PAGES or url.path.startswith("/block/"):
            self._send(HTTPStatus.OK, "text/html", read_asset("index.html"))
        elif url.path in ASSETS:
            name, kind = ASSETS[url.path]
            self._send(HTTPStatus.OK, kind, read_asset(name))
        elif url.path.startswith("/api/"):
            self._api(url.path, parse_qs(url.query))
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def _api(self, path: str, query: dict[str, list[str]]) -> None:
        settings = self.server.settings
        status = HTTPStatus.OK
        try:
            doc = self._answer(path, query)
        except block.NotFoundError as err:
            status, doc = HTTPStatus.NOT_FOUND, {"error": str(err)}
        except BadRequestError as err:
            status, doc = HTTPStatus.BAD_REQUEST, {"error": str(err)}
        except ChainopsError as err:
            doc = {"error": redact(str(err), password_of(settings.database_url))}
            status = HTTPStatus.SERVICE_UNAVAILABLE
        except Exception as err:  # a front end's last resort: one line, no trace
            log.debug("answering %s failed", path, exc_info=True)
            text = f"unexpected error: {type(err).__name__}: {err}"
            line = redact(text.splitlines()[0], password_of(settings.database_url))
            status, doc = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": line}
        body = json.dumps(doc, separators=(",", ":"), default=str) + "\n"
        self._send(status, "application/json", body.encode("utf-8"))

    def _answer(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        settings = self.server.settings
        if path == "/api/chain":
            doc = self.server.read_chain()
            if query.get("unchanged", [""])[0] == doc["version"]:
                return {"version": doc["version"], "unchanged": True}
            return doc
        if path.startswith("/api/block/"):
            height = _height({"height": [path[len("/api/block/") :]]}, "height")
            if height is None:
                raise BadRequestError(
                    "the block height is missing: /api/block/<height>"
                )
            return block.read_block(api.target(settings), height)
        if path == "/api/schema":
            at, since = _height(query, "at"), _height(query, "from")
            return block.read_schema(api.target(settings), at, since)
        raise block.NotFoundError(
            f"{path} is not an endpoint; use /api/chain, /api/block/<height> or "
            "/api/schema?at=<height>&from=<height>"
        )

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", POLICY)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)  # a poll every two seconds would drown the app's log


class ExplorerServer(ThreadingHTTPServer):
    """Serves the explorer for one project; `server_close` joins request threads."""

    daemon_threads = False

    def __init__(self, settings: Settings, port: int) -> None:
        self.settings = settings
        self._reading = threading.Lock()
        self._pending: Future[dict[str, Any]] | None = None
        try:
            super().__init__((HOST, port), _Handler)
        except OSError as err:
            raise ConfigError(
                f"the explorer cannot listen on {HOST}:{port} ({err.strerror}); "
                "pass another --port or set PORT"
            ) from err

    def read_chain(self) -> dict[str, Any]:
        """The chain document; requests that arrive while it is read share it.

        Every open page polls: polls that meet wait for the one read in progress
        instead of reading the ledger again. None is served from before it arrived.
        """
        mine: Future[dict[str, Any]] = Future()
        with self._reading:
            shared = self._pending
            if shared is None:
                self._pending = mine
        if shared is not None:
            return shared.result()
        try:
            doc = read_chain(self.settings)
        except BaseException as err:
            mine.set_exception(err)
            raise
        finally:
            with self._reading:
                self._pending = None
        mine.set_result(doc)
        return doc

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
