"""The typed values the takedown modules hand each other (no ORM rows cross these lines)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Category(StrEnum):
    """What the content is, in the terms deletion law uses (Korea's three categories)."""

    ILLEGALLY_FILMED = "illegally_filmed"  # 불법촬영물: filmed or spread without consent
    SYNTHETIC = "synthetic"  # 허위영상물: an edited or synthesised sexual image of a real person
    MINOR = "minor"  # 아동·청소년성착취물: a minor involved


class RecipientKind(StrEnum):
    REGULATOR = "regulator"  # the national regulator's bulk hotline (KCSC)
    PLATFORM = "platform"  # social networks, video and adult sites
    SEARCH = "search"  # search engines: delisting
    MESSAGING = "messaging"  # Telegram and the like
    IMAGE_HOST = "image_host"
    HOSTING = "hosting"  # the network that hosts the server (found by RDAP)
    REGISTRAR = "registrar"  # the domain's registrar (found by RDAP)
    HASH_SHARING = "hash_sharing"  # StopNCII, Take It Down


@dataclass(frozen=True)
class RecipientInfo:
    """A recipient as notices and connectors need it."""

    id: int | None
    key: str
    name: str
    kind: str
    connector: str  # api | email | stopncii | export
    address: str | None
    languages: tuple[str, ...] = ("en",)
    deadline_hours: float = 24.0
    jurisdiction: str | None = None
    legal_routes: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()  # e.g. "victim_name" when its form demands it


@dataclass(frozen=True)
class Requester:
    """Who asks, on whose behalf and by what authority (the support center's settings)."""

    organisation: str
    address: str
    email: str
    phone: str
    authority: str  # e.g. "designated under Telecommunications Business Act art. 22-5"
    signatory: str  # the officer's name or title, the notice's signature


@dataclass(frozen=True)
class EvidenceRef:
    """How a notice points to the signed evidence package of its sighting."""

    package_id: int
    manifest_sha256: str
    public_key: str  # base64 Ed25519 key that signed it


@dataclass(frozen=True)
class NoticeFacts:
    """Everything one notice may say, and nothing more: no victim name unless the recipient's
    form demands it (``victim_name`` is then set by the caller)."""

    recipient: RecipientInfo
    category: Category
    urls: tuple[str, ...]  # the exact URL(s) of the item
    page_url: str | None  # where it is shown, to find it
    first_seen: str  # ISO 8601 times
    last_seen: str
    sha256: str
    md5: str
    pdq: str | None
    media_type: str  # image | video
    description: str  # non-graphic: "a video of 1:23 showing a woman's face"
    requester: Requester
    evidence: EvidenceRef | None
    language: str
    page_language: str | None = None
    notice_ref: str = ""  # the notice's idempotency key: its reference for the recipient
    cites: tuple[str, ...] = ()  # references of earlier notices about the same content
    resend: int = 0  # 0: first sending; n: the n-th reminder
    escalation: str | None = None  # why this recipient gets it now (the previous did not act)
    victim_name: str | None = None
    copyright_holder: bool = False  # the person depicted made the item (a DMCA notice fits)


@dataclass(frozen=True)
class RenderedNotice:
    """A notice written out: in the chosen language, with English attached where it is not."""

    language: str
    subject: str
    body: str
    english_subject: str | None
    english_body: str | None
    legal_basis: tuple[str, ...]  # the routes cited, e.g. ("kr_tba_22_5", "kr_spa_14_2")
    fields: dict[str, Any] = field(default_factory=dict)  # structured, for APIs and sheets


@dataclass(frozen=True)
class OutgoingNotice:
    """One notice as a connector sends it."""

    notice_id: int
    idempotency_key: str
    rendered: RenderedNotice
    facts: NoticeFacts


@dataclass(frozen=True)
class ItemAck:
    """What a recipient's system said about one notice of a send."""

    notice_id: int
    status: str  # accepted | duplicate | rejected
    remote_id: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class SendResult:
    """The outcome of one send: an acknowledgement per notice (where the channel gives one)."""

    acks: tuple[ItemAck, ...]
    detail: dict[str, Any] = field(default_factory=dict)
