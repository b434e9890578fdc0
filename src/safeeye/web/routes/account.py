"""One's own account: password, language, blur level, second factor, API tokens."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["account"])
