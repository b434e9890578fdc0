"""Connectors against real local receivers: the regulator's HTTPS batch API, an SMTP server,
a StopNCII-like endpoint, and the export files read back with standard readers."""

from __future__ import annotations

import base64
import csv
import hashlib
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from openpyxl import load_workbook
from pypdf import PdfReader

from conftest import make_app, make_settings
from local_https import ServerTLS, make_tls
from local_smtp import Mailbox, free_port, smtp_server
from regulator_receiver import REQUEST_SCHEMA, RegulatorReceiver, validator
from safeeye.app import SafeEye
from safeeye.config import Settings
from safeeye.takedown.connectors import connector_named
from safeeye.takedown.connectors.api import (
    ApiConnector,
    acks_from,
    published_key,
    signed_message,
)
from safeeye.takedown.connectors.base import ConnectorError
from safeeye.takedown.connectors.export import COLUMNS
from safeeye.takedown.model import (
    Category,
    EvidenceRef,
    NoticeFacts,
    OutgoingNotice,
    RecipientInfo,
    RenderedNotice,
    Requester,
)
from stopncii_endpoint import StopNCIIEndpoint

REQUESTER = Requester(
    organisation="디지털성범죄 안심지원센터",
    address="서울특별시 중구 세종대로 110",
    email="takedown@center.example",
    phone="+82-2-815-0382",
    authority="전기통신사업법 제22조의5에 따라 지정된 기관 (designated under TBA art. 22-5)",
    signatory="삭제지원관 김담당",
)
KCSC = RecipientInfo(
    id=1,
    key="kcsc",
    name="방송통신심의위원회",
    kind="regulator",
    connector="api",
    address=None,
    languages=("ko",),
    jurisdiction="KR",
    legal_routes=("kr_tba_22_5", "kr_spa_14_2"),
)
LEGAL_KO = "성폭력범죄의 처벌 등에 관한 특례법 제14조의2, 전기통신사업법 제22조의5"
LEGAL_EN = "Sexual Violence Punishment Act art. 14-2; Telecommunications Business Act art. 22-5"


def outgoing(i: int, recipient: RecipientInfo = KCSC, language: str = "ko") -> OutgoingNotice:
    """Notice ``i`` as the renderer would hand it over: every field a valid notice needs is in
    the facts and written out in the body (in ``language``, English attached)."""
    sha256 = hashlib.sha256(f"media {i}".encode()).hexdigest()
    md5 = hashlib.md5(f"media {i}".encode()).hexdigest()
    pdq = hashlib.sha256(f"pdq {i}".encode()).hexdigest()
    manifest = hashlib.sha256(f"manifest {i}".encode()).hexdigest()
    url = f"https://images.example/u/{i:05d}.jpg"
    page = f"https://board.example/thread/{i}"
    ref = f"notice-{recipient.key}-{i:05d}"
    facts = NoticeFacts(
        recipient=recipient,
        category=Category.SYNTHETIC,
        urls=(url,),
        page_url=page,
        first_seen="2025-03-01T09:00:00+00:00",
        last_seen="2025-03-02T21:30:00+00:00",
        sha256=sha256,
        md5=md5,
        pdq=pdq,
        media_type="image",
        description="실존 여성의 얼굴을 합성한 성적 이미지 1장",
        requester=REQUESTER,
        evidence=EvidenceRef(1000 + i, manifest, "MCowBQYDK2VwAyEA"),
        language=language,
        notice_ref=ref,
    )
    facts_lines = (
        f"Ref: {ref}\nURL: {url}\n페이지: {page}\n"
        f"최초 확인: {facts.first_seen}\n최종 확인: {facts.last_seen}\n"
        f"SHA-256: {sha256}\nMD5: {md5}\nPDQ: {pdq}\n증거 패키지: {1000 + i} ({manifest})\n"
    )
    korean = RenderedNotice(
        language="ko",
        subject=f"[삭제 요청] 허위영상물 삭제 요청 ({ref})",
        body=(
            f"허위영상물(딥페이크) 삭제를 요청합니다.\n{facts_lines}"
            f"법적 근거: {LEGAL_KO}\n요청 기관: {REQUESTER.organisation} ({REQUESTER.authority})\n"
            f"연락처: {REQUESTER.email}, {REQUESTER.phone}\n"
            "본 요청은 선의에 따른 것이며 기재 내용은 사실과 같습니다.\n"
            f"서명: {REQUESTER.signatory}\n"
        ),
        english_subject=f"[Removal request] Synthetic sexual image ({ref})",
        english_body=(
            f"We ask you to remove a synthetic sexual image of a real person.\n{facts_lines}"
            f"Legal basis: {LEGAL_EN}\nRequester: {REQUESTER.organisation}\n"
            f"Contact: {REQUESTER.email}, {REQUESTER.phone}\n"
            "We state in good faith that this notice is accurate.\n"
        ),
        legal_basis=("kr_spa_14_2", "kr_tba_22_5"),
    )
    rendered = korean if language == "ko" else _english_only(korean)
    return OutgoingNotice(notice_id=i, idempotency_key=ref, rendered=rendered, facts=facts)


