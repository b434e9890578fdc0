"""A local HTTPS server that plays a regulator's system link, for tests and benchmarks.

It checks what a real receiver must (the Ed25519 signature over timestamp and body, the
timestamp's age, the body against ``docs/schemas/regulator-batch.request.schema.json``),
records every request, answers per item, and deduplicates by ``Idempotency-Key`` and by item
reference. Switches make it fail, redirect or hang on the next N requests::

    with RegulatorReceiver(public_key, make_tls(tmp_path / "tls")) as receiver:
        receiver.fail_next(2, status=503, retry_after="1")
        connector.send(key, recipient_at(receiver.url), notices)
        assert [r.status for r in receiver.requests] == [503, 503, 200]
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from jsonschema import Draft202012Validator

from local_https import JSONServer, Reply, ServerTLS

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
REQUEST_SCHEMA = SCHEMAS / "regulator-batch.request.schema.json"
RESPONSE_SCHEMA = SCHEMAS / "regulator-batch.response.schema.json"


def validator(schema_file: Path) -> Draft202012Validator:
    """A validator of the schema in ``schema_file`` that checks formats too."""
    schema = json.loads(schema_file.read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@dataclass
class Received:
    """One request as the receiver saw it, and what it answered."""

    key: str
    headers: dict[str, str]
    payload: dict[str, Any] | None
    status: int
    answer: dict[str, Any] | None
    at: float = field(default_factory=time.monotonic)


class RegulatorReceiver(JSONServer):
    """The regulator's side of the system link on 127.0.0.1 (https with ``tls``)."""

    def __init__(
        self,
        public_key: bytes | str,
        tls: ServerTLS,
        *,
        path: str = "/v1/batches",
        max_skew_seconds: float = 300.0,
        check_answers: bool = True,
    ) -> None:
        super().__init__(tls)
        raw = base64.b64decode(public_key) if isinstance(public_key, str) else public_key
        self.public_key = Ed25519PublicKey.from_public_bytes(raw)
        self.path = path
        self.max_skew_seconds = max_skew_seconds
        #: Validate its own answers against the response schema (the tests do; a benchmark
        #: leaves out what no real receiver would spend time on).
        self.check_answers = check_answers
        self.requests: list[Received] = []
        self.items: dict[str, dict[str, Any]] = {}  # ref -> the item first received
        self.ids: dict[str, str] = {}  # ref -> the id given
        self.refuse: dict[str, str] = {}  # ref -> why it is rejected
        self._answers: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> first answer
        self._failures: list[tuple[int, dict[str, str]]] = []
        self._hangs: list[float] = []
        self._late: list[float] = []
        self._key_failures: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._requests_schema = validator(REQUEST_SCHEMA)
        self._response_schema = validator(RESPONSE_SCHEMA)

    # -- switches ------------------------------------------------------------------------------

    def fail_next(self, times: int, status: int = 503, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``Retry-After``)."""
        extra = {"Retry-After": retry_after} if retry_after else {}
        with self._lock:
            self._failures.extend([(status, extra)] * times)

    def redirect_next(self, times: int, location: str, status: int = 307) -> None:
        """Answer the next ``times`` requests with a redirect to ``location``."""
        with self._lock:
            self._failures.extend([(status, {"Location": location})] * times)

    def fail_key(self, key: str, times: int, status: int = 503) -> None:
        """Answer the next ``times`` requests under Idempotency-Key ``key`` with ``status``."""
        with self._lock:
            self._key_failures.setdefault(key, []).extend([status] * times)

    def hang_next(self, times: int, seconds: float = 30.0) -> None:
        """Read the next ``times`` requests and answer nothing for ``seconds``, then hang up."""
        with self._lock:
            self._hangs.extend([seconds] * times)

    def answer_late(self, times: int, seconds: float) -> None:
        """Take in the next ``times`` requests (recorded, acknowledged) but wait ``seconds``
        before answering: the sender may die before it hears the answer."""
        with self._lock:
            self._late.extend([seconds] * times)

    # -- what it received ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.base_url + self.path

    @property
    def accepted(self) -> list[Received]:
        return [request for request in self.requests if request.status == 200]

    # -- handling ------------------------------------------------------------------------------

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        key = headers.get("idempotency-key", "")
        with self._lock:
            hang = self._hangs.pop(0) if self._hangs else None
            failure = self._failures.pop(0) if not hang and self._failures else None
            if not hang and not failure and self._key_failures.get(key):
                failure = (self._key_failures[key].pop(0), {})
        if hang is not None:
            self.stopping.wait(hang)
            self._record(key, headers, None, 0, None)
            return None
        if failure is not None:
            status, extra = failure
            return self._record(key, headers, None, status, {"error": "busy"}, extra)
        problem = self._signature_problem(headers, body)
        if problem:
            answer = {"error": "bad_signature", "message": problem}
            return self._record(key, headers, None, 401, answer)
        try:
            payload = json.loads(body)
        except ValueError:
            return self._record(
                key, headers, None, 400, {"error": "invalid", "message": "not JSON"}
            )
        error = next(iter(self._requests_schema.iter_errors(payload)), None)
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path)
            answer = {"error": "invalid", "message": f"{where}: {error.message}"[:500]}
            return self._record(key, headers, payload, 422, answer)
        if payload["batch"] != key:
            answer = {"error": "invalid", "message": "Idempotency-Key is not the batch key"}
            return self._record(key, headers, payload, 400, answer)
        answer = self._acknowledge(key, payload)
        if self.check_answers:
            self._response_schema.validate(answer)
        reply = self._record(key, headers, payload, 200, answer)
        with self._lock:
            late = self._late.pop(0) if self._late else None
        if late is not None:
            self.stopping.wait(late)
        return reply

    def _signature_problem(self, headers: dict[str, str], body: bytes) -> str | None:
        timestamp = headers.get("x-safeeye-timestamp", "")
        if not (timestamp.isascii() and timestamp.isdigit()):
            return "no timestamp"
        if abs(time.time() - int(timestamp)) > self.max_skew_seconds:
            return "timestamp too far from now"
        try:
            signature = base64.b64decode(headers.get("x-safeeye-signature", ""), validate=True)
            self.public_key.verify(signature, timestamp.encode() + b"." + body)
        except (InvalidSignature, binascii.Error, ValueError):
            return "the signature does not verify"
        return None

    def _acknowledge(self, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            first = self._answers.get(key)
            if first is not None:  # a repeated request: the same answer, as duplicates
                items = [
                    {**entry, "status": "duplicate"} if entry["status"] == "accepted" else entry
                    for entry in first["items"]
                ]
                return {**first, "items": items}
            acks = []
            for item in payload["items"]:
                ref = item["ref"]
                if ref in self.refuse:
                    acks.append({"ref": ref, "status": "rejected", "message": self.refuse[ref]})
                elif ref in self.ids:
                    acks.append({"ref": ref, "status": "duplicate", "id": self.ids[ref]})
                else:
                    self.ids[ref] = f"R{len(self.ids) + 1:07d}"
                    self.items[ref] = item
                    acks.append({"ref": ref, "status": "accepted", "id": self.ids[ref]})
            answer = {"batch": key, "receipt": f"B{len(self._answers) + 1:05d}", "items": acks}
            self._answers[key] = answer
            return answer

    def _record(
        self,
        key: str,
        headers: dict[str, str],
        payload: dict[str, Any] | None,
        status: int,
        answer: dict[str, Any] | None,
        extra: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Keep the request and what it was answered; the reply to give."""
        with self._lock:
            self.requests.append(Received(key, headers, payload, status, answer))
        return status, answer or {}, extra or {}
