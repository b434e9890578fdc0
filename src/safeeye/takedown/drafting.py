"""Confirmed matches become notices: one per sighting and recipient, written for it, grouped
into batches per recipient and connector.

New matches become draft batches an officer approves (the center's practice); a re-upload of
media already confirmed for the case may go out without a person when the setting allows it.
What a notice says is rendered once, when it is drafted, and sealed under the case key.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from safeeye.cases.service import get_case
from safeeye.crypto import derive_key, keyed_digest, seal, unseal
from safeeye.db.models import (
    Batch,
    Case,
    Match,
    Media,
    MediaFrame,
    Notice,
    Recipient,
    Review,
    Sighting,
)
from safeeye.db.states import BatchStatus, MatchStatus, NoticeStatus
from safeeye.db.types import utcnow
from safeeye.review.decisions import allowed_for
from safeeye.takedown.model import (
    Category,
    EvidenceRef,
    NoticeFacts,
    RecipientInfo,
    RenderedNotice,
    Requester,
)
from safeeye.work import Role, Work

#: Where a sighting can be asked to be taken down from (a local file cannot).
WEB = ("http://", "https://")


@dataclass(frozen=True)
class NoticeSummary:
    """A notice as lists and the CLI show it (what it says stays sealed)."""

    id: int
    reference: str
    case: str
    recipient: str
    connector: str
    status: str
    language: str
    category: str
    url: str
    batch_id: int | None
    cites: int | None
    automatic: bool
    created_at: str
    sent_at: str | None
    deadline_at: str | None
    removed_at: str | None
    resends: int
    escalation_level: int


@dataclass(frozen=True)
class DraftReport:
    notices: list[NoticeSummary]
    batches: list[int]
    skipped_allowed: int
    already: int


def notice_reference(work: Work, sighting_id: int, recipient_id: int) -> str:
    """The notice's reference and idempotency key: stable for one sighting and recipient,
    meaningless to anyone without the installation's keys."""
    key = derive_key(work.app.keys.media, "notice-reference")
    return "N" + keyed_digest(key, str(sighting_id), str(recipient_id))[:31]


def requester(work: Work) -> Requester:
    settings = work.app.settings
    return Requester(
        organisation=settings.org_name,
        address=settings.org_address,
        email=settings.org_email,
        phone=settings.org_phone,
        authority=settings.org_authority,
        signatory=settings.org_signatory,
    )


def draft_notices(
    work: Work,
    *,
    case: str | None = None,
    match_ids: list[int] | None = None,
    evidence: bool = True,
) -> DraftReport:
    """Write a notice for every sighting of every confirmed match (of ``case``, or these
    matches) to each recipient it needs, unless one exists; the victim's own places are
    skipped. Group the new notices into batches. A notice about media this case already had a
    notice for cites the first one, and goes out without a person when the setting says so."""
    work.require(Role.REVIEWER, Role.SYSTEM, action="draft deletion requests")
    session = work.session
    query = select(Match).where(Match.status == MatchStatus.CONFIRMED).order_by(Match.id)
    if case is not None:
        query = query.where(Match.case_id == get_case(session, case).id)
    if match_ids is not None:
        query = query.where(Match.id.in_(match_ids))
    created: list[Notice] = []
    skipped = already = 0
    for match in session.execute(query).scalars().all():
        matched_case = session.get(Case, match.case_id)
        media = session.get(Media, match.media_id)
        if matched_case is None or media is None or matched_case.wrapped_key is None:
            continue
        category = _category(session, match)
        for sighting in _web_sightings(session, media.id):
            if allowed_for(work, matched_case, sighting.location, sighting.final_url):
                skipped += 1
                continue
            for recipient in first_recipients(work, sighting):
                if _exists(session, sighting.id, recipient.id):
                    already += 1
                    continue
                package = _evidence(work, sighting.id) if evidence else None
                created.append(
                    _draft(work, matched_case, match, media, sighting, recipient, category, package)
                )
    batches = group_into_batches(work, created)
    return DraftReport([summarize(session, n) for n in created], batches, skipped, already)


def first_recipients(work: Work, sighting: Sighting) -> list[RecipientInfo]:
    """Who gets a first notice about this sighting: the first rung of its ladder (the platform,
    else the hosting network) and the regulator's hotline when one is configured."""
    from safeeye.takedown.recipients import find_recipients

    ladder = find_recipients(work, sighting.final_url or sighting.location, sighting.server_ip)
    chosen = [r for r in ladder[:1]]
    chosen += [r for r in ladder if r.kind == "regulator" and r.address and r not in chosen]
    return chosen