def _english_only(korean: RenderedNotice) -> RenderedNotice:
    return replace(
        korean,
        language="en",
        subject=korean.english_subject or "",
        body=korean.english_body or "",
        english_subject=None,
        english_body=None,
    )


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ServerTLS:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def base_app(tmp_path_factory: pytest.TempPathFactory, tls: ServerTLS) -> Iterator[SafeEye]:
    """One initialised service (its keys) for the module; tests vary settings with ``app_with``."""
    app = make_app(make_settings(tmp_path_factory.mktemp("data"), connector_ca_bundle=tls.ca_file))
    yield app
    app.close()


@pytest.fixture
def app_with(base_app: SafeEye) -> Iterator[Callable[..., SafeEye]]:
    """The module's service with some settings changed (same data dir and keys)."""
    made: list[SafeEye] = []

    def make(**overrides: object) -> SafeEye:
        made.append(SafeEye(Settings(**{**base_app.settings.model_dump(), **overrides})))
        return made[-1]

    yield make
    for app in made:
        app.close()


@pytest.fixture
def receiver(base_app: SafeEye, tls: ServerTLS) -> Iterator[RegulatorReceiver]:
    with RegulatorReceiver(published_key(base_app).public_key, tls) as running:
        yield running


def api_connector(app: SafeEye, delays: list[float] | None = None) -> ApiConnector:
    """The API connector with its backoff sleeps recorded instead of slept."""
    connector = connector_named("api")(app)
    assert isinstance(connector, ApiConnector)
    connector.sleep = (delays if delays is not None else []).append
    return connector


def at(url: str, recipient: RecipientInfo = KCSC) -> RecipientInfo:
    return replace(recipient, address=url)


# -- the regulator's HTTPS batch API ------------------------------------------------------------


def test_thousands_of_notices_go_in_one_signed_request_valid_against_the_schema(
    base_app: SafeEye, receiver: RegulatorReceiver
) -> None:
    notices = [outgoing(i) for i in range(1, 3001)]
    connector = api_connector(base_app)

    result = connector.send("batch-0001", at(receiver.url), notices)

    assert [r.status for r in receiver.requests] == [200]  # signature and schema checked there
    request = receiver.requests[0]
    assert request.key == "batch-0001" and request.payload is not None
    assert not list(validator(REQUEST_SCHEMA).iter_errors(request.payload))
    assert len(request.payload["items"]) == 3000
    assert {ack.status for ack in result.acks} == {"accepted"}
    assert [ack.notice_id for ack in result.acks] == list(range(1, 3001))
    assert len({ack.remote_id for ack in result.acks}) == 3000
    first = request.payload["items"][0]
    sent = notices[0]
    assert first["ref"] == sent.idempotency_key
    assert first["urls"] == list(sent.facts.urls) and first["page_url"] == sent.facts.page_url
    assert first["hashes"] == {
        "sha256": sent.facts.sha256,
        "md5": sent.facts.md5,
        "pdq": sent.facts.pdq,
    }
    assert first["category"] == "synthetic" and first["language"] == "ko"
    assert first["legal_basis"] == ["kr_spa_14_2", "kr_tba_22_5"]
    assert first["evidence"]["manifest_sha256"] == sent.facts.evidence.manifest_sha256  # type: ignore[union-attr]
    assert (
        first["body"] == sent.rendered.body and first["english_body"] == sent.rendered.english_body
    )
    assert request.payload["requester"]["organisation"] == REQUESTER.organisation
    connector.close()


def test_a_batch_above_the_maximum_goes_in_parts_with_keys_from_the_batch_key(
    app_with: Callable[..., SafeEye], receiver: RegulatorReceiver
) -> None:
    connector = api_connector(app_with(api_max_items=1000))
    notices = [outgoing(i) for i in range(2500, 0, -1)]  # any order: parts follow notice ids

    result = connector.send("batch-0002", at(receiver.url), notices)

    assert [r.key for r in receiver.requests] == [
        "batch-0002.part1of3",
        "batch-0002.part2of3",
        "batch-0002.part3of3",
    ]
    assert [len(r.payload["items"]) for r in receiver.accepted] == [1000, 1000, 500]  # type: ignore[index]
    assert receiver.requests[1].payload["part"] == {  # type: ignore[index]
        "of_batch": "batch-0002",
        "index": 2,
        "count": 3,
    }
    assert receiver.requests[0].payload["items"][0]["ref"] == outgoing(1).idempotency_key  # type: ignore[index]
    assert len(result.acks) == 2500 and {a.status for a in result.acks} == {"accepted"}
    assert result.detail["requests"] == 3


