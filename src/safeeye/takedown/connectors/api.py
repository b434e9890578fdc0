"""The regulator's system link: notices as signed, idempotent HTTPS JSON batches.

The request and response are documented as JSON Schemas in ``docs/schemas/``
(``regulator-batch.request.schema.json``, ``regulator-batch.response.schema.json``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from safeeye.ingest.fetcher import certificate_failure, retry_after_seconds
from safeeye.takedown.connectors.base import Connector, ConnectorError, register
from safeeye.takedown.model import ItemAck, OutgoingNotice, RecipientInfo, SendResult

if TYPE_CHECKING:
    from safeeye.app import SafeEye

SCHEMA_VERSION = "1"
KEY_NAME = "notice-signing"
TIMESTAMP_HEADER = "X-Safeeye-Timestamp"
SIGNATURE_HEADER = "X-Safeeye-Signature"
KEY_ID_HEADER = "X-Safeeye-Key-Id"
ACK_STATUSES = frozenset({"accepted", "duplicate", "rejected"})
#: Answers worth another try: the recipient's system is busy or away, not refusing.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
LOOPBACK = frozenset({"127.0.0.1", "::1"})
_MAX_REDIRECTS = 3


@dataclass(frozen=True)
class PublishedKey:
    """The public half of the notice-signing key, as recipients are given it to verify."""

    key_id: str
    public_key: str  # base64 of the 32-byte raw Ed25519 public key


def signing_key(app: SafeEye) -> Ed25519PrivateKey:
    """The Ed25519 key that signs every request to a recipient's system."""
    return Ed25519PrivateKey.from_private_bytes(app.keys.service(KEY_NAME))


def published_key(app: SafeEye) -> PublishedKey:
    """What safeeye publishes so that recipients can verify its requests."""
    raw = signing_key(app).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return PublishedKey(key_id(raw), base64.b64encode(raw).decode())


def key_id(public_raw: bytes) -> str:
    """A short stable name of a public key (the ``X-Safeeye-Key-Id`` header)."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def signed_message(timestamp: str, body: bytes) -> bytes:
    """What the signature covers: the timestamp header, a dot, then the body's exact bytes."""
    return timestamp.encode("ascii") + b"." + body


def part_key(key: str, index: int, count: int) -> str:
    """The idempotency key of part ``index`` (from 1) of a batch sent in ``count`` requests."""
    return key if count == 1 else f"{key}.part{index}of{count}"


def item_payload(notice: OutgoingNotice) -> dict[str, Any]:
    """One notice as an element of ``items`` (see the request schema)."""
    facts, rendered = notice.facts, notice.rendered
    hashes = {"sha256": facts.sha256, "md5": facts.md5}
    if facts.pdq:
        hashes["pdq"] = facts.pdq
    item: dict[str, Any] = {
        "ref": notice.idempotency_key,
        "category": str(facts.category),
        "urls": list(facts.urls),
        "page_url": facts.page_url,
        "first_seen": facts.first_seen,
        "last_seen": facts.last_seen,
        "media_type": facts.media_type,
        "hashes": hashes,
        "legal_basis": list(rendered.legal_basis),
        "description": facts.description,
        "evidence": None,
        "language": rendered.language,
        "subject": rendered.subject,
        "body": rendered.body,
        "cites": list(facts.cites),
        "resend": facts.resend,
    }
    if facts.evidence is not None:
        item["evidence"] = {
            "package_id": facts.evidence.package_id,
            "manifest_sha256": facts.evidence.manifest_sha256,
            "public_key": facts.evidence.public_key,
        }
    if rendered.english_subject is not None and rendered.english_body is not None:
        item["english_subject"] = rendered.english_subject
        item["english_body"] = rendered.english_body
    if facts.escalation:
        item["escalation"] = facts.escalation
    if facts.victim_name and "victim_name" in facts.recipient.requires:
        item["victim_name"] = facts.victim_name
    return item


