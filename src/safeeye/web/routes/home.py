"""The home page (the dashboard comes here) and the API's ``me``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from safeeye.web.auth import SignedIn
from safeeye.web.rendering import render

router = APIRouter()
api = APIRouter(prefix="/api/v1")


@router.get("/", response_class=HTMLResponse)
def home(request: Request, me: SignedIn) -> HTMLResponse:
    return render(request, "home.html")


@router.get("/healthz", response_class=PlainTextResponse)
def health() -> str:
    """For a load balancer: the process answers (it says nothing about the database)."""
    return "ok"


@api.get("/me")
def whoami(me: SignedIn) -> dict[str, Any]:
    """The signed-in person (or the bearer token's owner)."""
    return {
        "account_id": me.account_id,
        "username": me.username,
        "display_name": me.display_name,
        "roles": sorted(me.roles),
        "language": me.language,
        "blur_level": me.blur_level,
        "credential": me.credential,
    }