def test_a_batch_that_failed_in_a_later_part_is_repeated_whole_and_earlier_parts_are_duplicates(
    app_with: Callable[..., SafeEye], receiver: RegulatorReceiver
) -> None:
    connector = api_connector(app_with(api_max_items=2))
    notices = [outgoing(i) for i in range(1, 6)]
    receiver.fail_key("batch-0017.part2of3", connector.tries)

    with pytest.raises(ConnectorError) as raised:
        connector.send("batch-0017", at(receiver.url), notices)
    again = connector.send("batch-0017", at(receiver.url), notices)

    assert raised.value.retryable
    assert [a.status for a in again.acks] == ["duplicate"] * 2 + ["accepted"] * 3
    assert len(receiver.items) == 5


def test_a_busy_recipient_is_retried_with_backoff_honouring_retry_after(
    base_app: SafeEye, receiver: RegulatorReceiver
) -> None:
    receiver.fail_next(2, status=503)
    receiver.fail_next(1, status=429, retry_after="7")
    delays: list[float] = []
    connector = api_connector(base_app, delays)

    result = connector.send("batch-0003", at(receiver.url), [outgoing(1), outgoing(2)])

    assert [r.status for r in receiver.requests] == [503, 503, 429, 200]
    assert [ack.status for ack in result.acks] == ["accepted", "accepted"]
    assert len(delays) == 3 and delays[0] < delays[1] and delays[2] == 7.0


def test_a_recipient_that_stays_away_gives_a_retryable_error_after_a_few_tries(
    base_app: SafeEye, receiver: RegulatorReceiver
) -> None:
    receiver.fail_next(10, status=503)
    connector = api_connector(base_app)

    with pytest.raises(ConnectorError) as raised:
        connector.send("batch-0004", at(receiver.url), [outgoing(1)])

    assert raised.value.retryable and "503" in str(raised.value)
    assert len(receiver.requests) == connector.tries


def test_a_hanging_recipient_times_out_and_is_retryable(
    base_app: SafeEye, receiver: RegulatorReceiver
) -> None:
    receiver.hang_next(2, seconds=10)
    connector = api_connector(base_app)
    connector.timeout_seconds, connector.tries = 0.5, 2

    with pytest.raises(ConnectorError) as raised:
        connector.send("batch-0005", at(receiver.url), [outgoing(1)])

    assert raised.value.retryable and "in time" in str(raised.value)
    assert not receiver.items  # nothing was recorded


def test_a_refusal_is_not_retried(base_app: SafeEye, receiver: RegulatorReceiver) -> None:
    receiver.fail_next(1, status=400)
    connector = api_connector(base_app)

    with pytest.raises(ConnectorError) as raised:
        connector.send("batch-0006", at(receiver.url), [outgoing(1)])

    assert not raised.value.retryable and "400" in str(raised.value)
    assert len(receiver.requests) == 1


def test_a_repeated_key_gets_duplicate_acks_and_nothing_is_recorded_twice(
    base_app: SafeEye, receiver: RegulatorReceiver
) -> None:
    notices = [outgoing(i) for i in range(1, 6)]
    connector = api_connector(base_app)
    first = connector.send("batch-0007", at(receiver.url), notices)

    again = connector.send("batch-0007", at(receiver.url), notices)  # after a crash

    assert {ack.status for ack in again.acks} == {"duplicate"}
    assert [a.remote_id for a in again.acks] == [a.remote_id for a in first.acks]
    assert len(receiver.items) == 5


def test_an_item_sent_again_in_another_batch_is_a_duplicate(
    base_app: SafeEye, receiver: RegulatorReceiver
) -> None:
    connector = api_connector(base_app)
    connector.send("batch-0008", at(receiver.url), [outgoing(1)])

    result = connector.send("batch-0009", at(receiver.url), [outgoing(1), outgoing(2)])

    assert [ack.status for ack in result.acks] == ["duplicate", "accepted"]


