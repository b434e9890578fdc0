"""Exact content hashes (SHA-256, MD5), computed while streaming a file once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

READ_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ContentHashes:
    sha256: str
    md5: str
    size: int


def hash_file(path: Path) -> ContentHashes:
    """SHA-256, MD5 and byte size of the file at ``path``."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(READ_CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return ContentHashes(sha.hexdigest(), md5.hexdigest(), size)


def hash_bytes(data: bytes) -> ContentHashes:
    """SHA-256, MD5 and size of ``data``."""
    return ContentHashes(
        hashlib.sha256(data).hexdigest(),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        len(data),
    )
