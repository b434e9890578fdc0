"""Encrypted, content-addressed blob store: the format, whatever backend keeps the bytes.

Each blob is stored once per namespace under an address that is a keyed digest of its SHA-256,
so the file names reveal nothing about the content. Each blob has its own key, derived from the
caller's key (a case key, or the media key) and the blob's address, so no two blobs share a key.
Content is encrypted in 1 MiB chunks with AES-256-GCM (the STREAM construction: a random nonce
prefix, a chunk counter and a final-chunk flag in each nonce/AAD), so large videos are written
and read without holding them in memory and any truncation, reordering or edit is detected.
Blobs written before per-blob keys (``SEB1``) stay readable.

Where the encrypted objects lie is a backend's business (``backend.BlobBackend``): a local
folder (``local``, the embedded default) or an S3-compatible bucket (``s3``), chosen by
``SAFEEYE_BLOB_URL``; see ``open_blob_store``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from safeeye.crypto import derive_key, keyed_digest
from safeeye.errors import ConfigError, IntegrityError
from safeeye.storage.backend import BlobBackend, read_full
from safeeye.storage.local import LocalBackend

if TYPE_CHECKING:
    from safeeye.config import Settings

MAGIC = b"SEB2"  # per-blob key
LEGACY_MAGIC = b"SEB1"  # the caller's key itself
CHUNK = 1024 * 1024
PREFIX_BYTES = 7
TAG_BYTES = 16


class BlobStore:
    """Blobs in ``backend`` (a folder when given a path), addressed by namespace and content,
    encrypted with a caller's key."""

    def __init__(self, backend: BlobBackend | Path, address_key: bytes) -> None:
        self.backend: BlobBackend = LocalBackend(backend) if isinstance(backend, Path) else backend
        self._address_key = address_key

    def address(self, namespace: str, sha256_hex: str) -> str:
        """The address a blob with this SHA-256 has in ``namespace``."""
        return keyed_digest(self._address_key, namespace, sha256_hex)

    def path(self, address: str) -> Path:
        """The file that holds the blob; only a store in a local folder has files."""
        if not isinstance(self.backend, LocalBackend):
            raise ConfigError("this blob store keeps its blobs in a bucket, not in local files")
        return self.backend.path(address)

    def exists(self, address: str) -> bool:
        return self.backend.exists(address)

    def put_bytes(self, data: bytes, key: bytes, namespace: str) -> str:
        """Store ``data`` encrypted under ``key``; return its address (idempotent)."""
        sha = hashlib.sha256(data).hexdigest()
        return self._write(iter_chunks_bytes(data), key, self.address(namespace, sha))

    def put_file(self, source: Path, key: bytes, namespace: str, sha256_hex: str) -> str:
        """Store the file at ``source`` (whose SHA-256 the caller computed) encrypted; streams."""
        with open(source, "rb") as fh:
            return self._write(iter_chunks_file(fh), key, self.address(namespace, sha256_hex))

    def get_bytes(self, address: str, key: bytes) -> bytes:
        """The plaintext of the blob at ``address``."""
        return b"".join(self.iter_plaintext(address, key))

    def iter_plaintext(self, address: str, key: bytes) -> Iterator[bytes]:
        """The blob's plaintext chunk by chunk, each authenticated before it is given out;
        ``NotFoundError`` when there is no blob at ``address``."""
        with self.backend.open(address) as stream:
            header = read_full(stream, len(MAGIC) + PREFIX_BYTES)
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
            block = read_full(stream, CHUNK + TAG_BYTES)
            while True:
                following = read_full(stream, CHUNK + TAG_BYTES)
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

    def stored_bytes(self, address: str) -> bytes:
        """The blob as stored (encrypted), whole: for audits and tests, not for media."""
        with self.backend.open(address) as stream:
            return b"".join(iter(lambda: stream.read(CHUNK), b""))

    def delete(self, address: str) -> bool:
        """Remove the blob (a local file is overwritten first); True if there was one."""
        return self.backend.delete(address)

    def _write(self, chunks: Iterator[bytes], key: bytes, address: str) -> str:
        if self.backend.exists(address):
            return address
        self.backend.put(address, _encrypt(chunks, blob_key(key, address), address))
        return address


def open_blob_store(settings: Settings, address_key: bytes) -> BlobStore:
    """The blob store ``SAFEEYE_BLOB_URL`` names: unset, the folder ``DATA_DIR/blobs`` (the
    embedded default); ``file:///FOLDER``, that folder; ``s3://BUCKET/PREFIX``, a bucket."""
    return BlobStore(blob_backend(settings.blob_url, settings.blob_dir), address_key)


def blob_backend(url: str, default_folder: Path) -> BlobBackend:
    """The backend a blob URL names (``ConfigError`` for one that names none)."""
    if not url:
        return LocalBackend(default_folder)
    parts = urlsplit(url)
    if parts.scheme == "s3":
        from safeeye.storage.s3 import S3Backend  # boto3 is imported only for a bucket

        return S3Backend.from_url(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        return LocalBackend(Path(unquote(parts.path)))
    raise ConfigError("SAFEEYE_BLOB_URL must be s3://BUCKET/PREFIX or file:///FOLDER")


def blob_key(key: bytes, address: str) -> bytes:
    """The key of the one blob at ``address``, derived from the caller's key."""
    return derive_key(key, f"blob:{address}")


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


def _encrypt(chunks: Iterator[bytes], key: bytes, address: str) -> Iterator[bytes]:
    """The stored form of the plaintext ``chunks``: header, then one sealed chunk each."""
    aead = AESGCM(key)
    prefix = os.urandom(PREFIX_BYTES)
    yield MAGIC + prefix
    for index, (chunk, final) in enumerate(_with_final_flag(chunks)):
        yield aead.encrypt(_nonce(prefix, index, final), chunk, _aad(address, index, final))


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