def test_a_rejected_item_is_acknowledged_rejected_with_the_reason(
    base_app: SafeEye, receiver: RegulatorReceiver
) -> None:
    receiver.refuse[outgoing(2).idempotency_key] = "국외 사이트: 접속차단 대상"

    result = api_connector(base_app).send(
        "batch-0010", at(receiver.url), [outgoing(1), outgoing(2)]
    )

    assert [(a.status, a.message) for a in result.acks] == [
        ("accepted", None),
        ("rejected", "국외 사이트: 접속차단 대상"),
    ]


def test_an_item_the_answer_does_not_acknowledge_counts_as_rejected() -> None:
    answer = {"batch": "b", "items": [{"ref": outgoing(1).idempotency_key, "status": "accepted"}]}

    acks = acks_from(answer, [outgoing(1), outgoing(2)])

    assert [(a.status, a.message) for a in acks] == [
        ("accepted", None),
        ("rejected", "not acknowledged by the recipient"),
    ]


def test_the_receiver_refuses_a_request_whose_signature_does_not_verify(
    base_app: SafeEye, receiver: RegulatorReceiver, tls: ServerTLS
) -> None:
    body = b'{"version":"1"}'
    stamp = "1700000000"
    good = api_connector(base_app)._headers("batch-x", body)
    tampered = {**good, "X-Safeeye-Signature": base64.b64encode(b"\0" * 64).decode()}
    with httpx.Client(verify=tls.client_context()) as client:
        forged = client.post(receiver.url, content=body, headers=tampered)
        changed = client.post(receiver.url, content=body + b" ", headers=good)
        stale = client.post(
            receiver.url, content=body, headers={**good, "X-Safeeye-Timestamp": stamp}
        )
        signed = client.post(receiver.url, content=body, headers=good)

    assert [forged.status_code, changed.status_code, stale.status_code] == [401, 401, 401]
    assert signed.status_code == 422  # the signature holds; the body is no batch
    public = base64.b64decode(published_key(base_app).public_key)
    signature = base64.b64decode(good["X-Safeeye-Signature"])
    Ed25519PublicKey.from_public_bytes(public).verify(
        signature, signed_message(good["X-Safeeye-Timestamp"], body)
    )
    assert good["X-Safeeye-Key-Id"] == published_key(base_app).key_id


def test_a_receiver_holding_another_key_refuses_the_batch_for_good(
    base_app: SafeEye, tls: ServerTLS
) -> None:
    other = base64.b64encode(b"\x01" * 32).decode()
    with RegulatorReceiver(other, tls) as stranger, pytest.raises(ConnectorError) as raised:
        api_connector(base_app).send("batch-0011", at(stranger.url), [outgoing(1)])

    assert not raised.value.retryable and "401" in str(raised.value)


def test_a_same_host_redirect_is_followed_and_another_host_is_not(
    base_app: SafeEye, receiver: RegulatorReceiver
) -> None:
    receiver.redirect_next(1, receiver.url + "/moved", status=308)
    result = api_connector(base_app).send("batch-0012", at(receiver.url), [outgoing(1)])
    assert [r.status for r in receiver.requests] == [308, 200]
    assert result.acks[0].status == "accepted"

    elsewhere = receiver.url.replace("127.0.0.1", "localhost")
    receiver.redirect_next(1, elsewhere, status=307)
    with pytest.raises(ConnectorError) as raised:
        api_connector(base_app).send("batch-0013", at(receiver.url), [outgoing(2)])
    assert not raised.value.retryable and raised.value.code == "redirect"
    assert len(receiver.requests) == 3


def test_an_untrusted_certificate_is_a_setting_to_fix_not_retried(
    app_with: Callable[..., SafeEye], receiver: RegulatorReceiver
) -> None:
    connector = api_connector(app_with(connector_ca_bundle=None))

    with pytest.raises(ConnectorError) as raised:
        connector.send("batch-0014", at(receiver.url), [outgoing(1)])

    assert not raised.value.retryable and raised.value.code == "tls"
    assert not receiver.requests


@pytest.mark.parametrize(
    "address",
    ["http://regulator.example/batches", "ftp://127.0.0.1/x", "https://user:pw@r.example/", None],
)
def test_the_api_address_must_be_https_or_this_machine(base_app: SafeEye, address: str) -> None:
    with pytest.raises(ConnectorError) as raised:
        api_connector(base_app).send("batch-0015", at(address), [outgoing(1)])
    assert not raised.value.retryable and raised.value.code == "address"


# -- e-mail over SMTP ---------------------------------------------------------------------------

PLATFORM = RecipientInfo(
    id=2,
    key="video-site",
    name="Video site",
    kind="platform",
    connector="email",
    address="abuse@video.example",
    languages=("en", "ko"),
)


