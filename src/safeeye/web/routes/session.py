"""Signing in and out: the sign-in page, its form, and sign-out (all through the accounts
service; the route only moves the session cookie)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from safeeye.accounts import LoginFailed, LoginThrottled, SecondFactorRequired
from safeeye.web import csrf
from safeeye.web.auth import (
    PASSWORD_PAGE,
    MaybeSignedIn,
    Principal,
    client_of,
    gateway,
    session_cookie,
    session_cookie_name,
)
from safeeye.web.rendering import render

router = APIRouter()


def local_target(target: str | None) -> str:
    """Where to go after signing in: a path on this site, never another site
    (``//evil.example`` and ``/\\evil.example`` are other sites to a browser)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def after_sign_in(principal: Principal, target: str | None) -> str:
    """Where a signed-in person goes: the password form while they are on a one-time
    password, else ``target`` when it is on this site."""
    return PASSWORD_PAGE if principal.must_change_password else local_target(target)


@router.get("/login")
def login_page(request: Request, principal: MaybeSignedIn, next: str | None = None) -> Response:
    if principal is not None:
        return RedirectResponse(after_sign_in(principal, next), status_code=303)
    response = render(request, "login.html", {"next": local_target(next), "failure": None})
    if getattr(request.state, "stale_session", False):
        response.delete_cookie(session_cookie_name(request))
    return response


@router.post("/login")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    totp_code: Annotated[str, Form(max_length=20)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    try:
        signed = gateway(request).sign_in(
            username, password, totp_code.strip() or None, client_of(request)
        )
    except (LoginFailed, LoginThrottled, SecondFactorRequired) as refusal:
        # One answer whatever was wrong (the service says the same to a guesser); the form
        # keeps the name, never the password.
        status = {"throttled": 429, "totp_required": 401}.get(refusal.code, 401)
        context = {"next": local_target(next), "username": username, "failure": refusal.code}
        headers = (
            {"Retry-After": str(refusal.retry_after)}
            if isinstance(refusal, LoginThrottled)
            else None
        )
        return render(request, "login.html", context, status_code=status, headers=headers)
    response = RedirectResponse(after_sign_in(signed.principal, next), status_code=303)
    response.set_cookie(
        session_cookie_name(request),
        signed.token,
        max_age=signed.max_age_seconds,
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="lax",
    )
    response.delete_cookie(csrf.anonymous_cookie_name(request))
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Ends the session (the CSRF check has already run: another site cannot sign anyone
    out) and goes to the sign-in page."""
    token = session_cookie(request)
    if token is not None:
        gateway(request).sign_out(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(session_cookie_name(request))
    return response
