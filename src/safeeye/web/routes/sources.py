"""Sources: add, pause and resume, last visit and errors."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["sources"])
