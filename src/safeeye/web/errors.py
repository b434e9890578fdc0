"""Errors as answers: a typed service error becomes its HTTP status with its (non-sensitive)
message, as JSON under /api and as a plain page elsewhere; nobody ever sees a stack trace."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import Request

from safeeye.accounts import LoginFailed, LoginThrottled, SecondFactorRequired
from safeeye.errors import (
    ConfigError,
    ConflictError,
    FetchError,
    MediaError,
    NotFoundError,
    PermissionDenied,
    SafeEyeError,
    ValidationError,
)
from safeeye.web.auth import (
    API_PREFIX,
    PASSWORD_PAGE,
    NotSignedIn,
    PasswordChangeRequired,
    session_cookie_name,
)
from safeeye.web.csrf import CsrfRefused
from safeeye.web.rendering import render

#: Each typed error's status; another ``SafeEyeError`` is a 500 with its own message.
STATUS: tuple[tuple[type[SafeEyeError], int], ...] = (
    (ValidationError, 422),
    (MediaError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PermissionDenied, 403),
    (LoginThrottled, 429),
    (LoginFailed, 401),
    (SecondFactorRequired, 401),
    (FetchError, 502),
    (ConfigError, 503),
)


def status_of(exc: SafeEyeError) -> int:
    return next((status for kind, status in STATUS if isinstance(exc, kind)), 500)


def wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str | None = None,
    *,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> Response:
    """The answer for an error: ``{"error": {"code", "message"}}`` on the API, else the
    error page (which says what happened by its status, in the page's language)."""
    if wants_json(request):
        error: dict[str, Any] = {"code": code, "message": message or code}
        if details:
            error["details"] = details
        return JSONResponse({"error": error}, status_code=status, headers=headers)
    context = {"status": status, "code": code, "message": message}
    return render(request, "error.html", context, status_code=status, headers=headers)


async def typed_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SafeEyeError)
    return error_response(request, status_of(exc), exc.code, exc.message)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, wrong method, body too large)."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
        exc.status_code, "http"
    )
    # The detail is Starlette's English phrase; the page says it by status instead.
    return error_response(request, exc.status_code, code, None, headers=exc.headers)


async def invalid_request(request: Request, exc: Exception) -> Response:
    """A request that does not fit the route (a missing form field, a wrong type): which
    fields, never the values sent (they may be a password)."""
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(error.get("loc", ())), "type": error.get("type"), "msg": error.get("msg")}
        for error in exc.errors()
    ]
    return error_response(request, 422, "invalid", "the request is malformed", details=details)


async def not_signed_in(request: Request, exc: Exception) -> Response:
    """401 on the API; a page goes to the sign-in page, then back (an HTMX request is told
    to load the sign-in page whole rather than swap it into a fragment)."""
    assert isinstance(exc, NotSignedIn)
    response: Response
    if wants_json(request):
        response = error_response(
            request, 401, "unauthenticated", "sign in or send a valid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )  # fmt: skip
    else:
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = "/login" if back == "/" else f"/login?next={quote(back, safe='')}"
        if request.headers.get("hx-request"):
            response = Response(status_code=401, headers={"HX-Redirect": target})
        else:
            response = RedirectResponse(target, status_code=303)
    if exc.stale_session:
        response.delete_cookie(session_cookie_name(request))
    return response


async def password_change_required(request: Request, exc: Exception) -> Response:
    """A person on a one-time password goes to the password form first."""
    assert isinstance(exc, PasswordChangeRequired)
    if request.headers.get("hx-request"):
        return Response(status_code=403, headers={"HX-Redirect": PASSWORD_PAGE})
    return RedirectResponse(PASSWORD_PAGE, status_code=303)


async def csrf_refused(request: Request, exc: Exception) -> Response:
    return error_response(
        request, 403, "csrf", "the form is out of date or came from another site: reload the page"
    )


def install(app: FastAPI) -> None:
    """Register the handlers; unexpected exceptions are ``security.ErrorShield``'s."""
    app.add_exception_handler(SafeEyeError, typed_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(PasswordChangeRequired, password_change_required)
    app.add_exception_handler(CsrfRefused, csrf_refused)
