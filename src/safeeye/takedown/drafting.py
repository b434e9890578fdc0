"""Confirmed matches become notices: one per sighting and recipient, written for it, grouped
into batches per recipient and connector.

New matches become draft batches an officer approves (the center's practice); a re-upload of
media already confirmed for the case may go out without a person when the setting allows it.
What a notice says is rendered once, when it is drafted, and sealed under the case key.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import insert, select
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
from safeeye.errors import SafeEyeError, ValidationError
from safeeye.review.decisions import among, own_places
from safeeye.takedown.model import (
    Category,
    EvidenceRef,
    NoticeFacts,
    RecipientInfo,
    RecipientKind,
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
    return reference_for(_reference_key(work), sighting_id, recipient_id)


def reference_for(key: bytes, sighting_id: int, recipient_id: int) -> str:
    return "N" + keyed_digest(key, str(sighting_id), str(recipient_id))[:31]


def _reference_key(work: Work) -> bytes:
    return derive_key(work.app.keys.media, "notice-reference")


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
    to: list[str] | None = None,
) -> DraftReport:
    """Write a notice for every sighting of every confirmed match (of ``case``, or these
    matches) to each recipient it needs, unless one exists; the victim's own places are
    skipped. Group the new notices into batches. A notice about media this case already had a
    notice for cites the first one, and goes out without a person when the setting says so.

    ``to`` names more recipients (directory keys) the officer chose: each gets a notice for
    every sighting too, except a hash-sharing program (StopNCII), which gets one per file (its
    hashes, whatever the URL; the victim consented to sharing them)."""
    work.require(Role.REVIEWER, Role.SYSTEM, action="draft deletion requests")
    session = work.session
    query = select(Match).where(Match.status == MatchStatus.CONFIRMED).order_by(Match.id)
    if case is not None:
        query = query.where(Match.case_id == get_case(session, case).id)
    if match_ids is not None:
        query = query.where(Match.id.in_(match_ids))
    drafts = Drafts(work)
    chosen = [_chosen(work, key) for key in to or []]
    skipped = already = 0
    for match in session.execute(query).scalars().all():
        matched_case = session.get(Case, match.case_id)
        media = session.get(Media, match.media_id)
        if matched_case is None or media is None or matched_case.wrapped_key is None:
            continue
        category = _category(session, match)
        own = own_places(work, matched_case)
        sightings = _web_sightings(session, media.id)
        existing = _existing(session, [s.id for s in sightings])
        hashes_shared: set[int] = set()  # hash-sharing programs that have this file
        for sighting in sightings:
            if among(own, sighting.location, sighting.final_url, sighting.page_url):
                skipped += 1
                continue
            package: EvidenceRef | None = None
            recipients = list(drafts.first_recipients(sighting))
            for extra in chosen:
                if extra.kind == RecipientKind.HASH_SHARING:
                    assert extra.id is not None
                    shared_before = any(r == extra.id for _, r in existing)  # this file's
                    if extra.id in hashes_shared or shared_before:
                        continue
                    hashes_shared.add(extra.id)
                if extra not in recipients:
                    recipients.append(extra)
            for recipient in recipients:
                if (sighting.id, recipient.id) in existing:
                    already += 1
                    continue
                if evidence and package is None:
                    package = _evidence(work, sighting.id)
                drafts.add(matched_case, match, media, sighting, recipient, category, package)
    drafts.finish()
    return DraftReport(drafts.summaries(), drafts.batches, skipped, already)


class Drafts:
    """Notices being drafted in one unit of work: each written out and sealed, then stored
    together in one bulk insert (the first about a case or a file at once: the rest cite it
    by id), and audited per case and batch. Ladders, each case's first notice, PDQ hashes and
    the requester are looked up once per unit of work."""

    def __init__(self, work: Work) -> None:
        self.work = work
        self._ladders: dict[tuple[str | None, ...], list[RecipientInfo]] = {}
        #: The case's first notice (about a file, or about anything) from before this unit of
        #: work, and the first written in it.
        self._prior: dict[tuple[int, int | None], Cited | None] = {}
        self._first: dict[tuple[int, int | None], Cited] = {}
        self._drafted: list[_Draft] = []
        self._stored = 0  # how many of them are in the database
        self._batches: dict[tuple[int, bool], Batch] = {}
        self._requester = requester(work)
        self._reference_key = _reference_key(work)
        self._pdq: dict[int, str | None] = {}
        self._done: list[_Draft] = []
        self._languages: dict[str, str | None] = {}

    def first_recipients(self, sighting: Sighting) -> list[RecipientInfo]:
        """Who gets a first notice about this sighting: the first rung of its ladder (the
        platform, else the hosting network) and the regulator's hotline when one is set."""
        from safeeye.takedown.recipients import find_recipients

        urls = (sighting.location, sighting.final_url, sighting.page_url)
        key = (*(_host(u) for u in urls), sighting.server_ip)
        if key not in self._ladders:
            ladder = list(find_recipients(self.work, sighting))
            chosen = ladder[:1]
            chosen += [r for r in ladder if r.kind == "regulator" and r.address and r not in chosen]
            self._ladders[key] = chosen
        return self._ladders[key]

    def add(
        self,
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
        approved_by: str | None = None,
    ) -> None:
        """Write one notice out, sealed, into its batch (``finish`` stores it)."""
        from safeeye.takedown.notices.language import choose_language, normalise
        from safeeye.takedown.notices.render import render

        work = self.work
        assert recipient.id is not None
        reference = reference_for(self._reference_key, sighting.id, recipient.id)
        if media.id not in self._pdq:
            self._pdq[media.id] = _pdq(work.session, media.id)
        reported = self._prior_notice(case.id, media.id)  # an officer acted on this file
        earlier = (
            Cited(escalated_from.id, escalated_from.idempotency_key, escalated_from.sighting_id)
            if escalated_from is not None  # the notice that was not acted on
            else self._earlier(case.id, media.id, sighting.id)
        )
        # The page's language decides only among languages the recipient reads.
        readable = {normalise(language) for language in recipient.languages} - {None}
        page_language = self._page_language(sighting) if len(readable) > 1 else None
        facts = NoticeFacts(
            recipient=plain_recipient(recipient),
            category=category,
            urls=tuple(dict.fromkeys(u for u in (sighting.location, sighting.final_url) if u)),
            page_url=sighting.page_url,
            first_seen=sighting.seen_at.isoformat(timespec="seconds"),
            last_seen=sighting.last_seen_at.isoformat(timespec="seconds"),
            sha256=media.sha256,
            md5=media.md5,
            pdq=self._pdq[media.id],
            media_type=media.media_type or "image",
            description=describe(media),
            requester=self._requester,
            evidence=package,
            language=choose_language(recipient.languages, page_language),
            page_language=page_language,
            notice_ref=reference,
            cites=(earlier.idempotency_key,) if earlier is not None else (),
            escalation=escalation,
        )
        rendered = render(facts)
        # A re-upload of media already reported for this case may go out without a person;
        # an escalation goes on by itself (the officer approved the request it follows).
        automatic = (
            reported is not None
            and escalated_from is None
            and work.app.settings.auto_send_reuploads
        )
        approved_by = approved_by or ("policy:auto_send_reuploads" if automatic else None)
        key = work.app.keys.case_key(case)
        now = utcnow()
        batch = self._batch(recipient, approved_by)
        values = {
            "sighting_id": sighting.id,
            "recipient_id": recipient.id,
            "case_id": case.id,
            "match_id": match.id,
            "batch_id": batch.id,
            "cites_id": earlier.id if earlier is not None else None,
            "escalated_from_id": escalated_from.id if escalated_from is not None else None,
            "escalation_level": (escalated_from.escalation_level + 1) if escalated_from else 0,
            "status": NoticeStatus.APPROVED if approved_by else NoticeStatus.DRAFT,
            "language": rendered.language,
            "category": category.value,
            "content_sealed": seal_content(key, reference, facts, rendered),
            "idempotency_key": reference,
            "automatic": automatic,
            "attempts": 0,
            "resends": 0,
            "created_at": now,
            "approved_at": now if approved_by else None,
            "approved_by": approved_by,
        }
        draft = _Draft(values, case, key, recipient, sighting.location)
        self._drafted.append(draft)
        first = [
            scope for scope in ((case.id, media.id), (case.id, None)) if scope not in self._first
        ]
        if first:
            self._store()  # the notices after it cite it by id
            for scope in first:
                self._first[scope] = Cited(values["id"], reference, sighting.id)

    def finish(self) -> list[int]:
        """Store the notices written so far (one bulk insert); one audit event per case and
        batch names them (a bulk draft of 10,000 is a few events, not 10,000). Their ids."""
        work = self.work
        self._store()
        drafted, self._drafted, self._stored = self._drafted, [], 0
        groups: dict[tuple[int, int], list[_Draft]] = {}
        for draft in drafted:
            groups.setdefault((draft.case.id, draft.values["batch_id"]), []).append(draft)
        for (case_id, batch_id), members in groups.items():
            rows = [m.values for m in members]
            work.audit(
                "notices.drafted",
                "batch",
                batch_id,
                {
                    "notices": [r["id"] for r in rows],
                    "recipients": sorted({r["recipient_id"] for r in rows}),
                    "languages": sorted({r["language"] for r in rows}),
                    "categories": sorted({r["category"] for r in rows}),
                    "automatic": sum(r["automatic"] for r in rows),
                    "escalation_level": max(r["escalation_level"] for r in rows),
                },
                case=(case_id, members[0].key),
                private={
                    "case": members[0].case.code,
                    "sightings": [r["sighting_id"] for r in rows],
                },
            )
        self._done = drafted
        return [d.values["id"] for d in drafted]

    def summaries(self) -> list[NoticeSummary]:
        """The notices ``finish`` stored, as lists show them."""
        return [d.summary() for d in self._done]

    def _store(self) -> None:
        """Insert the notices written since the last time, in one statement per 1,000."""
        rows = [d.values for d in self._drafted[self._stored :]]
        if not rows:
            return
        query = insert(Notice).returning(Notice.id, sort_by_parameter_order=True)
        ids = self.work.session.scalars(query, rows).all()
        for row, notice_id in zip(rows, ids, strict=True):
            row["id"] = notice_id
        self._stored = len(self._drafted)

    @property
    def batches(self) -> list[int]:
        """The batches the notices drafted here went into."""
        return [batch.id for batch in self._batches.values()]

    def _batch(self, recipient: RecipientInfo, approved_by: str | None) -> Batch:
        """The batch of this unit of work for ``recipient``: a draft batch, or an approved one
        for notices that go out without waiting."""
        assert recipient.id is not None
        group = (recipient.id, approved_by is not None)
        if group not in self._batches:
            self._batches[group] = new_batch(
                self.work, recipient.id, recipient.key, recipient.connector, approved_by
            )
        return self._batches[group]

    def _page_language(self, sighting: Sighting) -> str | None:
        """The language the sighting's page declares (its kept copy), read once per page."""
        from safeeye.takedown.evidence import kept_page
        from safeeye.takedown.notices.language import declared_language

        if sighting.page_url is None:
            return None
        if sighting.page_url not in self._languages:
            page = kept_page(self.work.session, sighting)
            html = None
            if page is not None and page.blob_address:
                app = self.work.app
                try:
                    html = app.blobs.get_bytes(page.blob_address, app.keys.media)
                except (OSError, SafeEyeError):
                    html = None  # the page's copy is unreadable: the recipient's language
            headers = page.http_headers if page is not None else None
            self._languages[sighting.page_url] = declared_language(headers, html)
        return self._languages[sighting.page_url]

    def _earlier(self, case_id: int, media_id: int, sighting_id: int) -> Cited | None:
        """The notice a new one about ``sighting_id`` cites: the case's first about the same
        file elsewhere (a re-upload), else its first about anything elsewhere (the same
        person's face in another file); never one about the same sighting."""
        for scope in ((case_id, media_id), (case_id, None)):
            for found in (self._prior_notice(*scope), self._first.get(scope)):
                if found is not None and found.sighting_id != sighting_id:
                    return found
        return None

    def _prior_notice(self, case_id: int, media_id: int | None) -> Cited | None:
        scope = (case_id, media_id)
        if scope not in self._prior:
            found = _first_notice(self.work.session, case_id, media_id)
            self._prior[scope] = (
                Cited(found.id, found.idempotency_key, found.sighting_id) if found else None
            )
        return self._prior[scope]


