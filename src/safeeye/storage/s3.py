"""Blob backend in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW), reachable from every machine.

Large objects are uploaded in parts of ``part_size`` bytes (a multipart upload that becomes
visible whole, or is aborted) and read from the streaming ``GetObject`` body, so no object is
ever held in memory whole. An object cannot be overwritten in place: ``delete`` removes it, and
what the server keeps after that (versions, replicas) is the bucket's configuration.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager, suppress
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError

from safeeye.errors import ConfigError, NotFoundError
from safeeye.storage.backend import Readable, object_name

PART_SIZE = 8 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
CONTENT_TYPE = "application/octet-stream"
URL_OPTIONS = ("endpoint", "region")
MISSING = ("404", "NoSuchKey", "NotFound")
REFUSED = ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")


class S3Backend:
    """Objects in ``bucket`` below ``prefix``. The credentials, and the endpoint and region
    unless given, come from boto3's standard sources: ``AWS_ACCESS_KEY_ID`` /
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``),
    ``AWS_DEFAULT_REGION``, ``~/.aws``, an instance or pod role."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        part_size: int = PART_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"S3 parts are at least {MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = (
            endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
            or None
        )
        self.region = region
        self.part_size = part_size
        self._client: Any = None
        self._client_pid = 0

    @classmethod
    def from_url(cls, url: str) -> S3Backend:
        """The backend ``s3://BUCKET/PREFIX?endpoint=URL&region=NAME`` names (both optional)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise ConfigError("SAFEEYE_BLOB_URL must look like s3://BUCKET/PREFIX")
        if parts.username or parts.password:
            raise ConfigError(
                "credentials do not belong in SAFEEYE_BLOB_URL: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or a profile or role)"
            )
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - set(URL_OPTIONS))
        if unknown:
            raise ConfigError(
                f"SAFEEYE_BLOB_URL has unknown options {unknown}; known: {list(URL_OPTIONS)}"
            )
        endpoint = options.get("endpoint") or None
        if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
            raise ConfigError("the endpoint in SAFEEYE_BLOB_URL must be an http(s) URL")
        return cls(
            parts.netloc, parts.path, endpoint_url=endpoint, region=options.get("region") or None
        )

    def key(self, address: str) -> str:
        """The object key of the blob at ``address``."""
        name = object_name(address)
        return f"{self.prefix}/{name}" if self.prefix else name

    @property
    def client(self) -> Any:
        """The boto3 client (thread-safe), made on first use and anew in a forked process,
        whose parent's pooled connections it must not share."""
        if self._client is None or self._client_pid != os.getpid():
            self._client = _new_client(self.endpoint_url, self.region)
            self._client_pid = os.getpid()
        return self._client

    def put(self, address: str, parts: Iterable[bytes]) -> None:
        key = self.key(address)
        upload = _MultipartUpload(self.client, self.bucket, key)
        pending = bytearray()
        try:
            with _s3_errors(self.bucket):
                for part in parts:
                    pending += part
                    while len(pending) >= self.part_size:
                        # A part is sent from the buffer itself, cut in place; only what
                        # follows it is copied. So one part and one chunk are in memory.
                        body, pending = pending, pending[self.part_size :]
                        del body[self.part_size :]
                        upload.send(body)
                        del body
                if upload.started:
                    if pending:
                        upload.send(pending)
                    upload.complete()
                else:
                    self.client.put_object(
                        Bucket=self.bucket, Key=key, Body=pending, ContentType=CONTENT_TYPE
                    )
        except BaseException:
            upload.abort()
            raise

    def open(self, address: str) -> AbstractContextManager[Readable]:
        with _s3_errors(self.bucket):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self.key(address))
            except ClientError as exc:
                if _error_code(exc) in MISSING:
                    raise NotFoundError("no stored blob at that address") from exc
                raise
        return closing(response["Body"])

    def exists(self, address: str) -> bool:
        with _s3_errors(self.bucket):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self.key(address))
            except ClientError as exc:
                if _error_code(exc) in MISSING:
                    return False
                raise
        return True

    def delete(self, address: str) -> bool:
        """Remove the object (S3 cannot overwrite it first); True if there was one."""
        if not self.exists(address):
            return False
        with _s3_errors(self.bucket):
            self.client.delete_object(Bucket=self.bucket, Key=self.key(address))
        return True

    def addresses(self) -> Iterator[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        with _s3_errors(self.bucket):
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(start) :]
                    address = name.rsplit("/", 1)[-1]
                    if name == object_name(address):
                        yield address


class _MultipartUpload:
    """One multipart upload, started by its first part; the object appears only once it is
    completed, and an aborted one leaves nothing."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self._client, self._bucket, self._key = client, bucket, key
        self._upload_id: str | None = None
        self._sent: list[dict[str, Any]] = []

    @property
    def started(self) -> bool:
        return self._upload_id is not None

    def send(self, body: bytearray) -> None:
        if self._upload_id is None:
            self._upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self._key, ContentType=CONTENT_TYPE
            )["UploadId"]
        number = len(self._sent) + 1
        response = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._sent.append({"PartNumber": number, "ETag": response["ETag"]})

    def complete(self) -> None:
        self._client.complete_multipart_upload(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._sent},
        )

    def abort(self) -> None:
        """Drop the parts sent so far (quietly: the error that led here is the one to report)."""
        if self._upload_id is not None:
            with suppress(Exception):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )


def _new_client(endpoint_url: str | None, region: str | None) -> Any:
    config = Config(
        region_name=region,
        retries={"mode": "standard"},
        # Self-hosted servers (MinIO, Ceph) are addressed by path, not by a bucket subdomain.
        s3={"addressing_style": "path"} if endpoint_url else None,
        # Checksums only where S3 requires them: the CRC trailers botocore sends by default
        # since 1.36 break many S3-compatible servers, and AES-GCM authenticates every chunk.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _s3_errors(bucket: str) -> Iterator[None]:
    """Errors an operator must fix (credentials, the bucket, permissions) as ``ConfigError``."""
    try:
        yield
    except NoCredentialsError as exc:
        raise ConfigError(
            "no credentials for the blob bucket: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (or a profile or role)",
            code="blob_store",
        ) from exc
    except ClientError as exc:
        code = _error_code(exc)
        if code == "NoSuchBucket":
            raise ConfigError(
                f"the blob bucket {bucket} does not exist", code="blob_store"
            ) from exc
        if code in REFUSED:
            raise ConfigError(
                f"the blob bucket {bucket} refused access ({code}); the credentials need "
                "s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket and "
                "s3:AbortMultipartUpload",
                code="blob_store",
            ) from exc
        raise
