"""The dashboard: open cases, items awaiting review, notices by state, deadlines about to pass, and
charts over time.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["dashboard"])