def _draft(
    work: Work,
    case: Case,
    match: Match,
    media: Media,
    sighting: Sighting,
    recipient: RecipientInfo,
    category: Category,
    package: EvidenceRef | None,
    *,
    escalation: str | None = None,
    escalated_from: Notice | None = None,
) -> Notice:
    from safeeye.takedown.notices.language import choose_language
    from safeeye.takedown.notices.render import render

    session = work.session
    assert recipient.id is not None
    reference = notice_reference(work, sighting.id, recipient.id)
    same_media = _first_notice(session, case.id, media.id)
    earlier = same_media or _first_notice(session, case.id, None)
    facts = NoticeFacts(
        recipient=plain_recipient(recipient),
        category=category,
        urls=tuple(dict.fromkeys(u for u in (sighting.location, sighting.final_url) if u)),
        page_url=sighting.page_url,
        first_seen=sighting.seen_at.isoformat(timespec="seconds"),
        last_seen=sighting.last_seen_at.isoformat(timespec="seconds"),
        sha256=media.sha256,
        md5=media.md5,
        pdq=_pdq(session, media.id),
        media_type=media.media_type or "image",
        description=describe(media),
        requester=requester(work),
        evidence=package,
        language=choose_language(recipient.languages, None),
        notice_ref=reference,
        cites=(earlier.idempotency_key,) if earlier is not None else (),
        escalation=escalation,
    )
    rendered = render(facts)
    # A re-upload of media already reported for this case may go out without a person.
    automatic = same_media is not None and work.app.settings.auto_send_reuploads
    notice = Notice(
        sighting_id=sighting.id,
        recipient_id=recipient.id,
        case_id=case.id,
        match_id=match.id,
        cites_id=earlier.id if earlier is not None else None,
        escalated_from_id=escalated_from.id if escalated_from is not None else None,
        escalation_level=(escalated_from.escalation_level + 1) if escalated_from else 0,
        status=NoticeStatus.APPROVED if automatic else NoticeStatus.DRAFT,
        language=rendered.language,
        category=category.value,
        content_sealed=b"",
        idempotency_key=reference,
        automatic=automatic,
        attempts=0,
        resends=0,
    )
    if automatic:
        notice.approved_at, notice.approved_by = utcnow(), "policy:auto_send_reuploads"
    session.add(notice)
    session.flush()
    key = work.app.keys.case_key(case)
    notice.content_sealed = seal_content(key, notice.id, facts, rendered)
    work.audit(
        "notice.drafted",
        "notice",
        notice.id,
        {
            "recipient": recipient.key,
            "language": rendered.language,
            "category": category.value,
            "automatic": automatic,
            "escalation_level": notice.escalation_level,
        },
        case=(case.id, key),
        private={"case": case.code, "sighting": sighting.id},
    )
    return notice


def plain_recipient(recipient: RecipientInfo) -> RecipientInfo:
    """Just what a notice says of its recipient (a directory entry carries more)."""
    names = RecipientInfo.__dataclass_fields__
    return RecipientInfo(**{name: getattr(recipient, name) for name in names})


def group_into_batches(work: Work, notices: list[Notice]) -> list[int]:
    """Put notices with no batch into one batch per recipient and connector: a draft batch for
    drafts, an approved one for notices approved already (sent without waiting)."""
    session = work.session
    groups: dict[tuple[int, str], list[Notice]] = {}
    for notice in notices:
        if notice.batch_id is None:
            groups.setdefault((notice.recipient_id, notice.status), []).append(notice)
    made = []
    for (recipient_id, status), members in groups.items():
        recipient = session.get(Recipient, recipient_id)
        assert recipient is not None
        approved = status == NoticeStatus.APPROVED
        batch = Batch(
            recipient_id=recipient_id,
            connector=recipient.connector,
            status=BatchStatus.APPROVED if approved else BatchStatus.DRAFT,
            idempotency_key="",
            attempts=0,
        )
        if approved:
            batch.approved_at, batch.approved_by = utcnow(), "policy:auto_send_reuploads"
        session.add(batch)
        session.flush()
        batch.idempotency_key = batch_reference(work, batch.id)
        for notice in members:
            notice.batch_id = batch.id
        made.append(batch.id)
        work.audit(
            "batch.created",
            "batch",
            batch.id,
            {"recipient": recipient.key, "notices": len(members), "status": batch.status},
        )
    return made


