"""After a notice is sent: rechecks until the content is gone, reminders, escalation up the
ladder, recipients' answers, and the re-upload watch.

A sent notice's URL is fetched again every ``recheck_hours``: gone (404/410/451), showing
other content, or no longer shown by its page is a verified removal, recorded with the time;
still there and unanswered, the notice is sent again every ``resend_hours`` until its
deadline, then escalated to the next recipient of the ladder (platform, then hosting network
and registrar, then the regulator), which gets a notice of its own citing the one that was not
acted on. Each check is kept (``Recheck``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from safeeye.db.models import (
    Case,
    Match,
    Media,
    Notice,
    Recheck,
    Recipient,
    RecipientAnswer,
    Sighting,
)
from safeeye.db.states import MatchStatus, NoticeStatus, move
from safeeye.db.types import utcnow
from safeeye.errors import FetchError, NotFoundError, ValidationError, error_text
from safeeye.ingest.fetcher import FetchStatusError
from safeeye.ingest.links import charset_of, extract_links
from safeeye.ingest.urls import normalize_url
from safeeye.takedown.dispatch import _facts, recipient_info
from safeeye.takedown.drafting import (
    Drafts,
    draft_notices,
    group_into_batches,
    open_content,
    seal_content,
    summarize_all,
)
from safeeye.takedown.model import Category
from safeeye.tasks import Results, TaskContext, task
from safeeye.tasks.leases import release
from safeeye.work import Role, Work

log = logging.getLogger(__name__)

#: Notices whose content may still be online (and so are checked again).
OPEN = (
    NoticeStatus.SENT,
    NoticeStatus.ACKNOWLEDGED,
    NoticeStatus.REFUSED,
    NoticeStatus.ESCALATED,
)
GONE_STATUSES = frozenset({404, 410, 451})
#: What a recheck finds that counts as a verified removal.
REMOVED_RESULTS = frozenset({"removed", "changed", "unlinked"})


@dataclass(frozen=True)
class CheckOutcome:
    notice_id: int
    result: str  # present | removed | changed | unlinked | unreachable
    action: str  # none | removed | resent | escalated | overdue
    new_notice_id: int | None = None


@task("recheck_notice", max_attempts=3, batch=16)
def recheck_notice(ctx: TaskContext, notice_ids: list[int]) -> Results:
    """Fetch each due notice's URL again and act on what is (not) there."""
    results: Results = {}
    for notice_id in notice_ids:
        with ctx.app.db.session() as session:
            due = Notice.status.in_(OPEN) & (Notice.next_check_at <= utcnow())
            notice = ctx.claim(session, Notice, notice_id, due)
            if notice is None:
                results[notice_id] = None
                continue
            sighting = session.get(Sighting, notice.sighting_id)
            assert sighting is not None
            place = Place(sighting.location, sighting.final_url, sighting.page_url)
            sha256 = sighting.sha256
        result, status, found, detail = _look(ctx, place, sha256)
        try:
            with ctx.app.work(ctx.actor) as work:
                results[notice_id] = _act(work, notice_id, result, status, found, detail)
                row = work.session.get(Notice, notice_id)
                if row is not None:
                    release(row)
        except Exception as exc:  # rolled back; the next sweep checks again
            log.warning("a recheck failed: %s", error_text(exc, "recording a recheck"))
            results[notice_id] = None
    _submit_new_batches(ctx, results)
    return results


@dataclass(frozen=True)
class Place:
    """Where a sighting was: the media's URL (and where it led), and the page showing it."""

    location: str
    final_url: str | None
    page_url: str | None

    @property
    def media_urls(self) -> set[str]:
        return {u for u in (self.location, self.final_url) if u}


def _look(ctx: TaskContext, place: Place, sha256: str) -> tuple[str, int | None, str | None, str]:
    """What the place shows now: (result, HTTP status, content SHA-256, detail). The file gone
    (404, 410, 451) or other content at its URL is a removal; so is a page that no longer shows
    it (the page gone, or the file no longer linked from it)."""
    url = place.final_url or place.location
    try:
        fetched = ctx.fetcher.fetch(url, want="any", obey_robots=False)
    except FetchStatusError as exc:
        if exc.status in GONE_STATUSES:
            return "removed", exc.status, None, f"HTTP {exc.status}"
        media: tuple[str, int | None, str | None, str] = (
            "unreachable",
            exc.status,
            None,
            exc.as_text(),
        )
    except FetchError as exc:
        media = ("unreachable", None, None, exc.as_text())
    else:
        with fetched:
            if fetched.sha256 != sha256:
                return "changed", fetched.status, fetched.sha256, "other content at the URL"
            media = ("present", fetched.status, fetched.sha256, "the same content")
    page = _page_shows(ctx, place)
    if page is not None and not page[0]:
        return "unlinked", media[1], media[2], page[1]
    return media


