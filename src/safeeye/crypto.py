"""Encryption primitives: AES-256-GCM sealing, key wrapping and key derivation."""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from safeeye.errors import IntegrityError

KEY_BYTES = 32
NONCE_BYTES = 12


def new_data_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def derive_key(master_key: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from the master key (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"safeeye:" + purpose.encode()
    ).derive(master_key)


def seal(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """``plaintext`` encrypted and authenticated under ``key``: nonce || ciphertext || tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    """The plaintext of ``seal(key, plaintext, aad)``; IntegrityError if key or data is wrong."""
    if len(sealed) < NONCE_BYTES + 16:
        raise IntegrityError("sealed data is too short")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag as exc:
        raise IntegrityError("wrong key or tampered data") from exc


def wrap_key(master_key: bytes, data_key: bytes, label: str) -> bytes:
    """``data_key`` sealed under the master key, bound to ``label`` (e.g. the case id)."""
    return seal(derive_key(master_key, "key-wrap"), data_key, label.encode())


def unwrap_key(master_key: bytes, wrapped: bytes, label: str) -> bytes:
    """The data key inside ``wrap_key(master_key, data_key, label)``."""
    return unseal(derive_key(master_key, "key-wrap"), wrapped, label.encode())


def keyed_digest(key: bytes, *parts: str | bytes) -> str:
    """HMAC-SHA256 of the parts (hex): stable names that reveal nothing without the key."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        mac.update(len(data).to_bytes(4, "big") + data)
    return mac.hexdigest()
