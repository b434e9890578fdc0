"""A local HTTP server for tests that misbehaves on purpose, route by route.

Each test registers the routes it needs; anything else answers 404 (so robots.txt means
"allow all" unless a test registers one). Handlers get the request handler and may write
anything, including nothing at all::

    with HostileServer() as server:
        server.add("/a.png", PNG, content_type="image/png")
        server.route("/slow", trickle(b"x", every=0.5))
        server.route("/flaky", sequence(status(503, headers={"Retry-After": "1"}), static(b"ok")))
        server.route("/bomb.html", encoded(gzip.compress(b"<p>" * 10**6), "gzip, gzip"))
        fetcher.fetch(server.url("/a.png"))
        assert server.hits("/a.png") == 1

It binds to 127.0.0.1 by default; any 127.0.0.0/8 address works on Linux (``host="127.0.0.2"``).
Pass ``tls=`` a server ``ssl.SSLContext`` to serve https.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

from safeeye.errors import FetchError

if TYPE_CHECKING:
    from safeeye.ingest.fetcher import Fetcher

Handler = Callable[["HostileHandler"], None]
#: The allow-list that lets a fetcher reach this server (and nothing else local).
LOOPBACK_ONLY = ("127.0.0.1/32",)
#: The ``make_fetcher`` fixture of ``fetch_fixtures``: policy fields as keywords.
MakeFetcher = Callable[..., "Fetcher"]


@dataclass(frozen=True)
class Recorded:
    """One request the server received."""

    path: str
    query: str
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival


class HostileHandler(BaseHTTPRequestHandler):
    """The request handler routes receive; ``self.server`` is the HostileServer's HTTP server."""

    server: _HTTPServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        owner = self.server.owner
        owner._record(
            Recorded(
                parts.path, parts.query, {k.lower(): v for k, v in self.headers.items()}, now()
            )
        )
        handler = owner._routes.get(parts.path) or owner._prefixed(parts.path)
        try:
            if handler is None:
                send(self, 404, b"not found", content_type="text/plain")
            else:
                handler(self)
        except OSError:  # the client hung up, as fetchers under test do on purpose
            self.close_connection = True

    @property
    def stopping(self) -> threading.Event:
        """Set when the server shuts down: endless handlers must return."""
        return self.server.owner.stopping

    def log_message(self, format: str, *args: object) -> None:
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: HostileServer

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up mid-response are the point of these tests


class HostileServer:
    """A threaded ``http.server`` with per-test routes and a log of what it received."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self._routes: dict[str, Handler] = {}
        self._prefixes: dict[str, Handler] = {}
        self._log: list[Recorded] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        self._server = _HTTPServer((host, port), HostileHandler)
        self._server.owner = self
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> HostileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HostileServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, handler: Handler) -> None:
        """Answer GET ``path`` (query ignored) with ``handler``."""
        self._routes[path] = handler

    def route_prefix(self, prefix: str, handler: Handler) -> None:
        """Answer every GET path under ``prefix`` (longest prefix wins) with ``handler``."""
        self._prefixes[prefix] = handler

    def _prefixed(self, path: str) -> Handler | None:
        matches = [p for p in self._prefixes if path.startswith(p)]
        return self._prefixes[max(matches, key=len)] if matches else None

    def add(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        content_type: str | None = "application/octet-stream",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer ``path`` with a fixed response."""
        self.route(path, static(body, status=status, content_type=content_type, headers=headers))

    def requests(self, path: str | None = None) -> list[Recorded]:
        """What was received (for ``path`` only, when given), in arrival order."""
        with self._lock:
            return [r for r in self._log if path is None or r.path == path]

    def hits(self, path: str) -> int:
        return len(self.requests(path))

    def _record(self, recorded: Recorded) -> None:
        with self._lock:
            self._log.append(recorded)


def now() -> float:
    return time.monotonic()


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    *,
    content_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    content_length: int | None = None,
) -> None:
    """Write a whole response (``content_length`` overrides the true length: a lie)."""
    handler.send_response(status)
    if content_type:
        handler.send_header("Content-Type", content_type)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header(
        "Content-Length", str(len(body) if content_length is None else content_length)
    )
    handler.end_headers()
    if body:
        handler.wfile.write(body)