def _page_shows(ctx: TaskContext, place: Place) -> tuple[bool, str] | None:
    """Whether the sighting's page still shows the file, and why; None when there is no page
    to look at or it cannot be read now (that decides nothing)."""
    if not place.page_url or place.page_url in place.media_urls:
        return None
    try:
        fetched = ctx.fetcher.fetch(place.page_url, want="page", obey_robots=False)
    except FetchStatusError as exc:
        if exc.status in GONE_STATUSES:
            return False, f"the page is gone (HTTP {exc.status})"
        return None
    except FetchError:
        return None
    with fetched:
        if fetched.path is None:
            return None
        links = extract_links(
            fetched.read_bytes(), fetched.final_url, charset_of(fetched.content_type)
        )
    linked = {link.url for link in links.media}
    wanted = {normalize_url(u) or u for u in place.media_urls}
    if linked & wanted:
        return True, "the page still shows the file"
    return False, "the page no longer shows the file"


def _act(
    work: Work, notice_id: int, result: str, status: int | None, found: str | None, detail: str
) -> CheckOutcome:
    session = work.session
    notice = session.get(Notice, notice_id)
    assert notice is not None
    now = utcnow()
    session.add(
        Recheck(
            notice_id=notice.id,
            checked_at=now,
            result=result,
            http_status=status,
            sha256=found,
            detail=detail[:2000],
        )
    )
    work.audit("notice.rechecked", "notice", notice.id, {"result": result, "http": status})
    if result in REMOVED_RESULTS:
        for same in _same_sighting(session, notice):
            move(same, NoticeStatus.REMOVED)
            same.removed_at, same.next_check_at = now, None
        work.audit("notice.removed", "notice", notice.id, {"verified": result})
        return CheckOutcome(notice.id, result, "removed")
    notice.next_check_at = now + timedelta(hours=work.app.settings.recheck_hours)
    if notice.status == NoticeStatus.ESCALATED:
        return CheckOutcome(notice.id, result, "none")
    if _overdue(notice, now) or notice.status == NoticeStatus.REFUSED:
        escalated = escalate(work, notice)
        if escalated is not None:
            return CheckOutcome(notice.id, result, "escalated", escalated.id)
        return CheckOutcome(notice.id, result, "overdue")
    if notice.sent_at is not None and now >= _next_resend(work, notice):
        resend(work, notice)
        return CheckOutcome(notice.id, result, "resent")
    return CheckOutcome(notice.id, result, "none")