#: What every notice must carry, as ``outgoing`` writes it out.
def required_fields(notice: OutgoingNotice) -> list[str]:
    facts = notice.facts
    assert facts.evidence is not None
    return [
        *facts.urls,
        facts.page_url or "",
        facts.first_seen,
        facts.last_seen,
        facts.sha256,
        facts.md5,
        facts.pdq or "",
        facts.evidence.manifest_sha256,
        REQUESTER.organisation,
        REQUESTER.email,
        REQUESTER.phone,
        notice.idempotency_key,
    ]


@pytest.fixture
def mail(app_with: Callable[..., SafeEye]) -> Iterator[tuple[Mailbox, SafeEye]]:
    with smtp_server() as (mailbox, port):
        yield mailbox, app_with(smtp_port=port, org_email=REQUESTER.email, org_name=ORG_NAME)


ORG_NAME = "디지털성범죄 안심지원센터"


def _parts(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_maintype() == "text"]


def _text(part: EmailMessage) -> str:
    """A text part's content with the wire's CRLF line ends read as newlines."""
    return str(part.get_content()).replace("\r\n", "\n")


def test_each_notice_arrives_as_one_email_in_its_language_with_english_and_every_field(
    mail: tuple[Mailbox, SafeEye],
) -> None:
    mailbox, app = mail
    notices = [outgoing(1), outgoing(2)]

    result = connector_named("email")(app).send("batch-m1", PLATFORM, notices)

    assert len(mailbox.envelopes) == 2
    assert mailbox.envelopes[0].mail_from == REQUESTER.email
    assert mailbox.envelopes[0].rcpt_tos == [PLATFORM.address]
    for message, notice in zip(mailbox.messages(), notices, strict=True):
        assert message["Subject"] == notice.rendered.subject
        assert message["From"].addresses[0].display_name == ORG_NAME
        assert message["From"].addresses[0].addr_spec == REQUESTER.email
        assert message["To"] == PLATFORM.address and message["Content-Language"] == "ko, en"
        korean, english = _parts(message)
        assert korean["Content-Language"] == "ko"
        assert _text(korean) == notice.rendered.body
        assert english["Content-Language"] == "en"
        assert notice.rendered.english_body in _text(english)
        for text in (_text(korean), _text(english)):
            assert [f for f in required_fields(notice) if f not in text] == []
        assert LEGAL_KO in _text(korean) and LEGAL_EN in _text(english)
    assert [ack.status for ack in result.acks] == ["accepted", "accepted"]
    assert [ack.remote_id for ack in result.acks] == [m["Message-ID"] for m in mailbox.messages()]


def test_an_english_notice_is_a_single_english_text(mail: tuple[Mailbox, SafeEye]) -> None:
    mailbox, app = mail
    notice = outgoing(3, PLATFORM, language="en")

    connector_named("email")(app).send("batch-m2", PLATFORM, [notice])

    (message,) = mailbox.messages()
    assert message.get_content_type() == "text/plain" and message["Content-Language"] == "en"
    assert _text(message) == notice.rendered.body


def test_a_repeated_notice_keeps_its_message_id_and_a_reminder_threads_under_it(
    mail: tuple[Mailbox, SafeEye],
) -> None:
    mailbox, app = mail
    connector = connector_named("email")(app)
    notice = outgoing(4)
    reminder = replace(notice, facts=replace(notice.facts, resend=1))

    connector.send("batch-m3.4", PLATFORM, [notice])
    connector.send("batch-m3.4", PLATFORM, [notice])  # the outbox repeats it after a crash
    connector.send("batch-m4.4", PLATFORM, [reminder])  # a day later, still unanswered

    first, repeat, again = mailbox.messages()
    assert first["Message-ID"] == repeat["Message-ID"] != again["Message-ID"]
    assert again["In-Reply-To"] == again["References"] == first["Message-ID"]
    assert first["In-Reply-To"] is None


def test_a_digest_carries_all_notices_to_a_recipient_in_one_email(
    mail: tuple[Mailbox, SafeEye],
) -> None:
    mailbox, app = mail
    notices = [outgoing(i) for i in (7, 6, 8)]

    result = connector_named("email-digest")(app).send("batch-m5", PLATFORM, notices)

    (message,) = mailbox.messages()
    assert message["Subject"] == outgoing(6).rendered.subject + " (+2)"
    korean, english = _parts(message)
    for notice in notices:
        assert [f for f in required_fields(notice) if f not in _text(korean)] == []
        assert notice.rendered.english_body in _text(english)
    assert _text(korean).index("notice-kcsc-00006") < _text(korean).index("notice-kcsc-00008")
    assert [a.notice_id for a in result.acks] == [6, 7, 8]
    assert {a.remote_id for a in result.acks} == {message["Message-ID"]}


