"""Cases: list, create, consent, face photos and known media, the victim's allow-list, matches and
notices per case, purge.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["cases"])