class Cited(NamedTuple):
    """An earlier notice a new one cites."""

    id: int
    idempotency_key: str
    sighting_id: int


@dataclass
class _Draft:
    """A notice written in a ``Drafts``: its row (``id`` once stored) and what lists show."""

    values: dict[str, Any]
    case: Case
    key: bytes
    recipient: RecipientInfo
    location: str

    def summary(self) -> NoticeSummary:
        row = self.values
        return NoticeSummary(
            id=row["id"],
            reference=row["idempotency_key"],
            case=self.case.code,
            recipient=self.recipient.key,
            connector=self.recipient.connector,
            status=row["status"],
            language=row["language"],
            category=row["category"],
            url=self.location,
            batch_id=row["batch_id"],
            cites=row["cites_id"],
            automatic=row["automatic"],
            created_at=row["created_at"].isoformat(),
            sent_at=None,
            deadline_at=None,
            removed_at=None,
            resends=0,
            escalation_level=row["escalation_level"],
        )


def plain_recipient(recipient: RecipientInfo) -> RecipientInfo:
    """Just what a notice says of its recipient (a directory entry carries more)."""
    names = RecipientInfo.__dataclass_fields__
    return RecipientInfo(**{name: getattr(recipient, name) for name in names})


def group_into_batches(work: Work, notices: list[Notice]) -> list[int]:
    """Put notices with no batch (reminders) into one batch per recipient: a draft batch for
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
        approved_by = members[0].approved_by if status == NoticeStatus.APPROVED else None
        batch = new_batch(work, recipient.id, recipient.key, recipient.connector, approved_by)
        for notice in members:
            notice.batch_id = batch.id
        made.append(batch.id)
    return made


def new_batch(
    work: Work, recipient_id: int, recipient_key: str, connector: str, approved_by: str | None
) -> Batch:
    """A new batch for the recipient (approved when ``approved_by`` names who or what
    approved it), with its reference, audited."""
    batch = Batch(
        recipient_id=recipient_id,
        connector=connector,
        status=BatchStatus.APPROVED if approved_by else BatchStatus.DRAFT,
        idempotency_key="",
        attempts=0,
    )
    if approved_by:
        batch.approved_at, batch.approved_by = utcnow(), approved_by
    work.session.add(batch)
    work.session.flush()
    batch.idempotency_key = batch_reference(work, batch.id)
    work.audit(
        "batch.created", "batch", batch.id, {"recipient": recipient_key, "status": batch.status}
    )
    return batch


def batch_reference(work: Work, batch_id: int) -> str:
    key = derive_key(work.app.keys.media, "batch-reference")
    return "B" + keyed_digest(key, str(batch_id))[:31]


def seal_content(key: bytes, reference: str, facts: NoticeFacts, rendered: RenderedNotice) -> bytes:
    """A notice's facts and texts as JSON, sealed under its case key and bound to the notice's
    reference (unique, and known before the row is stored)."""
    body = _CONTENT_JSON.encode({"facts": facts, "rendered": rendered}).encode()
    # Compressed (a quarter of the size: texts in two languages repeat the facts), so that
    # 10,000 notices are not 100 MB to write and read back.
    return seal(key, zlib.compress(body, 1), f"notice:{reference}".encode())


def _plain(value: Any) -> Any:
    """A dataclass as the dict ``dataclasses.asdict`` would make (the encoder recurses), without
    its deep copies; anything else JSON does not know as text."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    return str(value)


