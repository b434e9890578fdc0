"""The audit log: read-only, filterable, with the result of verifying its chain."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["audit"])