def escalate(work: Work, notice: Notice) -> Notice | None:
    """Hand the sighting to the next recipient of the ladder, citing this notice (None when
    there is no next step: the notice stays on the overdue list)."""
    session = work.session
    recipient = session.get(Recipient, notice.recipient_id)
    assert recipient is not None
    nxt = session.get(Recipient, recipient.escalates_to_id) if recipient.escalates_to_id else None
    if nxt is None or not nxt.enabled:
        return None
    move(notice, NoticeStatus.ESCALATED)
    existing = session.execute(
        select(Notice).where(
            Notice.sighting_id == notice.sighting_id, Notice.recipient_id == nxt.id
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    case = session.get(Case, notice.case_id)
    sighting = session.get(Sighting, notice.sighting_id)
    match = session.get(Match, notice.match_id) if notice.match_id else None
    assert case is not None and sighting is not None and sighting.media_id is not None
    media = session.get(Media, sighting.media_id)
    assert media is not None and match is not None
    content = open_content(work.app.keys.case_key(case), notice)
    package = _facts(content["facts"]).evidence
    reason = (
        f"{recipient.name} did not remove it by its deadline"
        if notice.status != NoticeStatus.REFUSED
        else f"{recipient.name} refused to remove it"
    )
    drafts = Drafts(work)
    drafts.add(
        case,
        match,
        media,
        sighting,
        recipient_info(nxt),
        Category(notice.category),
        package,
        escalation=reason,
        escalated_from=notice,
        approved_by="policy:escalation",  # the officer approved the request: it goes on
    )
    (new_id,) = drafts.finish()
    new = session.get(Notice, new_id)
    assert new is not None
    work.audit("notice.escalated", "notice", notice.id, {"to": nxt.key, "new_notice": new.id})
    return new


def resend(work: Work, notice: Notice) -> None:
    """Send the notice again as a reminder (rewritten to say so), in a batch of its own."""
    case = work.session.get(Case, notice.case_id)
    assert case is not None
    key = work.app.keys.case_key(case)
    content = open_content(key, notice)
    facts = replace(_facts(content["facts"]), resend=notice.resends + 1)
    from safeeye.takedown.notices.render import render

    rendered = render(facts)
    notice.content_sealed = seal_content(key, notice.idempotency_key, facts, rendered)
    notice.resends += 1
    move(notice, NoticeStatus.APPROVED)
    notice.batch_id = None
    group_into_batches(work, [notice])
    work.audit("notice.resent", "notice", notice.id, {"reminder": notice.resends})


#: What a recipient may answer (``record_answer``).
ANSWER_KINDS = ("acknowledged", "removed", "refused", "more_info", "other")


def record_answer(
    work: Work, notice_id: int, kind: str, reason: str | None = None, via: str = "manual"
) -> None:
    """What the recipient said: acknowledged, removed (checked at once), refused (escalated
    at the next check), more_info (they ask for something: received, and the deadline runs on),
    or other."""
    work.require(Role.REVIEWER, Role.SYSTEM, action="record recipients' answers")
    if kind not in ANSWER_KINDS:
        raise ValidationError(f"an answer is one of {', '.join(ANSWER_KINDS)}")
    if kind == "refused" and not reason:
        raise ValidationError("a refusal is recorded with the reason the recipient gave")
    if kind == "more_info" and not reason:
        raise ValidationError("a request for more information is recorded with what they ask")
    notice = work.session.get(Notice, notice_id)
    if notice is None:
        raise NotFoundError(f"no notice {notice_id}")
    work.session.add(
        RecipientAnswer(
            notice_id=notice.id, kind=kind, reason=reason, via=via, actor=work.actor.name
        )
    )
    now = utcnow()
    if kind in ("acknowledged", "more_info") and notice.status == NoticeStatus.SENT:
        move(notice, NoticeStatus.ACKNOWLEDGED)
        notice.acknowledged_at = now
    elif kind == "refused" and notice.status in (NoticeStatus.SENT, NoticeStatus.ACKNOWLEDGED):
        move(notice, NoticeStatus.REFUSED)
    if kind in ("removed", "refused") and notice.status in OPEN:
        notice.next_check_at = now  # verified by a recheck, never taken on trust
    work.audit("notice.answered", "notice", notice.id, {"kind": kind, "via": via})


def due_rechecks(session: Session, limit: int = 500) -> list[int]:
    """Notices whose URL is due to be checked again."""
    return list(
        session.execute(
            select(Notice.id)
            .where(Notice.status.in_(OPEN), Notice.next_check_at <= utcnow())
            .order_by(Notice.next_check_at)
            .limit(limit)
        ).scalars()
    )


def overdue_notices(work: Work) -> list[Any]:
    """Sent notices past their deadline whose content is still up."""
    work.require(Role.REVIEWER, Role.AUDITOR, Role.COUNSELOR, action="list overdue notices")
    rows = work.session.execute(
        select(Notice)
        .where(Notice.status.in_(OPEN), Notice.deadline_at < utcnow())
        .order_by(Notice.deadline_at)
    ).scalars()
    return summarize_all(work.session, list(rows))


@task("compose_notices", max_attempts=3)
def compose_notices(ctx: TaskContext, match_ids: list[int]) -> Results:
    """Draft the notices a confirmed match still needs (new sightings of it: re-uploads)."""
    with ctx.app.work(ctx.actor) as work:
        report = draft_notices(work, match_ids=match_ids)
    approved = [b for b in report.batches if _approved(ctx, b)]
    for batch_id in approved:
        ctx.runner.submit("dispatch_batch", batch_id)
    return {match_id: report for match_id in match_ids}


def unreported_matches(session: Session, limit: int = 200) -> list[int]:
    """Confirmed matches with a web sighting that has no notice yet: newly confirmed ones, and
    re-uploads of confirmed media found since (the re-upload watch)."""
    has_notice = exists().where(Notice.sighting_id == Sighting.id)
    return list(
        session.execute(
            select(Match.id)
            .join(Sighting, Sighting.media_id == Match.media_id)
            .where(
                Match.status == MatchStatus.CONFIRMED,
                Sighting.location.like("http%"),
                ~has_notice,
            )
            .distinct()
            .limit(limit)
        ).scalars()
    )


def _approved(ctx: TaskContext, batch_id: int) -> bool:
    from safeeye.db.models import Batch
    from safeeye.db.states import BatchStatus

    with ctx.app.db.session(read_only=True) as session:
        batch = session.get(Batch, batch_id)
        return batch is not None and batch.status == BatchStatus.APPROVED


def _submit_new_batches(ctx: TaskContext, results: Results) -> None:
    """Reminders and escalations made batches of their own: send them."""
    from safeeye.db.models import Batch
    from safeeye.db.states import BatchStatus

    if not any(r is not None and r.action in ("resent", "escalated") for r in results.values()):
        return
    with ctx.app.db.session(read_only=True) as session:
        ids = session.execute(
            select(Batch.id).where(Batch.status == BatchStatus.APPROVED)
        ).scalars()
        for batch_id in list(ids):
            ctx.runner.submit("dispatch_batch", batch_id)


def _same_sighting(session: Session, notice: Notice) -> list[Notice]:
    return list(
        session.execute(
            select(Notice).where(Notice.sighting_id == notice.sighting_id, Notice.status.in_(OPEN))
        ).scalars()
    )


def _overdue(notice: Notice, now: datetime) -> bool:
    return notice.deadline_at is not None and now >= notice.deadline_at


def _next_resend(work: Work, notice: Notice) -> datetime:
    assert notice.sent_at is not None
    hours = work.app.settings.resend_hours * (notice.resends + 1)
    return notice.sent_at + timedelta(hours=hours)
