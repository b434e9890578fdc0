"""Encrypted, content-addressed blob store on the local disk.

Each blob is stored once per namespace under an address that is a keyed digest of its SHA-256,
so the file names reveal nothing about the content. Each blob has its own key, derived from the
caller's key (a case key, or the media key) and the blob's address, so no two blobs share a key.
Content is encrypted in 1 MiB chunks with AES-256-GCM (the STREAM construction: a random nonce
prefix, a chunk counter and a final-chunk flag in each nonce/AAD), so large videos are written
and read without holding them in memory and any truncation, reordering or edit is detected.
Blobs written before per-blob keys (``SEB1``) stay readable.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from safeeye.crypto import derive_key, keyed_digest
from safeeye.errors import IntegrityError, NotFoundError

MAGIC = b"SEB2"  # per-blob key
LEGACY_MAGIC = b"SEB1"  # the caller's key itself
CHUNK = 1024 * 1024
PREFIX_BYTES = 7
TAG_BYTES = 16


class BlobStore:
    """Blobs under ``root``, addressed by namespace and content, encrypted with a caller's key."""

    def __init__(self, root: Path, address_key: bytes) -> None:
        self.root = Path(root)
        self._address_key = address_key

    def address(self, namespace: str, sha256_hex: str) -> str:
        """The address a blob with this SHA-256 has in ``namespace``."""
        return keyed_digest(self._address_key, namespace, sha256_hex)

    def path(self, address: str) -> Path:
        return self.root / address[:2] / address[2:4] / address

    def exists(self, address: str) -> bool:
        return self.path(address).exists()

    def put_bytes(self, data: bytes, key: bytes, namespace: str) -> str:
        """Store ``data`` encrypted under ``key``; return its address (idempotent)."""
        sha = hashlib.sha256(data).hexdigest()
        return self._write(iter_chunks_bytes(data), key, self.address(namespace, sha))

    def put_file(self, source: Path, key: bytes, namespace: str, sha256_hex: str) -> str:
        """Store the file at ``source`` (whose SHA-256 the caller computed) encrypted; streams."""
        address = self.address(namespace, sha256_hex)
        if self.exists(address):
            return address
        with open(source, "rb") as fh:
            return self._write(iter_chunks_file(fh), key, address)

    def get_bytes(self, address: str, key: bytes) -> bytes:
        """The plaintext of the blob at ``address``."""
        return b"".join(self.iter_plaintext(address, key))

    def iter_plaintext(self, address: str, key: bytes) -> Iterator[bytes]:
        """The blob's plaintext chunk by chunk, each authenticated before it is given out."""
        path = self.path(address)
        if not path.exists():
            raise NotFoundError("no stored blob at that address")
        with open(path, "rb") as fh:
            header = fh.read(len(MAGIC) + PREFIX_BYTES)
            if len(header) != len(MAGIC) + PREFIX_BYTES:
                raise IntegrityError("stored blob has no valid header")
            if header.startswith(MAGIC):
                aead = AESGCM(blob_key(key, address))
            elif header.startswith(LEGACY_MAGIC):
                aead = AESGCM(key)
            else:
                raise IntegrityError("stored blob has no valid header")
            prefix = header[len(MAGIC) :]
            index = 0
            block = fh.read(CHUNK + TAG_BYTES)
            while True:
                following = fh.read(CHUNK + TAG_BYTES)
                final = not following
                try:
                    yield aead.decrypt(
                        _nonce(prefix, index, final), block, _aad(address, index, final)
                    )
                except InvalidTag as exc:
                    raise IntegrityError("stored blob is damaged or the key is wrong") from exc
                if final:
                    return
                block, index = following, index + 1

    def delete(self, address: str) -> bool:
        """Remove the blob (overwriting it first); True if there was one."""
        path = self.path(address)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return False
        with open(path, "r+b") as fh:
            fh.write(b"\0" * size)
            fh.flush()
            os.fsync(fh.fileno())
        path.unlink()
        return True

    def _write(self, chunks: Iterator[bytes], key: bytes, address: str) -> str:
        final_path = self.path(address)
        if final_path.exists():
            return address
        _private_dirs(self.root, final_path.parent)
        aead = AESGCM(blob_key(key, address))
        prefix = os.urandom(PREFIX_BYTES)
        fd, tmp = tempfile.mkstemp(dir=final_path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(MAGIC + prefix)
                for index, (chunk, final) in enumerate(_with_final_flag(chunks)):
                    out.write(
                        aead.encrypt(
                            _nonce(prefix, index, final), chunk, _aad(address, index, final)
                        )
                    )
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return address


def blob_key(key: bytes, address: str) -> bytes:
    """The key of the one blob at ``address``, derived from the caller's key."""
    return derive_key(key, f"blob:{address}")


def _private_dirs(root: Path, folder: Path) -> None:
    """Create ``folder`` below ``root`` with every new level private (0700)."""
    if folder.is_dir():
        return
    for level in [*reversed(folder.relative_to(root).parents), folder.relative_to(root)]:
        path = root / level
        if not path.is_dir():
            path.mkdir(mode=0o700, exist_ok=True)
            path.chmod(0o700)


def iter_chunks_bytes(data: bytes) -> Iterator[bytes]:
    for start in range(0, max(len(data), 1), CHUNK):
        yield data[start : start + CHUNK]


def iter_chunks_file(fh: BinaryIO) -> Iterator[bytes]:
    first = True
    while True:
        chunk = fh.read(CHUNK)
        if not chunk and not first:
            return
        yield chunk
        first = False
        if len(chunk) < CHUNK:
            return


def _with_final_flag(chunks: Iterator[bytes]) -> Iterator[tuple[bytes, bool]]:
    previous = next(chunks, b"")
    for chunk in chunks:
        yield previous, False
        previous = chunk
    yield previous, True


def _nonce(prefix: bytes, index: int, final: bool) -> bytes:
    return prefix + struct.pack(">IB", index, 1 if final else 0)


def _aad(address: str, index: int, final: bool) -> bytes:
    return address.encode() + struct.pack(">IB", index, 1 if final else 0)
