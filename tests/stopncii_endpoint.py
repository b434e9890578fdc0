"""A local StopNCII-like endpoint for tests: the SubmitHashes call of StopNCII's REST API as
``threatexchange``'s client makes it, with both key headers checked::

    with StopNCIIEndpoint("sub-key", "submit-key", tls) as stopncii:
        connector.send(key, replace(STOPNCII, address=stopncii.url), notices)
        assert stopncii.records[("ImagePDQ", pdq)]["CSPFeedbacks"][0]["feedbackValue"] == "Blocked"
"""

from __future__ import annotations

import json
import threading
from typing import Any

from local_https import JSONServer, Reply, ServerTLS


class StopNCIIEndpoint(JSONServer):
    """``POST /v1/SubmitHashes`` on 127.0.0.1 (https with ``tls``); records hash records by
    (signal type, hash), the latest submission of each winning, as StopNCII keeps them."""

    def __init__(self, subscription_key: str, submit_key: str, tls: ServerTLS) -> None:
        super().__init__(tls)
        self.subscription_key = subscription_key
        self.submit_key = submit_key
        self.records: dict[tuple[str, str], dict[str, Any]] = {}
        self.statuses: list[int] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return self.base_url + "/v1"

    def fail_next(self, times: int, status: int = 503) -> None:
        with self._lock:
            self._failures.extend([status] * times)

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        status, answer = self._answer(path, headers, body)
        with self._lock:
            self.statuses.append(status)
        return status, answer, {}

    def _answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is not None:
            return failure, {"error": "busy"}
        if path != "/v1/SubmitHashes":
            return 404, {"error": "no such endpoint"}
        if (
            headers.get("ocp-apim-subscription-key") != self.subscription_key
            or headers.get("x-functions-key") != self.submit_key
        ):
            return 401, {"error": "access denied"}
        try:
            payload = json.loads(body)
            records = payload["hashRecords"]
            assert payload["count"] == len(records)
            parsed = [(_signal_type(r["signalType"]), r["hashValue"], r) for r in records]
        except (ValueError, KeyError, TypeError, AssertionError):
            return 400, {"error": "malformed"}
        with self._lock:
            for signal_type, value, record in parsed:
                self.records[(signal_type, value)] = record
        return 200, {"count": len(parsed)}


def _signal_type(text: str) -> str:
    """A signal type as StopNCII's records name it (``ImagePDQ``); anything else is refused."""
    if text not in {"ImagePDQ", "VideoMD5", "VideoTMK", "Text", "URL"}:
        raise ValueError(text)
    return text
