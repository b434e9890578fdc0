"""ASGI middleware every answer passes through: strict security headers, no caching of anything
but static files, request size limits, and a generic 500 for anything nobody expected (logged by
type and code location only; the browser never sees a trace)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from safeeye.errors import unexpected
from safeeye.web.errors import error_response

log = logging.getLogger(__name__)

#: No inline script or style anywhere: templates link their CSS and JS from /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": (
        "camera=(), microphone=(), geolocation=(), payment=(), usb=(), display-capture=()"
    ),
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
HSTS = "max-age=63072000; includeSubDomains"
STATIC_PREFIX = "/static/"


class SecurityHeaders:
    """Adds ``HEADERS`` to every HTTP answer (a route may set its own value of one), HSTS over
    HTTPS, and ``Cache-Control: no-store`` to everything but static files (pages and API
    answers may show a case; a browser or proxy must not keep them)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC_PREFIX)
        versioned = static and b"v=" in scope.get("query_string", b"")
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if not static:
                    headers["Cache-Control"] = "no-store"
                    headers["Pragma"] = "no-cache"
                elif versioned:  # /static/x?v=<hash>: a new file is a new URL
                    headers["Cache-Control"] = "public, max-age=31536000, immutable"
                else:
                    headers["Cache-Control"] = "no-cache"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class ErrorShield:
    """Answers an exception nobody handled with a generic 500 (JSON under /api, else the
    error page) instead of letting it reach the server, and refuses a request body larger
    than its path's limit with 413: at once when it declares its length, else as soon as the
    bytes read pass the limit. ``larger_bodies`` maps a path prefix to its own limit (the
    longest prefix wins), for the routes that take uploads."""

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, larger_bodies: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.larger_bodies = sorted((larger_bodies or {}).items(), key=lambda kv: -len(kv[0]))

    def body_limit(self, path: str) -> int:
        return next(
            (limit for prefix, limit in self.larger_bodies if path.startswith(prefix)),
            self.max_body_bytes,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.body_limit(scope["path"])
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._answer(scope, receive, send, 413, "too_large")
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException: the routes' error handlers answer it (FastAPI's body
                    # parsing passes it on as it is).
                    raise HTTPException(413)
            return message

        async def watch(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watch)
        except HTTPException as exc:  # raised where no handler was around it
            if not started:
                code = "too_large" if exc.status_code == 413 else "http"
                await self._answer(scope, receive, send, exc.status_code, code)
        except Exception as exc:
            # Only the type and the code location: the message may quote a URL or a file name.
            unexpected(exc, "web request")
            if not started:
                await self._answer(scope, receive, send, 500, "internal")

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, status: int, code: str
    ) -> None:
        request = Request(scope, receive)
        try:
            response = error_response(request, status, code)
        except Exception as exc:  # the error page itself failed: say it in plain text
            unexpected(exc, "error page")
            body = json.dumps({"error": {"code": code, "message": code}})
            response = Response(body, status_code=status, media_type="application/json")
        await response(scope, receive, send)
