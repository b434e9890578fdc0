"""The review queue: blurred previews, face crops side by side, confirm / reject / escalate, one by
one or in bulk.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["review"])
