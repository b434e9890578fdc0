"""The recipients directory: who gets deletion requests, through which connector, in which
language.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["recipients"])
