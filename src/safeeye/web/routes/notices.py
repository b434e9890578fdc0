"""Deletion requests and batches: drafts to approve and send, state, deadline, evidence, the
recipients' answers.
"""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["notices"])