def test_data_cannot_inject_headers_or_recipients(mail: tuple[Mailbox, SafeEye]) -> None:
    mailbox, app = mail
    notice = outgoing(9)
    hostile = replace(notice.rendered, subject="삭제 요청\r\nBcc: thief@attacker.example")
    connector = connector_named("email")(app)

    connector.send("batch-m6", PLATFORM, [replace(notice, rendered=hostile)])
    for address in (
        "abuse@video.example\r\nBcc: thief@attacker.example",
        "a@x.example, b@y.example",
    ):
        with pytest.raises(ConnectorError) as raised:
            connector.send("batch-m7", replace(PLATFORM, address=address), [notice])
        assert not raised.value.retryable and raised.value.code == "address"

    (envelope,) = mailbox.envelopes
    assert envelope.rcpt_tos == [PLATFORM.address]
    (message,) = mailbox.messages()
    assert message["Subject"] == "삭제 요청 Bcc: thief@attacker.example" and message["Bcc"] is None


def test_starttls_and_login_are_used_when_set(
    app_with: Callable[..., SafeEye], tls: ServerTLS
) -> None:
    with smtp_server(tls) as (mailbox, port):
        app = app_with(
            smtp_port=port, smtp_starttls=True, smtp_user="center", smtp_password="s3cret"
        )
        connector_named("email")(app).send("batch-m8", PLATFORM, [outgoing(10)])
        wrong = app_with(
            smtp_port=port, smtp_starttls=True, smtp_user="center", smtp_password="guess"
        )
        with pytest.raises(ConnectorError) as raised:
            connector_named("email")(wrong).send("batch-m9", PLATFORM, [outgoing(11)])

    assert len(mailbox.envelopes) == 1 and mailbox.logins[0] == (b"center", b"s3cret")
    assert not raised.value.retryable and raised.value.code == "smtp_login"


def test_a_refused_recipient_is_final_and_a_temporary_refusal_is_retryable(
    mail: tuple[Mailbox, SafeEye],
) -> None:
    mailbox, app = mail
    connector = connector_named("email")(app)
    outcomes = []
    for answer in ("550 5.1.1 no such user", "451 4.3.0 try again later"):
        mailbox.rcpt_answer = answer
        with pytest.raises(ConnectorError) as raised:
            connector.send("batch-m10", PLATFORM, [outgoing(12)])
        outcomes.append(raised.value.retryable)

    assert outcomes == [False, True] and not mailbox.envelopes


def test_an_smtp_server_that_is_down_is_retryable(app_with: Callable[..., SafeEye]) -> None:
    app = app_with(smtp_port=free_port())

    with pytest.raises(ConnectorError) as raised:
        connector_named("email")(app).send("batch-m11", PLATFORM, [outgoing(13)])

    assert raised.value.retryable


# -- StopNCII -----------------------------------------------------------------------------------

STOPNCII = RecipientInfo(
    id=3,
    key="stopncii",
    name="StopNCII",
    kind="hash_sharing",
    connector="stopncii",
    address=None,
)


@pytest.fixture
def stopncii(
    app_with: Callable[..., SafeEye], tls: ServerTLS
) -> Iterator[tuple[StopNCIIEndpoint, SafeEye]]:
    with StopNCIIEndpoint("subscription-1", "submit-1", tls) as endpoint:
        app = app_with(stopncii_subscription_key="subscription-1", stopncii_submit_key="submit-1")
        yield endpoint, app


def video(i: int) -> OutgoingNotice:
    notice = outgoing(i, STOPNCII)
    return replace(notice, facts=replace(notice.facts, media_type="video", pdq=None))


def test_hashes_reach_stopncii_as_pdq_for_images_and_md5_for_videos(
    stopncii: tuple[StopNCIIEndpoint, SafeEye],
) -> None:
    endpoint, app = stopncii
    image, film = outgoing(1, STOPNCII), video(2)

    result = connector_named("stopncii")(app).send(
        "batch-s1", at(endpoint.url, STOPNCII), [film, image]
    )

    assert set(endpoint.records) == {("ImagePDQ", image.facts.pdq), ("VideoMD5", film.facts.md5)}
    record = endpoint.records[("ImagePDQ", image.facts.pdq)]  # type: ignore[index]
    assert record["signalType"] == "ImagePDQ" and record["hashValue"] == image.facts.pdq
    assert record["CSPFeedbacks"] == [{"tags": ["category:synthetic"], "feedbackValue": "Blocked"}]
    assert [(a.notice_id, a.status, a.remote_id) for a in result.acks] == [
        (1, "accepted", f"ImagePDQ:{image.facts.pdq}"),
        (2, "accepted", f"VideoMD5:{film.facts.md5}"),
    ]
    assert endpoint.statuses == [200]


