"""Accounts (administrators): create, change roles, disable, reset passwords."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["users"])
