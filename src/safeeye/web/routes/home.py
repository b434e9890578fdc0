"""The health check and the API's ``me`` (the home page is the dashboard: ``dashboard.py``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from safeeye.web.auth import SignedIn

router = APIRouter()
api = APIRouter(prefix="/api/v1")


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