def test_a_repeat_updates_the_same_stopncii_records(
    stopncii: tuple[StopNCIIEndpoint, SafeEye],
) -> None:
    endpoint, app = stopncii
    connector = connector_named("stopncii")(app)
    for _ in range(2):
        connector.send("batch-s2", at(endpoint.url, STOPNCII), [outgoing(3, STOPNCII), video(4)])

    assert endpoint.statuses == [200, 200] and len(endpoint.records) == 2


def test_an_image_without_pdq_is_rejected_and_not_submitted(
    stopncii: tuple[StopNCIIEndpoint, SafeEye],
) -> None:
    endpoint, app = stopncii
    plain = outgoing(5, STOPNCII)
    plain = replace(plain, facts=replace(plain.facts, pdq=None))

    result = connector_named("stopncii")(app).send("batch-s3", at(endpoint.url, STOPNCII), [plain])

    assert result.acks[0].status == "rejected" and "PDQ" in (result.acks[0].message or "")
    assert endpoint.statuses == []


def test_stopncii_refusing_the_keys_is_final_and_being_busy_is_retryable(
    stopncii: tuple[StopNCIIEndpoint, SafeEye], app_with: Callable[..., SafeEye]
) -> None:
    endpoint, app = stopncii
    wrong = app_with(stopncii_subscription_key="subscription-1", stopncii_submit_key="guess")
    address = at(endpoint.url, STOPNCII)

    with pytest.raises(ConnectorError) as refused:
        connector_named("stopncii")(wrong).send("batch-s4", address, [outgoing(6, STOPNCII)])
    endpoint.fail_next(1, status=503)
    with pytest.raises(ConnectorError) as busy:
        connector_named("stopncii")(app).send("batch-s4", address, [outgoing(6, STOPNCII)])

    assert not refused.value.retryable and "HTTP 401" in str(refused.value)
    assert busy.value.retryable and "HTTP 503" in str(busy.value)
    assert endpoint.statuses == [401, 503] and not endpoint.records


def test_stopncii_without_its_keys_is_a_setting_to_fix(app_with: Callable[..., SafeEye]) -> None:
    with pytest.raises(ConnectorError) as raised:
        connector_named("stopncii")(app_with()).send(
            "batch-s5", at("https://api.stopncii.example/v1", STOPNCII), [outgoing(7, STOPNCII)]
        )
    assert not raised.value.retryable and raised.value.code == "config"


def test_stopncii_with_an_untrusted_certificate_is_a_setting_to_fix(
    stopncii: tuple[StopNCIIEndpoint, SafeEye], app_with: Callable[..., SafeEye]
) -> None:
    endpoint, _ = stopncii
    untrusting = app_with(
        connector_ca_bundle=None,
        stopncii_subscription_key="subscription-1",
        stopncii_submit_key="submit-1",
    )

    with pytest.raises(ConnectorError) as raised:
        connector_named("stopncii")(untrusting).send(
            "batch-s6", at(endpoint.url, STOPNCII), [outgoing(8, STOPNCII)]
        )

    assert not raised.value.retryable and raised.value.code == "tls"
    assert endpoint.statuses == []


# -- file exports -------------------------------------------------------------------------------

EXPORTS = RecipientInfo(
    id=4,
    key="kcsc-paper",
    name="방송통신심의위원회 (서면)",
    kind="regulator",
    connector="export",
    address=None,
    languages=("ko",),
)


def _squeezed(text: str) -> str:
    """``text`` without whitespace: a PDF extractor may break a line anywhere."""
    return "".join(text.split())


def _missing(fields: list[str], text: str) -> list[str]:
    flat = _squeezed(text)
    return [field for field in fields if _squeezed(field) not in flat]


