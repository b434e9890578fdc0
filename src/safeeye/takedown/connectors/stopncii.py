"""Hash submission to StopNCII through the ``threatexchange`` library's client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import requests
from threatexchange.exchanges.clients.stopncii.api import (
    StopNCIIAPI,
    StopNCIICSPFeedback,
    StopNCIICSPFeedbackValue,
    StopNCIIEndpoint,
    StopNCIISignalType,
)

from safeeye.ingest.fetcher import certificate_failure
from safeeye.takedown.connectors.api import check_address
from safeeye.takedown.connectors.base import Connector, ConnectorError, register
from safeeye.takedown.model import ItemAck, NoticeFacts, OutgoingNotice, RecipientInfo, SendResult

if TYPE_CHECKING:
    pass

Hash = tuple[StopNCIISignalType, str]


def stopncii_hash(facts: NoticeFacts) -> Hash | None:
    """The hash StopNCII takes for this item: PDQ for an image, MD5 for a video."""
    if facts.media_type == "video":
        return StopNCIISignalType.VideoMD5, facts.md5
    if facts.pdq:
        return StopNCIISignalType.ImagePDQ, facts.pdq
    return None


class _Client(StopNCIIAPI):
    """The library's client with safeeye's TLS trust, no redirects and no proxy from the
    environment."""

    def __init__(self, *args: Any, verify: str | bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._verify = verify

    def _get_session(self, endpoint: StopNCIIEndpoint) -> requests.Session:
        session = super()._get_session(endpoint)
        session.verify = self._verify
        session.trust_env = False
        session.max_redirects = 0
        return session


@register
class StopNCIIConnector(Connector):
    """Submits each notice's hash to StopNCII (the recipient's address is the API's base URL)
    as a reviewed match (``Blocked``), in requests of at most ``max_hashes``.

    StopNCII keeps one record per hash, so a repeat updates the same records: harmless. The
    API answers per request, not per hash: every submitted notice is acknowledged
    ``accepted`` (its id is the hash), and one without a hash StopNCII takes (an image with
    no PDQ) ``rejected``. Failures are not retried here: the outbox tries again later.
    """

    name = "stopncii"
    max_hashes = 1000

    def send(self, key: str, recipient: RecipientInfo, notices: list[OutgoingNotice]) -> SendResult:
        base = check_address(recipient.address).rstrip("/")
        wanted = {notice.notice_id: stopncii_hash(notice.facts) for notice in notices}
        tags: dict[Hash, set[str]] = {}
        for notice in notices:
            value = wanted[notice.notice_id]
            if value is not None:
                tags.setdefault(value, set()).add(f"category:{notice.facts.category}")
        hashes = sorted(tags, key=lambda value: (value[0].value, value[1]))
        if hashes:
            client = self._client(base)
            for start in range(0, len(hashes), self.max_hashes):
                part = hashes[start : start + self.max_hashes]
                _submit(client, {value: tags[value] for value in part})
        acks = []
        for notice in sorted(notices, key=lambda n: n.notice_id):
            value = wanted[notice.notice_id]
            if value is None:
                message = "no hash StopNCII takes (an image needs its PDQ hash)"
                acks.append(ItemAck(notice.notice_id, "rejected", message=message))
            else:
                acks.append(ItemAck(notice.notice_id, "accepted", f"{value[0].value}:{value[1]}"))
        return SendResult(acks=tuple(acks), detail={"hashes": len(hashes)})

    def _client(self, base: str) -> _Client:
        settings = self.app.settings
        subscription, submit = settings.stopncii_subscription_key, settings.stopncii_submit_key
        if subscription is None or submit is None:
            raise ConnectorError(
                "StopNCII needs SAFEEYE_STOPNCII_SUBSCRIPTION_KEY and SAFEEYE_STOPNCII_SUBMIT_KEY",
                retryable=False,
                code="config",
            )
        bundle = settings.connector_ca_bundle
        return _Client(
            subscription.get_secret_value(),
            "",  # safeeye submits and never fetches
            {StopNCIIEndpoint.SubmitHashes: submit.get_secret_value()},
            base_url_override=base,
            verify=str(bundle) if bundle else True,
        )


def _submit(client: _Client, tagged: dict[Hash, set[str]]) -> None:
    """One SubmitHashes request: each hash as a reviewed match, tagged with its category."""
    # The client writes str() of each key's signal type: for its enum that is
    # "StopNCIISignalType.ImagePDQ", where StopNCII's records say "ImagePDQ"; so the key
    # carries the name itself.
    feedback = {
        (cast(StopNCIISignalType, signal.value), value): StopNCIICSPFeedback(
            StopNCIICSPFeedbackValue.Blocked, tags
        )
        for (signal, value), tags in tagged.items()
    }
    try:
        client.submit_hashes(feedback)
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise ConnectorError(
            f"StopNCII refused the hashes: HTTP {status}",
            retryable=status == 429 or status >= 500,
            code="refused",
        ) from exc
    except requests.TooManyRedirects as exc:
        raise ConnectorError(
            "StopNCII's address redirected; safeeye follows no redirect there",
            retryable=False,
            code="redirect",
        ) from exc
    except requests.RequestException as exc:
        if certificate_failure(exc):
            raise ConnectorError(
                "StopNCII's TLS certificate is not trusted", retryable=False, code="tls"
            ) from exc
        raise ConnectorError(
            f"cannot reach StopNCII ({type(exc).__name__})", retryable=True
        ) from exc
    except ValueError as exc:  # an answer that is not JSON: the repeat is harmless
        raise ConnectorError(
            "StopNCII answered with something other than JSON", retryable=True
        ) from exc
