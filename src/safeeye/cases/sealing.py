"""How case data is sealed under the case key: one place for every field, and its binding.

Each sealed value is bound (AES-GCM associated data) to its purpose and row id, so a value
cannot be moved to another row or field. Destroying the case key makes all of it unreadable.
"""

from __future__ import annotations

import json
from typing import Any

from safeeye.crypto import seal, unseal
from safeeye.keyring import Keyring


def seal_consent(key: bytes, case_id: int, text: str) -> bytes:
    return seal(key, text.encode(), f"consent:{case_id}".encode())


def open_consent(key: bytes, case_id: int, sealed: bytes) -> str:
    return unseal(key, sealed, f"consent:{case_id}".encode()).decode()


def reference_digest(key: bytes, kind: str, sha256: str) -> str:
    """The name a reference's content has within its case (finds a file given twice)."""
    return Keyring.case_digest(key, kind, sha256)


def seal_reference_hashes(key: bytes, reference_id: int, sha256: str, md5: str) -> bytes:
    return seal(key, bytes.fromhex(sha256) + bytes.fromhex(md5), _aad("ref-hashes", reference_id))


def open_reference_hashes(key: bytes, reference_id: int, sealed: bytes) -> tuple[str, str]:
    """``(sha256, md5)`` of a reference, in hex."""
    raw = unseal(key, sealed, _aad("ref-hashes", reference_id))
    return raw[:32].hex(), raw[32:].hex()


def seal_reference_hash(key: bytes, row_id: int, pdq_hex: str) -> bytes:
    return seal(key, bytes.fromhex(pdq_hex), _aad("ref-hash", row_id))


def open_reference_hash(key: bytes, row_id: int, sealed: bytes) -> str:
    return unseal(key, sealed, _aad("ref-hash", row_id)).hex()


def seal_match_evidence(key: bytes, match_id: int, evidence: dict[str, Any]) -> bytes:
    body = json.dumps(evidence, sort_keys=True, separators=(",", ":"), default=str)
    return seal(key, body.encode(), _aad("match", match_id))


def open_match_evidence(key: bytes, match_id: int, sealed: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(unseal(key, sealed, _aad("match", match_id)))
    return data


def _aad(purpose: str, row_id: int) -> bytes:
    return f"{purpose}:{row_id}".encode()
