"""Cross-site request forgery: every state-changing request a browser sends with our cookies
must carry a token that only our own pages know.

A signed-in person's token is their session's (the accounts service derives it from the
session under a service key: it changes with every session and nothing more is stored). Before
sign-in it is an HMAC keyed by a random ``safeeye_csrf`` cookie, so a sign-in form cannot be
posted from another site either. Pages put the token in a hidden ``csrf_token`` field and in
the ``X-CSRF-Token`` header that HTMX sends. Requests that carry a bearer token are exempt: a
browser never adds an ``Authorization`` header to a request another site makes, and such a
request is never authenticated by the cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from safeeye.web.auth import (
    API_PREFIX,
    NotSignedIn,
    bearer_token,
    current_principal,
    session_cookie,
)

FIELD = "csrf_token"
HEADER = "x-csrf-token"
ANONYMOUS_COOKIE = "safeeye_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_PURPOSE = b"safeeye web csrf v1"


class CsrfRefused(Exception):
    """A state-changing request without the page's token: 403 (see ``errors``)."""


def token_for(secret: str) -> str:
    """The token of the pages of a visitor who holds the anonymous cookie ``secret``."""
    mac = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def anonymous_cookie_name(request: Request) -> str:
    return f"__Host-{ANONYMOUS_COOKIE}" if request.url.scheme == "https" else ANONYMOUS_COOKIE


def page_token(request: Request) -> str:
    """The token to put in this page's forms: the live session's, else the anonymous
    cookie's (a visitor without one gets one: ``request.state.new_csrf_cookie``, which the
    page's answer sets)."""
    session_token = getattr(request.state, "csrf_token", None)
    if session_token:
        return session_token  # type: ignore[no-any-return]
    secret = request.cookies.get(anonymous_cookie_name(request)) or getattr(
        request.state, "new_csrf_cookie", None
    )
    if not secret:
        secret = secrets.token_urlsafe(32)
        request.state.new_csrf_cookie = secret
    return token_for(secret)


async def verify_csrf(request: Request) -> None:
    """App-wide dependency: refuses (``CsrfRefused``) a POST, PUT, PATCH or DELETE sent with
    cookies unless it carries its session's token (or, before sign-in, its anonymous cookie's),
    and any such request a browser marks as sent from another site. A request whose session
    has ended meanwhile, and that has nothing else, is ``NotSignedIn`` (sign in again)."""
    if request.method in SAFE_METHODS or bearer_token(request) is not None:
        return
    if request.url.path.startswith(API_PREFIX) and session_cookie(request) is None:
        # The API takes a token or a session, never the anonymous cookie: nobody is signed
        # in, which is what the caller must hear (401), whatever cookies a browser added.
        raise NotSignedIn()
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRefused()
    expected: list[str] = []
    if session_cookie(request) is not None:
        await run_in_threadpool(current_principal, request)
        if request.state.csrf_token:
            expected.append(request.state.csrf_token)
    # Either token will do: both are secrets only this browser holds (a sign-in form may be
    # posted beside a session cookie that has expired meanwhile).
    anonymous = request.cookies.get(anonymous_cookie_name(request))
    if anonymous:
        expected.append(token_for(anonymous))
    if not expected:
        if getattr(request.state, "stale_session", False):
            raise NotSignedIn(stale_session=True)
        raise CsrfRefused()
    sent = request.headers.get(HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(FORMS):
        value = (await request.form()).get(FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not any(hmac.compare_digest(sent.encode(), t.encode()) for t in expected):
        raise CsrfRefused()
