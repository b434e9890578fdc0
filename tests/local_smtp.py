"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests: it keeps every message it accepts,
can refuse recipients, require STARTTLS and a login, and take its time over each message."""

from __future__ import annotations

import asyncio
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from local_https import ServerTLS


class Mailbox:
    """The local SMTP server's handler: what arrived, and how it answers."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.rcpt_answer = ""  # e.g. "550 no such user"; empty: accept
        self.logins: list[tuple[bytes, bytes]] = []
        self.delay = 0.0  # seconds to take over each message before accepting it

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_answer:
            return self.rcpt_answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        self.logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(envelope.original_content, policy=email.policy.default)  # type: ignore[misc]
            for envelope in self.envelopes
        ]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_server(tls: ServerTLS | None = None) -> Iterator[tuple[Mailbox, int]]:
    """An SMTP server on 127.0.0.1 (with ``tls``: STARTTLS and a login required)."""
    mailbox = Mailbox()
    port = free_port()
    options: dict[str, Any] = {}
    if tls is not None:
        options = {
            "tls_context": tls.server_context(),
            "require_starttls": True,
            "authenticator": mailbox.authenticate,
            "auth_required": True,
        }
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()
