"""Encryption at rest: sealing, key wrapping and the encrypted content-addressed blob store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from safeeye.crypto import new_data_key, seal, unseal, unwrap_key, wrap_key
from safeeye.errors import IntegrityError
from safeeye.storage import CHUNK, BlobStore


def test_sealed_data_opens_only_with_its_key_and_context() -> None:
    key = new_data_key()
    sealed = seal(key, b"secret", b"ctx")
    assert unseal(key, sealed, b"ctx") == b"secret"
    with pytest.raises(IntegrityError):
        unseal(new_data_key(), sealed, b"ctx")
    with pytest.raises(IntegrityError):
        unseal(key, sealed, b"other")
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(IntegrityError):
        unseal(key, tampered, b"ctx")


def test_wrapped_case_key_is_bound_to_its_case() -> None:
    master, data_key = new_data_key(), new_data_key()
    wrapped = wrap_key(master, data_key, "case:1")
    assert unwrap_key(master, wrapped, "case:1") == data_key
    with pytest.raises(IntegrityError):
        unwrap_key(master, wrapped, "case:2")


def test_blob_store_round_trips_large_files_without_revealing_content(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", new_data_key())
    key = new_data_key()
    data = os.urandom(2 * CHUNK + 123)
    source = tmp_path / "video.bin"
    source.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    address = store.put_file(source, key, "media", sha)
    assert store.get_bytes(address, key) == data
    stored = store.path(address).read_bytes()
    assert data[:64] not in stored and sha not in address
    assert store.put_file(source, key, "media", sha) == address  # idempotent
    assert store.address("case:1", sha) != address  # namespaces do not collide


def test_blob_store_detects_truncation_and_tampering(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", new_data_key())
    key = new_data_key()
    address = store.put_bytes(os.urandom(CHUNK + 10), key, "media")
    path = store.path(address)
    original = path.read_bytes()
    path.write_bytes(original[: CHUNK + 16 + 11])  # drop the final chunk
    with pytest.raises(IntegrityError):
        store.get_bytes(address, key)
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0x80]))
    with pytest.raises(IntegrityError):
        store.get_bytes(address, key)


def test_empty_blob_and_delete(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", new_data_key())
    key = new_data_key()
    address = store.put_bytes(b"", key, "media")
    assert store.get_bytes(address, key) == b""
    assert store.delete(address)
    assert not store.exists(address)
    assert not store.delete(address)
