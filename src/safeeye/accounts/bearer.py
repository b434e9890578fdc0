"""Random bearer secrets (session cookies, API tokens) and the digests kept in their place."""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


def new_secret(prefix: str = "") -> str:
    """A fresh unguessable secret (256 bits, URL-safe), after ``prefix``."""
    return prefix + secrets.token_urlsafe(TOKEN_BYTES)


def digest(secret: str) -> str:
    """The SHA-256 (hex) stored instead of ``secret``: enough for a 256-bit random secret,
    and a lookup by digest gives no timing clue about the secret."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