def batch_reference(work: Work, batch_id: int) -> str:
    key = derive_key(work.app.keys.media, "batch-reference")
    return "B" + keyed_digest(key, str(batch_id))[:31]


def seal_content(key: bytes, notice_id: int, facts: NoticeFacts, rendered: RenderedNotice) -> bytes:
    body = json.dumps(
        {"facts": asdict(facts), "rendered": asdict(rendered)},
        sort_keys=True,
        default=str,
        ensure_ascii=False,
    )
    return seal(key, body.encode(), f"notice:{notice_id}".encode())


def open_content(key: bytes, notice_id: int, sealed: bytes) -> dict[str, Any]:
    """The sealed facts and rendered texts of a notice (JSON-shaped)."""
    data: dict[str, Any] = json.loads(unseal(key, sealed, f"notice:{notice_id}".encode()))
    return data


def summarize(session: Session, notice: Notice) -> NoticeSummary:
    case = session.get(Case, notice.case_id)
    recipient = session.get(Recipient, notice.recipient_id)
    sighting = session.get(Sighting, notice.sighting_id)
    assert case is not None and recipient is not None and sighting is not None
    return NoticeSummary(
        id=notice.id,
        reference=notice.idempotency_key,
        case=case.code,
        recipient=recipient.key,
        connector=recipient.connector,
        status=notice.status,
        language=notice.language,
        category=notice.category,
        url=sighting.location,
        batch_id=notice.batch_id,
        cites=notice.cites_id,
        automatic=notice.automatic,
        created_at=notice.created_at.isoformat(),
        sent_at=_iso(notice.sent_at),
        deadline_at=_iso(notice.deadline_at),
        removed_at=_iso(notice.removed_at),
        resends=notice.resends,
        escalation_level=notice.escalation_level,
    )


def describe(media: Media) -> str:
    """A non-graphic description: what kind of file, how big, how long (never what it shows)."""
    if media.media_type == "video" and media.duration:
        minutes, seconds = divmod(round(media.duration), 60)
        return f"a video ({media.format or 'video'}, {minutes}:{seconds:02d} long)"
    size = f", {media.width}x{media.height} pixels" if media.width and media.height else ""
    return f"an image ({media.format or 'image'}{size})"


def _category(session: Session, match: Match) -> Category:
    chosen = session.execute(
        select(Review.category)
        .where(Review.match_id == match.id, Review.decision == MatchStatus.CONFIRMED)
        .order_by(Review.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return Category(chosen) if chosen else Category.ILLEGALLY_FILMED


def _web_sightings(session: Session, media_id: int) -> list[Sighting]:
    rows = session.execute(
        select(Sighting).where(Sighting.media_id == media_id).order_by(Sighting.id)
    ).scalars()
    return [s for s in rows if s.location.lower().startswith(WEB)]


def _exists(session: Session, sighting_id: int, recipient_id: int) -> bool:
    return (
        session.execute(
            select(Notice.id).where(
                Notice.sighting_id == sighting_id, Notice.recipient_id == recipient_id
            )
        ).first()
        is not None
    )


def _first_notice(session: Session, case_id: int, media_id: int | None) -> Notice | None:
    """The case's first notice about this media (a re-upload cites it), or about anything
    (``media_id`` None: a new file of the same victim cites the case's first request)."""
    query = select(Notice).where(Notice.case_id == case_id)
    if media_id is not None:
        query = query.join(Sighting, Sighting.id == Notice.sighting_id).where(
            Sighting.media_id == media_id
        )
    return session.execute(query.order_by(Notice.id).limit(1)).scalar_one_or_none()


def _pdq(session: Session, media_id: int) -> str | None:
    return session.execute(
        select(MediaFrame.pdq_hex)
        .where(MediaFrame.media_id == media_id)
        .order_by(MediaFrame.frame_index)
        .limit(1)
    ).scalar_one_or_none()


def _evidence(work: Work, sighting_id: int) -> EvidenceRef | None:
    from safeeye.takedown.evidence import build_package

    package = build_package(work, sighting_id, screenshot=work.app.settings.evidence_screenshots)
    return EvidenceRef(package.package_id, package.manifest_sha256, package.public_key)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
