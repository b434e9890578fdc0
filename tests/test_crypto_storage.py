"""Encryption at rest: sealing, key wrapping and the encrypted content-addressed blob store,
the store run against both backends (a local folder, and a local S3-compatible server)."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import select

from conftest import FACES, act, make_app, make_settings
from safeeye.cases.service import add_faces, create_case
from safeeye.config import Settings
from safeeye.crypto import new_data_key, seal, unseal, unwrap_key, wrap_key
from safeeye.db.models import Case, Media, Reference
from safeeye.errors import ConfigError, IntegrityError, NotFoundError
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.scan import Scanner
from safeeye.storage import CHUNK, LEGACY_MAGIC, BlobStore, open_blob_store
from safeeye.storage.local import LocalBackend
from safeeye.storage.s3 import MIN_PART_SIZE, S3Backend

MiB = 1024 * 1024


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


# --- the blob store, on each backend -------------------------------------------------------


# A local S3-compatible server (moto's) in a process of its own, as a real one would be, so
# what the tests measure in this process is the client alone; it stops when stdin closes.
S3_SERVER = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a local S3-compatible server on 127.0.0.1, for the whole test session."""
    server = subprocess.Popen(
        [sys.executable, "-c", S3_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None and server.stdin is not None
    port = server.stdout.readline().strip()
    if not port.isdigit():
        server.kill()
        pytest.fail("the local S3 server did not start")
    yield f"http://127.0.0.1:{port}"
    server.stdin.close()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty bucket on the local server, with credentials in the environment as an
    operator would set them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "safeeye-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "safeeye-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    name = f"blobs-{uuid.uuid4().hex[:12]}"
    _client(s3_endpoint).create_bucket(Bucket=name)
    return name


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="safeeye-test",
        aws_secret_access_key="safeeye-test-secret",
        region_name="us-east-1",
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """A blob store in a local folder, then in a bucket (small parts, so tests see several)."""
    if request.param == "local":
        return BlobStore(LocalBackend(tmp_path / "blobs"), new_data_key())
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("bucket")
    backend = S3Backend(bucket, "safeeye/blobs", endpoint_url=endpoint, part_size=MIN_PART_SIZE)
    return BlobStore(backend, new_data_key())


def test_blobs_round_trip_small_and_multi_chunk_content_without_revealing_it(
    store: BlobStore, tmp_path: Path
) -> None:
    key = new_data_key()
    for data in (b"", b"x", os.urandom(5000), os.urandom(2 * CHUNK + 123)):
        address = store.put_bytes(data, key, "media")
        assert store.get_bytes(address, key) == data
        stored = store.stored_bytes(address)
        assert stored.startswith(b"SEB2")
        assert len(data) < 64 or data[:64] not in stored
        assert hashlib.sha256(data).hexdigest() not in address
    data = os.urandom(3 * CHUNK)
    source = tmp_path / "video.bin"
    source.write_bytes(data)
    address = store.put_file(source, key, "case:1", hashlib.sha256(data).hexdigest())
    assert store.get_bytes(address, key) == data


def test_put_is_idempotent_and_namespaces_do_not_collide(store: BlobStore) -> None:
    key = new_data_key()
    data = os.urandom(CHUNK + 1)
    address = store.put_bytes(data, key, "media")
    stored = store.stored_bytes(address)
    assert store.put_bytes(data, key, "media") == address
    assert store.stored_bytes(address) == stored  # not written again (a new nonce would show)
    other = store.put_bytes(data, key, "case:1")
    assert other != address and store.get_bytes(other, key) == data


def test_a_large_blob_is_written_and_read_in_bounded_memory(
    store: BlobStore, tmp_path: Path
) -> None:
    data = os.urandom(32 * MiB + 5)
    source = tmp_path / "long-video.bin"
    source.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    del data
    key = new_data_key()
    store.exists("0" * 64)  # the S3 client and its API models are loaded before measuring
    tracemalloc.start()
    try:
        address = store.put_file(source, key, "media", sha)
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        digest, sizes = hashlib.sha256(), []
        for chunk in store.iter_plaintext(address, key):
            digest.update(chunk)
            sizes.append(len(chunk))
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hexdigest() == sha
    assert max(sizes) == CHUNK and len(sizes) == 33

    # At most one part (5 MiB) and a few chunks are held, never the 32 MiB.
    assert write_peak < 2 * MIN_PART_SIZE and read_peak < 8 * CHUNK


def test_tampering_truncation_and_a_wrong_key_are_detected(store: BlobStore) -> None:
    key = new_data_key()
    address = store.put_bytes(os.urandom(CHUNK + 10), key, "media")
    original = store.stored_bytes(address)
    damaged = [
        original[: 11 + CHUNK + 16],  # the final chunk dropped
        original[:-1] + bytes([original[-1] ^ 0x80]),  # one bit flipped
        b"SEB3" + original[4:],  # an unknown format
        original[:8],  # not even a header
    ]
    for stored in damaged:
        store.backend.put(address, [stored])  # as someone with write access to the bucket could
        with pytest.raises(IntegrityError):
            store.get_bytes(address, key)
    store.backend.put(address, [original])
    with pytest.raises(IntegrityError):
        store.get_bytes(address, new_data_key())
    assert len(store.get_bytes(address, key)) == CHUNK + 10


def test_delete_removes_the_blob_and_exists_says_so(store: BlobStore) -> None:
    key = new_data_key()
    first = store.put_bytes(b"first", key, "media")
    second = store.put_bytes(b"second", key, "media")
    assert store.exists(first) and set(store.backend.addresses()) == {first, second}
    assert store.delete(first)
    assert not store.exists(first) and not store.delete(first)
    with pytest.raises(NotFoundError):
        store.get_bytes(first, key)
    assert set(store.backend.addresses()) == {second}
    assert store.get_bytes(second, key) == b"second"


def test_blobs_written_before_per_blob_keys_stay_readable(store: BlobStore) -> None:
    key = new_data_key()
    data = os.urandom(CHUNK + 5)
    address = store.address("media", hashlib.sha256(data).hexdigest())
    store.backend.put(address, _legacy_blob(key, address, data))
    assert store.get_bytes(address, key) == data


def _legacy_blob(key: bytes, address: str, data: bytes) -> list[bytes]:
    """``data`` as the first format (SEB1) stored it: the caller's key itself, no per-blob key."""
    prefix = os.urandom(7)
    chunks = [data[:CHUNK], data[CHUNK:]]
    stored = [LEGACY_MAGIC + prefix]
    for index, chunk in enumerate(chunks):
        position = struct.pack(">IB", index, 1 if index == len(chunks) - 1 else 0)
        stored.append(AESGCM(key).encrypt(prefix + position, chunk, address.encode() + position))
    return stored


def test_a_local_blob_is_overwritten_before_it_is_unlinked(tmp_path: Path) -> None:
    store = BlobStore(LocalBackend(tmp_path / "blobs"), new_data_key())
    address = store.put_bytes(os.urandom(2 * CHUNK + 3), new_data_key(), "media")
    peek = tmp_path / "peek"
    os.link(store.path(address), peek)  # a second name keeps the inode readable after unlink
    size = peek.stat().st_size
    assert store.delete(address)
    assert not store.path(address).exists()
    assert peek.read_bytes() == bytes(size)


def test_an_s3_upload_goes_in_parts_and_a_failed_one_leaves_nothing(
    s3_endpoint: str, bucket: str
) -> None:
    backend = S3Backend(bucket, "p", endpoint_url=s3_endpoint, part_size=MIN_PART_SIZE)
    store = BlobStore(backend, new_data_key())
    key = new_data_key()
    address = store.put_bytes(os.urandom(11 * MiB), key, "media")
    client = _client(s3_endpoint)
    etag = client.head_object(Bucket=bucket, Key=backend.key(address))["ETag"]
    assert etag.strip('"').endswith("-3")  # three parts of a multipart upload

    def broken_source() -> Iterator[bytes]:
        for _ in range(8):
            yield os.urandom(CHUNK)
        raise OSError("the source disk failed")

    with pytest.raises(OSError):
        backend.put("f" * 64, broken_source())
    assert not backend.exists("f" * 64)
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_the_blob_url_names_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    key = new_data_key()
    default = open_blob_store(Settings(data_dir=tmp_path / "data"), key)
    assert isinstance(default.backend, LocalBackend)
    assert default.backend.root == tmp_path / "data" / "blobs"
    folder = open_blob_store(Settings(data_dir=tmp_path, blob_url=f"file://{tmp_path}/b"), key)
    assert isinstance(folder.backend, LocalBackend) and folder.backend.root == tmp_path / "b"
    url = "s3://evidence/safeeye/blobs/?endpoint=http://127.0.0.1:9000&region=eu-west-1"
    bucket = open_blob_store(Settings(data_dir=tmp_path, blob_url=url), key)
    backend = bucket.backend
    assert isinstance(backend, S3Backend)
    assert (backend.bucket, backend.prefix) == ("evidence", "safeeye/blobs")
    assert (backend.endpoint_url, backend.region) == ("http://127.0.0.1:9000", "eu-west-1")
    assert backend.key("abcdef") == "safeeye/blobs/ab/cd/abcdef"
    with pytest.raises(ConfigError):
        bucket.path("abcdef")  # a bucket has no local files
    for wrong in (
        "ftp://host/blobs",
        "s3:///no-bucket",
        "s3://KEY:SECRET@evidence/blobs",
        "s3://evidence/blobs?endpont=http://127.0.0.1:9000",
        "s3://evidence/blobs?endpoint=127.0.0.1:9000",
        "file://relative/folder",
    ):
        with pytest.raises(ConfigError):
            open_blob_store(Settings(data_dir=tmp_path, blob_url=wrong), key)


def test_a_missing_bucket_is_a_configuration_error(s3_endpoint: str, bucket: str) -> None:
    store = BlobStore(S3Backend(f"{bucket}-missing", endpoint_url=s3_endpoint), new_data_key())
    with pytest.raises(ConfigError) as raised:
        store.put_bytes(b"data", new_data_key(), "media")
    assert raised.value.code == "blob_store"


def test_an_app_with_an_s3_blob_url_keeps_every_blob_in_the_bucket(
    tmp_path: Path, detectors: Detectors, s3_endpoint: str, bucket: str
) -> None:
    settings = make_settings(
        tmp_path / "data", blob_url=f"s3://{bucket}/safeeye?endpoint={s3_endpoint}"
    )
    app = make_app(settings, detectors)
    try:
        act(app, create_case, "C1")
        (outcome,) = act(app, add_faces, "C1", [FACES / "obama.jpg"])
        assert outcome.error is None
        results = Scanner(app).scan_paths([FACES / "obama3.jpg"])
        assert [match.case for result in results for match in result.matches] == ["C1"]
        with app.db.session() as session:
            reference = session.execute(select(Reference)).scalar_one()
            case = session.execute(select(Case)).scalar_one()
            media = session.execute(select(Media)).scalar_one()
            photo = app.blobs.get_bytes(reference.blob_address, app.keys.case_key(case))
            expected = {reference.blob_address, media.blob_address}
    finally:
        app.close()
    assert photo == (FACES / "obama.jpg").read_bytes()
    listing = _client(s3_endpoint).list_objects_v2(Bucket=bucket, Prefix="safeeye/")
    stored = {item["Key"].rsplit("/", 1)[-1] for item in listing.get("Contents", [])}
    assert expected <= stored
    for address in expected:
        raw = app.blobs.stored_bytes(address)
        assert raw.startswith(b"SEB2") and photo[:256] not in raw
    assert not any(path.is_file() for path in settings.blob_dir.rglob("*"))
