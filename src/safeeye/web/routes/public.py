"""The victim's side, without an account: the SOS report form and the status page (tracking code
and PIN).
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["public"])
