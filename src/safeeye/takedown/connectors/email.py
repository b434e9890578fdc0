"""Notices by e-mail over SMTP: one message per notice, or one digest per recipient."""

from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from typing import Any

from safeeye.takedown.connectors.api import verify_context
from safeeye.takedown.connectors.base import Connector, ConnectorError, register
from safeeye.takedown.model import ItemAck, OutgoingNotice, RecipientInfo, SendResult

#: Characters that would end a header line or hide in one.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_SEPARATOR = "\n\n" + "-" * 72 + "\n\n"


@dataclass(frozen=True)
class Outgoing:
    """One message to send and the notices it carries."""

    message: EmailMessage
    notice_ids: tuple[int, ...]


def one_line(text: str) -> str:
    """``text`` fit for a header: no line breaks or control characters (no header injection)."""
    return " ".join(_CONTROL.sub(" ", text).split())


def mailbox(text: str | None) -> Address:
    """The single e-mail address in ``text`` (``mailto:`` allowed); ``ConnectorError`` if it is
    not exactly one plain address."""
    spec = (text or "").strip().removeprefix("mailto:")
    address = None
    if spec and not _CONTROL.search(spec) and not any(c in spec for c in ' ,;<>"()[]\\'):
        try:
            address = Address(addr_spec=spec)
        except (ValueError, IndexError):
            address = None
    if address is None or not address.username or not address.domain:
        raise ConnectorError(
            "the recipient's e-mail address is not one valid address",
            retryable=False,
            code="address",
        )
    return address


def message_id(key: str, domain: str) -> str:
    """A Message-ID that is the same whenever the same key is sent again (a reminder of a
    notice is another message: its key is ``KEY#N``, N its number)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{digest}.safeeye@{domain.encode('idna').decode('ascii')}>"


def compose(
    *,
    sender: Address,
    to: Address,
    key: str,
    language: str,
    subject: str,
    body: str,
    english: str | None,
    follows: str | None = None,
) -> EmailMessage:
    """A plain-text message in ``language``, with the English text as a second part;
    ``follows``: the key of the message it reminds of (threaded under it)."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = one_line(subject)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(key, sender.domain)
    if follows is not None:
        message["In-Reply-To"] = message["References"] = message_id(follows, sender.domain)
    message["X-Safeeye-Reference"] = one_line(key)
    message.set_content(body, charset="utf-8")
    message["Content-Language"] = one_line(language)  # after set_content, which clears it
    if english is not None:
        message.add_attachment(
            english,
            subtype="plain",
            charset="utf-8",
            disposition="inline",
            filename="notice-en.txt",
            headers=["Content-Language: en"],
        )  # the first part keeps its Content-Language; the whole has both
        message["Content-Language"] = f"{one_line(language)}, en"
    return message


def _message_key(notice: OutgoingNotice) -> str:
    resend = notice.facts.resend
    return f"{notice.idempotency_key}#{resend}" if resend else notice.idempotency_key


def english_text(notice: OutgoingNotice) -> str | None:
    rendered = notice.rendered
    if rendered.language == "en" or rendered.english_body is None:
        return None
    return f"{rendered.english_subject or ''}\n\n{rendered.english_body}".strip()