def test_exports_hold_every_field_and_open_with_standard_readers_korean_included(
    app_with: Callable[..., SafeEye], tmp_path: Path
) -> None:
    app = app_with(export_dir=tmp_path / "exports")
    notices = [outgoing(i, EXPORTS) for i in (3, 1, 2)]
    long_url = "https://cdn.example/" + "a1b2c3d4/" * 30 + "clip.mp4?token=" + "x" * 80
    notices[0] = replace(notices[0], facts=replace(notices[0].facts, urls=(long_url,)))

    result = connector_named("export")(app).send("B-export-1", EXPORTS, notices)

    folder = tmp_path / "exports" / "kcsc-paper"
    assert sorted(p.name for p in folder.iterdir()) == [
        "B-export-1.csv",
        "B-export-1.pdf",
        "B-export-1.xlsx",
    ]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    ordered = sorted(notices, key=lambda n: n.notice_id)

    with open(folder / "B-export-1.csv", encoding="utf-8-sig", newline="") as fh:
        table = list(csv.reader(fh))
    sheet = load_workbook(folder / "B-export-1.xlsx", read_only=True)["notices"]
    cells = [[cell.value or "" for cell in row] for row in sheet.iter_rows()]
    for rows in (table, cells):
        assert rows[0] == list(COLUMNS) and len(rows) == 4
        for row, notice in zip(rows[1:], ordered, strict=True):
            record = dict(zip(COLUMNS, row, strict=True))
            assert _missing(required_fields(notice), " ".join(record.values())) == []
            assert record["legal_basis"] == "kr_spa_14_2; kr_tba_22_5"
            assert record["language"] == "ko" and record["category"] == "synthetic"
            assert record["description"] == notice.facts.description
            assert record["recipient"] == "방송통신심의위원회 (서면) (kcsc-paper)"

    text = "\n".join(page.extract_text() for page in PdfReader(folder / "B-export-1.pdf").pages)
    assert "삭제 요청 증거 보고서" in text and "허위영상물" in text
    assert "허위영상물(딥페이크) 삭제를 요청합니다." in text
    for notice in ordered:
        assert _missing([*required_fields(notice), notice.facts.description], text) == []
    assert _missing([REQUESTER.authority, LEGAL_KO, "B-export-1"], text) == []
    assert [ack.status for ack in result.acks] == ["accepted"] * 3
    assert result.detail["files"] == [
        "kcsc-paper/B-export-1.csv",
        "kcsc-paper/B-export-1.xlsx",
        "kcsc-paper/B-export-1.pdf",
    ]


def test_a_repeated_export_rewrites_the_same_files(
    app_with: Callable[..., SafeEye], tmp_path: Path
) -> None:
    app = app_with(export_dir=tmp_path / "exports")
    connector = connector_named("export")(app)
    connector.send("B-export-2", EXPORTS, [outgoing(1, EXPORTS)])
    first = (tmp_path / "exports" / "kcsc-paper" / "B-export-2.csv").read_bytes()

    connector.send("B-export-2", EXPORTS, [outgoing(1, EXPORTS)])

    files = sorted((tmp_path / "exports" / "kcsc-paper").iterdir())
    assert len(files) == 3 and files[0].read_bytes() == first


def test_exported_data_never_becomes_a_spreadsheet_formula(
    app_with: Callable[..., SafeEye], tmp_path: Path
) -> None:
    app = app_with(export_dir=tmp_path / "exports")
    notice = outgoing(1, EXPORTS)
    formula = '=HYPERLINK("https://attacker.example","열기")'
    notice = replace(notice, facts=replace(notice.facts, description=formula))

    connector_named("export")(app).send("B-export-3", EXPORTS, [notice])

    folder = tmp_path / "exports" / "kcsc-paper"
    column = COLUMNS.index("description")
    csv_text = (folder / "B-export-3.csv").read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK(" in csv_text
    cell = load_workbook(folder / "B-export-3.xlsx")["notices"].cell(row=2, column=column + 1)
    assert cell.value == formula and cell.data_type == "s"


def test_an_odd_key_or_recipient_gets_safe_file_names_inside_the_export_folder(
    app_with: Callable[..., SafeEye], tmp_path: Path
) -> None:
    app = app_with(export_dir=tmp_path / "exports")
    odd = replace(EXPORTS, key="../../elsewhere")

    result = connector_named("export")(app).send("../B/x y", odd, [outgoing(1, odd)])

    written = [p for p in (tmp_path / "exports").rglob("*") if p.is_file()]
    assert len(written) == 3 and all(p.parent.parent == tmp_path / "exports" for p in written)
    assert not (tmp_path / "elsewhere").exists()
    assert result.detail["files"][0].endswith(".csv") and ".." not in result.detail["files"][0]


def test_an_export_without_a_font_for_korean_is_a_setting_to_fix_and_writes_nothing(
    app_with: Callable[..., SafeEye], tmp_path: Path
) -> None:
    app = app_with(export_dir=tmp_path / "exports", pdf_font_file=tmp_path / "missing.ttc")

    with pytest.raises(ConnectorError) as raised:
        connector_named("export")(app).send("B-export-5", EXPORTS, [outgoing(1, EXPORTS)])

    assert not raised.value.retryable and raised.value.code == "config"
    assert "missing.ttc" in str(raised.value)
    assert not [p for p in (tmp_path / "exports").rglob("*") if p.is_file()]