def batch_payload(
    key: str, notices: Sequence[OutgoingNotice], *, index: int = 1, count: int = 1
) -> dict[str, Any]:
    """The request body of one part of a batch (see the request schema)."""
    requester = notices[0].facts.requester
    payload: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "batch": part_key(key, index, count),
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "requester": {
            "organisation": requester.organisation,
            "authority": requester.authority,
            "signatory": requester.signatory,
            "email": requester.email,
            "phone": requester.phone,
            "address": requester.address,
        },
        "items": [item_payload(notice) for notice in notices],
    }
    if count > 1:
        payload["part"] = {"of_batch": key, "index": index, "count": count}
    return payload


def check_address(address: str | None) -> str:
    """The recipient's endpoint if it may be used: https, or http to this machine only."""
    parts = urlsplit(address or "")
    host = parts.hostname or ""
    allowed = (parts.scheme == "https" and host) or (parts.scheme == "http" and host in LOOPBACK)
    if not allowed:
        raise ConnectorError(
            "the recipient's API address must be an https URL", retryable=False, code="address"
        )
    if parts.username or parts.password:
        raise ConnectorError(
            "the recipient's API address must not hold credentials", retryable=False, code="address"
        )
    return address or ""


def verify_context(app: SafeEye) -> ssl.SSLContext:
    """TLS verification against ``connector_ca_bundle`` or the system's certificates."""
    bundle = app.settings.connector_ca_bundle
    return ssl.create_default_context(cafile=str(bundle) if bundle else None)


@register
class ApiConnector(Connector):
    """POSTs notices to the recipient's HTTPS endpoint in signed JSON batches.

    At most ``api_max_items`` notices per request; a larger batch goes in parts whose keys
    derive from the batch key. Notices are put in ``notice_id`` order first, so a repeat splits
    the same way. Each request carries the key as ``Idempotency-Key``: the recipient answers a
    repeated key, or an item reference it already has, with ``duplicate``; a repeat is
    therefore harmless (a send that failed in a later part repeats the earlier parts, which
    come back ``duplicate``). Busy or unreachable recipients are retried here a few times with
    backoff (``Retry-After`` honoured), then ``ConnectorError(retryable=True)``; a refusal
    (4xx) raises at once with ``retryable=False``.
    """

    name = "api"
    tries = 4
    backoff_seconds = 0.5
    max_delay_seconds = 30.0
    timeout_seconds = 60.0

    def __init__(self, app: SafeEye) -> None:
        super().__init__(app)
        self.sleep: Callable[[float], None] = time.sleep
        self._client: httpx.Client | None = None
        self._key: Ed25519PrivateKey | None = None
        self._key_id = ""

    def send(self, key: str, recipient: RecipientInfo, notices: list[OutgoingNotice]) -> SendResult:
        url = check_address(recipient.address)
        if not notices:
            return SendResult(acks=())
        ordered = sorted(notices, key=lambda notice: notice.notice_id)
        size = self.app.settings.api_max_items
        chunks = [ordered[start : start + size] for start in range(0, len(ordered), size)]
        acks: list[ItemAck] = []
        remote: list[str] = []
        for index, chunk in enumerate(chunks, start=1):
            payload = batch_payload(key, chunk, index=index, count=len(chunks))
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
            answer = self._deliver(url, payload["batch"], body)
            acks.extend(acks_from(answer, chunk))
            if isinstance(answer.get("receipt"), str):
                remote.append(answer["receipt"])
        detail: dict[str, Any] = {"requests": len(chunks)}
        if remote:
            detail["receipts"] = remote
        return SendResult(acks=tuple(acks), detail=detail)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- one request, with retries -------------------------------------------------------------

    def _deliver(self, url: str, idempotency_key: str, body: bytes) -> dict[str, Any]:
        failure = ""
        for attempt in range(1, self.tries + 1):
            delay = self._backoff(attempt)
            try:
                response = self._post(url, idempotency_key, body)
            except httpx.TimeoutException:
                failure = "the recipient's system did not answer in time"
            except httpx.TransportError as exc:
                if certificate_failure(exc):
                    raise ConnectorError(
                        "the recipient's TLS certificate is not trusted (connector_ca_bundle?)",
                        retryable=False,
                        code="tls",
                    ) from exc
                failure = f"cannot reach the recipient's system ({type(exc).__name__})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return _answer(response)
                if status not in RETRY_STATUSES:
                    raise ConnectorError(
                        f"the recipient's system refused the batch: HTTP {status}"
                        f"{_reason(response)}",
                        retryable=False,
                        code="refused",
                    )
                failure = f"the recipient's system is unavailable: HTTP {status}"
                delay = retry_after_seconds(response.headers.get("retry-after")) or delay
            if attempt < self.tries:
                self.sleep(min(delay, self.max_delay_seconds))
        raise ConnectorError(f"{failure} (after {self.tries} tries)", retryable=True)

    def _post(self, url: str, idempotency_key: str, body: bytes) -> httpx.Response:
        """One signed POST, following same-origin 307/308 redirects only."""
        origin = _origin(url)
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._http().post(
                url, content=body, headers=self._headers(idempotency_key, body)
            )
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            target = urljoin(url, response.headers.get("location", ""))
            if response.status_code not in (307, 308) or _origin(target) != origin:
                raise ConnectorError(
                    f"the recipient's system redirected the batch (HTTP {response.status_code}); "
                    "safeeye only follows a 307/308 to the same host",
                    retryable=False,
                    code="redirect",
                )
            url = target
        raise ConnectorError("the recipient's system redirected too often", retryable=False)

    def _headers(self, idempotency_key: str, body: bytes) -> dict[str, str]:
        private = self._signing_key()
        timestamp = str(int(time.time()))
        signature = private.sign(signed_message(timestamp, body))
        return {
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            KEY_ID_HEADER: self._key_id,
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        }

    def _signing_key(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = signing_key(self.app)
            raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            self._key_id = key_id(raw)
        return self._key

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                verify=verify_context(self.app),
                timeout=httpx.Timeout(
                    self.timeout_seconds, connect=min(10.0, self.timeout_seconds)
                ),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": "safeeye"},
            )
        return self._client

    def _backoff(self, attempt: int) -> float:
        base = self.backoff_seconds * 2 ** (attempt - 1)
        return base * (0.5 + random.random() / 2)  # jitter: parallel senders do not stampede