def static(
    body: bytes = b"",
    *,
    status: int = 200,
    content_type: str | None = "application/octet-stream",
    headers: Mapping[str, str] | None = None,
) -> Handler:
    """A fixed response."""
    return lambda h: send(h, status, body, content_type=content_type, headers=headers)


def encoded(body: bytes, *codings: str, content_type: str = "application/octet-stream") -> Handler:
    """``body`` (already encoded) sent with one Content-Encoding header per entry of ``codings``
    (``encoded(b, "gzip, gzip")`` sends one header listing two, ``encoded(b, "gzip", "gzip")``
    two headers)."""

    def handle(h: HostileHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        for coding in codings:
            h.send_header("Content-Encoding", coding)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handle


def status(code: int, *, headers: Mapping[str, str] | None = None) -> Handler:
    """An empty response with ``code``."""
    return static(b"", status=code, content_type="text/plain", headers=headers)


def redirect(location: str, code: int = 302) -> Handler:
    """A redirect to ``location`` (absolute or relative, sent as given)."""
    return status(code, headers={"Location": location})


def sequence(*handlers: Handler) -> Handler:
    """The n-th request gets the n-th handler; the last one answers every later request."""
    served = iter(range(10**9))
    lock = threading.Lock()

    def handle(h: HostileHandler) -> None:
        with lock:
            n = next(served)
        handlers[min(n, len(handlers) - 1)](h)

    return handle


def maze(prefix: str = "/maze/") -> Handler:
    """An endless site: every page links to two new, deeper pages (a crawler trap)."""

    def handle(h: HostileHandler) -> None:
        here = urlsplit(h.path).path.rstrip("/")
        links = "".join(f'<a href="{here}/{n}">{n}</a>' for n in (1, 2))
        send(h, 200, f"<html><body>{links}</body></html>".encode(), content_type="text/html")

    return handle


def hang_up() -> Handler:
    """Close the connection without answering (a connection error for the client)."""

    def handle(h: HostileHandler) -> None:
        h.close_connection = True
        h.connection.shutdown(socket.SHUT_RDWR)

    return handle


def endless(
    chunk: bytes = b"\0" * 65536, *, content_type: str = "application/octet-stream"
) -> Handler:
    """A body without Content-Length that never ends (until the client hangs up)."""

    def handle(h: HostileHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.end_headers()
        while not h.stopping.is_set():
            h.wfile.write(chunk)

    return handle


def declared_length(length: int, *, sent: bytes = b"\0" * 1024) -> Handler:
    """Headers declaring ``length`` bytes, then ``sent`` and a pause (the rest never comes)."""

    def handle(h: HostileHandler) -> None:
        send(h, 200, sent, content_type="application/octet-stream", content_length=length)
        h.wfile.flush()
        h.stopping.wait(5)

    return handle


def trickle(
    data: bytes = b"x", *, every: float = 0.5, headers_too: bool = False, limit: float = 30.0
) -> Handler:
    """One byte of ``data`` (repeated) every ``every`` seconds, for at most ``limit`` seconds.

    With ``headers_too`` the status line and headers themselves trickle.
    """

    def handle(h: HostileHandler) -> None:
        if headers_too:
            stream: Iterable[int] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
        else:
            h.send_response(200)
            h.send_header("Content-Type", "application/octet-stream")
            h.send_header("Content-Length", "1000000")
            h.end_headers()
            h.wfile.flush()
            stream = ()
        end = now() + limit
        pending = list(stream)
        while not h.stopping.is_set() and now() < end:
            byte = pending.pop(0) if pending else data[0]
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
            h.stopping.wait(every)

    return handle


def fails(code: str, call: Callable[[], object]) -> FetchError:
    """The FetchError ``call`` raises, which must have ``code``."""
    with pytest.raises(FetchError) as caught:
        call()
    assert caught.value.code == code, caught.value.as_text()
    return caught.value