_CONTENT_JSON = json.JSONEncoder(sort_keys=True, default=_plain, ensure_ascii=False)


def open_content(key: bytes, notice: Notice) -> dict[str, Any]:
    """The sealed facts and rendered texts of a notice (JSON-shaped)."""
    aad = f"notice:{notice.idempotency_key}".encode()
    data: dict[str, Any] = json.loads(zlib.decompress(unseal(key, notice.content_sealed, aad)))
    return data


def summarize(session: Session, notice: Notice) -> NoticeSummary:
    """One notice as lists show it."""
    return summarize_all(session, [notice])[0]


def summarize_all(session: Session, notices: list[Notice]) -> list[NoticeSummary]:
    """Notices as lists show them, their cases, recipients and sightings read once each."""
    cases = _columns(session, Case.id, Case.code, {n.case_id for n in notices})
    recipients = _columns(
        session,
        Recipient.id,
        (Recipient.key, Recipient.connector),
        {n.recipient_id for n in notices},
    )
    places = _columns(session, Sighting.id, Sighting.location, {n.sighting_id for n in notices})
    return [
        NoticeSummary(
            id=notice.id,
            reference=notice.idempotency_key,
            case=cases[notice.case_id],
            recipient=recipients[notice.recipient_id][0],
            connector=recipients[notice.recipient_id][1],
            status=notice.status,
            language=notice.language,
            category=notice.category,
            url=places[notice.sighting_id],
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
        for notice in notices
    ]


def _columns(session: Session, key: Any, value: Any, ids: set[int]) -> dict[int, Any]:
    """``value`` (a column, or a tuple of them) of the rows whose ``key`` is in ``ids``."""
    values = value if isinstance(value, tuple) else (value,)
    found: dict[int, Any] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 500):
        rows = session.execute(select(key, *values).where(key.in_(wanted[start : start + 500])))
        for row in rows:
            found[row[0]] = tuple(row[1:]) if isinstance(value, tuple) else row[1]
    return found


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


def _chosen(work: Work, key: str) -> RecipientInfo:
    """A recipient the officer named, as notices see it."""
    from safeeye.takedown.recipients import show_recipient

    entry = show_recipient(work, key)
    if not entry.enabled:
        raise ValidationError(f"recipient {key!r} is disabled")
    return plain_recipient(entry)


def _existing(session: Session, sighting_ids: list[int]) -> set[tuple[int, int]]:
    """The (sighting, recipient) pairs that have a notice already."""
    found: set[tuple[int, int]] = set()
    for start in range(0, len(sighting_ids), 500):
        chunk = sighting_ids[start : start + 500]
        rows = session.execute(
            select(Notice.sighting_id, Notice.recipient_id).where(Notice.sighting_id.in_(chunk))
        ).all()
        found.update((sighting, recipient) for sighting, recipient in rows)
    return found


def _host(url: str | None) -> str | None:
    return urlsplit(url).hostname if url else None


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