def acks_from(answer: dict[str, Any], notices: Sequence[OutgoingNotice]) -> list[ItemAck]:
    """An ``ItemAck`` per notice from a response's ``items``; a notice the response does not
    mention is ``rejected`` with a message saying so."""
    by_ref: dict[str, dict[str, Any]] = {}
    for entry in answer.get("items") or ():
        if isinstance(entry, dict) and isinstance(entry.get("ref"), str):
            by_ref[entry["ref"]] = entry
    acks = []
    for notice in notices:
        entry = by_ref.get(notice.idempotency_key)
        if entry is None or entry.get("status") not in ACK_STATUSES:
            acks.append(
                ItemAck(notice.notice_id, "rejected", message="not acknowledged by the recipient")
            )
            continue
        remote_id = entry.get("id")
        message = entry.get("message")
        acks.append(
            ItemAck(
                notice.notice_id,
                entry["status"],
                remote_id=str(remote_id) if remote_id is not None else None,
                message=_one_line(str(message)) if message is not None else None,
            )
        )
    return acks


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError as exc:
        raise ConnectorError(
            "the recipient's system answered with something other than JSON", retryable=True
        ) from exc
    if not isinstance(answer, dict) or not isinstance(answer.get("items"), list):
        raise ConnectorError(
            "the recipient's system answered without per-item acknowledgements", retryable=True
        )
    return answer


def _reason(response: httpx.Response) -> str:
    """The recipient's own short explanation of a refusal, on one line."""
    try:
        answer = response.json()
    except ValueError:
        return ""
    if not isinstance(answer, dict):
        return ""
    message = answer.get("message") or answer.get("error")
    return f": {_one_line(str(message))[:200]}" if message else ""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port