@register
class EmailConnector(Connector):
    """One e-mail per notice, From the organisation's address, in the notice's language with
    the English text attached; ``Message-ID`` derives from the notice's idempotency key.

    SMTP cannot refuse a repeat: sending the same notice again delivers a second copy with the
    same Message-ID (mail readers show one). So the outbox sends per-notice e-mail one notice
    per call and marks it sent as soon as this returns; a call with several notices that fails
    part-way raises ``ConnectorError`` and a repeat re-sends those already accepted.
    """

    name = "email"
    digest = False
    timeout_seconds = 60.0

    def send(self, key: str, recipient: RecipientInfo, notices: list[OutgoingNotice]) -> SendResult:
        to = mailbox(recipient.address)
        settings = self.app.settings
        sender = mailbox(settings.org_email)
        sender = Address(one_line(settings.org_name), sender.username, sender.domain)
        ordered = sorted(notices, key=lambda notice: notice.notice_id)
        outgoing = self.messages(key, sender, to, ordered)
        if not outgoing:
            return SendResult(acks=())
        acks: list[ItemAck] = []
        smtp = self._connect()
        try:
            for item in outgoing:
                self._deliver(smtp, item.message, sender.addr_spec, to.addr_spec)
                remote = item.message["Message-ID"]
                acks.extend(ItemAck(nid, "accepted", remote_id=remote) for nid in item.notice_ids)
        finally:
            _quit(smtp)
        return SendResult(acks=tuple(acks), detail={"messages": len(outgoing)})

    def messages(
        self, key: str, sender: Address, to: Address, notices: Sequence[OutgoingNotice]
    ) -> list[Outgoing]:
        """The messages that carry ``notices``: one each."""
        return [
            Outgoing(
                compose(
                    sender=sender,
                    to=to,
                    key=_message_key(notice),
                    language=notice.rendered.language,
                    subject=notice.rendered.subject,
                    body=notice.rendered.body,
                    english=english_text(notice),
                    follows=notice.idempotency_key if notice.facts.resend else None,
                ),
                (notice.notice_id,),
            )
            for notice in notices
        ]

    # -- SMTP ----------------------------------------------------------------------------------

    def _connect(self) -> smtplib.SMTP:
        settings = self.app.settings
        try:
            smtp = smtplib.SMTP(
                settings.smtp_host, settings.smtp_port, timeout=self.timeout_seconds
            )
        except (OSError, smtplib.SMTPException) as exc:
            raise _failure(exc, "cannot reach the SMTP server") from exc
        try:
            smtp.ehlo()
            if settings.smtp_starttls:
                smtp.starttls(context=verify_context(self.app))
                smtp.ehlo()
            if settings.smtp_user:
                password = settings.smtp_password
                smtp.login(settings.smtp_user, password.get_secret_value() if password else "")
        except (OSError, smtplib.SMTPException) as exc:
            _quit(smtp)
            raise _failure(exc, "the SMTP server refused the session") from exc
        return smtp

    @staticmethod
    def _deliver(smtp: smtplib.SMTP, message: EmailMessage, sender: str, to: str) -> None:
        try:
            refused = smtp.send_message(message, from_addr=sender, to_addrs=[to])
        except (OSError, smtplib.SMTPException) as exc:
            raise _failure(exc, "the SMTP server did not take the message") from exc
        if refused:  # cannot happen with one recipient, who is refused by an exception
            raise ConnectorError("the SMTP server refused the recipient", retryable=False)


@register
class EmailDigestConnector(EmailConnector):
    """Like ``email``, but one digest per recipient (and language) per send: the notices one
    after the other, English attached; its Message-ID derives from the batch key. A recipient
    who asks for digests has ``email-digest`` as its connector."""

    name = "email-digest"
    digest = True
    max_notices = 500  # per message: mail servers refuse very large messages

    def messages(
        self, key: str, sender: Address, to: Address, notices: Sequence[OutgoingNotice]
    ) -> list[Outgoing]:
        by_language: dict[str, list[OutgoingNotice]] = {}
        for notice in notices:
            by_language.setdefault(notice.rendered.language, []).append(notice)
        out = []
        for language, group in by_language.items():
            chunks = [
                group[i : i + self.max_notices] for i in range(0, len(group), self.max_notices)
            ]
            for index, chunk in enumerate(chunks, start=1):
                part = key if len(by_language) == 1 else f"{key}.{language}"
                part = part if len(chunks) == 1 else f"{part}.part{index}of{len(chunks)}"
                out.append(
                    Outgoing(
                        _digest(part, sender, to, language, chunk),
                        tuple(n.notice_id for n in chunk),
                    )
                )
        return out


def _digest(
    key: str, sender: Address, to: Address, language: str, notices: Sequence[OutgoingNotice]
) -> EmailMessage:
    count = len(notices)
    first = notices[0].rendered.subject
    subject = first if count == 1 else f"{first} (+{count - 1})"
    bodies = [
        f"[{i}/{count}] {n.rendered.subject}\n\n{n.rendered.body}" for i, n in enumerate(notices, 1)
    ]
    english = [
        f"[{i}/{count}] {text}" for i, n in enumerate(notices, 1) if (text := english_text(n))
    ]
    return compose(
        sender=sender,
        to=to,
        key=key,
        language=language,
        subject=subject,
        body=_SEPARATOR.join(bodies),
        english=_SEPARATOR.join(english) if english else None,
    )


def _failure(exc: BaseException, what: str) -> ConnectorError:
    """A ``ConnectorError`` for an SMTP failure: temporary (4xx, no connection) or not."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectorError(
            f"{what}: its TLS certificate is not trusted", retryable=False, code="tls"
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return ConnectorError(f"{what}: login refused", retryable=False, code="smtp_login")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return ConnectorError(f"{what}: {exc}", retryable=False, code="smtp")
    code = _smtp_code(exc)
    if code is not None:
        return ConnectorError(f"{what}: SMTP {code}", retryable=400 <= code < 500, code="smtp")
    return ConnectorError(f"{what} ({type(exc).__name__})", retryable=True, code="smtp")


def _smtp_code(exc: BaseException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes: list[Any] = [answer[0] for answer in exc.recipients.values()]
        return int(codes[0]) if codes else None
    if isinstance(exc, smtplib.SMTPResponseException):
        return int(exc.smtp_code)
    return None


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()
