"""What the takedown work looks like: notices listed, one notice's story, and each recipient's
accountability figures (how many notices, how many removed, how many hours it took)."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from safeeye.cases.service import get_case
from safeeye.db.models import Notice, Recheck, Recipient, RecipientAnswer
from safeeye.db.states import NoticeStatus
from safeeye.db.types import utcnow
from safeeye.errors import NotFoundError, ValidationError
from safeeye.takedown.drafting import NoticeSummary, summarize, summarize_all
from safeeye.takedown.recipients import READERS, RecipientEntry, entry_of, kind_of
from safeeye.work import Role, Work


@dataclass(frozen=True)
class NoticeStory:
    """One notice: its summary, every recheck and every answer, oldest first."""

    notice: NoticeSummary
    rechecks: list[dict[str, object]]
    answers: list[dict[str, object]]


@dataclass(frozen=True)
class RecipientFigures:
    """One recipient's record over a period (notices first sent in it)."""

    recipient: str
    name: str
    notices: int
    removed: int
    removed_share: float
    median_hours_to_removal: float | None
    p90_hours_to_removal: float | None
    overdue: int


def list_notices(
    work: Work,
    *,
    status: str | None = None,
    case: str | None = None,
    batch: int | None = None,
    limit: int = 100,
) -> list[NoticeSummary]:
    """Notices, newest first."""
    work.require(Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR, action="list notices")
    query = select(Notice).order_by(Notice.id.desc()).limit(max(1, min(limit, 1000)))
    if status is not None:
        query = query.where(Notice.status == status)
    if case is not None:
        query = query.where(Notice.case_id == get_case(work.session, case).id)
    if batch is not None:
        query = query.where(Notice.batch_id == batch)
    return summarize_all(work.session, list(work.session.execute(query).scalars()))


def notice_story(work: Work, notice_id: int) -> NoticeStory:
    work.require(Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR, action="read notices")
    notice = work.session.get(Notice, notice_id)
    if notice is None:
        raise NotFoundError(f"no notice {notice_id}")
    rechecks = work.session.execute(
        select(Recheck).where(Recheck.notice_id == notice_id).order_by(Recheck.id)
    ).scalars()
    answers = work.session.execute(
        select(RecipientAnswer)
        .where(RecipientAnswer.notice_id == notice_id)
        .order_by(RecipientAnswer.id)
    ).scalars()
    return NoticeStory(
        summarize(work.session, notice),
        [
            {
                "checked_at": r.checked_at.isoformat(),
                "result": r.result,
                "http_status": r.http_status,
                "detail": r.detail,
            }
            for r in rechecks
        ],
        [
            {"at": a.at.isoformat(), "kind": a.kind, "reason": a.reason, "via": a.via}
            for a in answers
        ],
    )


def removal_times(
    work: Work, since: datetime | None = None, until: datetime | None = None
) -> list[RecipientFigures]:
    """Per recipient, over notices first sent in [since, until): how many, the share removed,
    and the median and 90th-percentile hours from sending to verified removal."""
    work.require(Role.REVIEWER, Role.AUDITOR, Role.ADMIN, action="read accountability figures")
    if since is not None and until is not None and since >= until:
        raise ValidationError("the period ends before it starts")
    query = select(Notice, Recipient).join(Recipient, Recipient.id == Notice.recipient_id)
    query = query.where(Notice.sent_at.is_not(None))
    if since is not None:
        query = query.where(Notice.sent_at >= since)
    if until is not None:
        query = query.where(Notice.sent_at < until)
    grouped: dict[int, tuple[Recipient, list[Notice]]] = {}
    for notice, recipient in work.session.execute(query).all():
        grouped.setdefault(recipient.id, (recipient, []))[1].append(notice)
    now = utcnow()
    figures = []
    for recipient, notices in grouped.values():
        hours = sorted(
            (n.removed_at - n.sent_at).total_seconds() / 3600
            for n in notices
            if n.removed_at is not None and n.sent_at is not None
        )
        overdue = sum(
            1
            for n in notices
            if n.status != NoticeStatus.REMOVED and n.deadline_at and n.deadline_at < now
        )
        figures.append(
            RecipientFigures(
                recipient=recipient.key,
                name=recipient.name,
                notices=len(notices),
                removed=len(hours),
                removed_share=round(len(hours) / len(notices), 4),
                median_hours_to_removal=round(statistics.median(hours), 2) if hours else None,
                p90_hours_to_removal=round(_percentile(hours, 0.9), 2) if hours else None,
                overdue=overdue,
            )
        )
    return sorted(figures, key=lambda f: (-f.notices, f.recipient))


def figures_csv(figures: list[RecipientFigures]) -> str:
    """The figures as a CSV sheet (one row per recipient)."""
    out = io.StringIO()
    fields = list(RecipientFigures.__dataclass_fields__)
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for figure in figures:
        writer.writerow(asdict(figure))
    return out.getvalue()


def _percentile(sorted_values: list[float], share: float) -> float:
    """The ``share`` percentile by linear interpolation (values sorted)."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    position = share * (len(sorted_values) - 1)
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


# -- for the workbench: paged lists and one notice in full -------------------------------------

#: What the audit log records about one notice (its page shows them as its history).
NOTICE_ACTIONS = (
    "notice.answered",
    "notice.rechecked",
    "notice.removed",
    "notice.resent",
    "notice.escalated",
)
#: The most rows one page of a list holds.
MAX_PAGE = 500


@dataclass(frozen=True)
class NoticePage:
    """One page of notices, newest first; ``overdue`` names those on it past their deadline."""

    notices: list[NoticeSummary]
    overdue: list[int]
    limit: int
    offset: int
    has_more: bool


@dataclass(frozen=True)
class NoticeDetail:
    """One notice as its page shows it: the story, the recipient, the evidence it cites, the
    time left before its deadline and what it says (opened from the sealed content)."""

    notice: NoticeSummary
    recipient_name: str
    recipient_kind: str
    recipient_deadline_hours: float
    overdue: bool
    seconds_left: int | None  # until the deadline (negative past it); None before sending
    evidence_package: int | None
    evidence_sha256: str | None
    evidence_public_key: str | None
    subject: str
    body: str
    english_subject: str | None
    english_body: str | None
    legal_basis: list[str]
    rechecks: list[dict[str, object]]
    answers: list[dict[str, object]]
    history: list[dict[str, object]]  # the notice's moves from the audit log, oldest first


@dataclass(frozen=True)
class BatchRow:
    """A batch as lists show it, with how many of its notices are in each state."""

    id: int
    reference: str
    recipient: str
    recipient_name: str
    connector: str
    status: str
    notices: int
    created_at: str
    approved_at: str | None
    approved_by: str | None
    sent_at: str | None
    error: str | None


@dataclass(frozen=True)
class BatchPage:
    """One page of batches, and how many batches there are in each state (all of them)."""

    batches: list[BatchRow]
    limit: int
    offset: int
    has_more: bool
    by_state: dict[str, int]


@dataclass(frozen=True)
class BatchDetail:
    """One batch and one page of its notices."""

    batch: BatchRow
    by_state: dict[str, int]
    notices: NoticePage


@dataclass(frozen=True)
class RemovalHours:
    """One recipient's median hours from sending to verified removal over a period."""

    recipient: str
    name: str
    removed: int
    median_hours: float


@dataclass(frozen=True)
class RecipientPage:
    recipients: list[RecipientEntry]
    limit: int
    offset: int
    has_more: bool


def _bounds(limit: int, offset: int) -> tuple[int, int]:
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"a page holds 1 to {MAX_PAGE} rows")
    if offset < 0:
        raise ValidationError("the offset cannot be negative")
    return limit, offset


def _overdue_ids(notices: list[NoticeSummary], now: datetime) -> list[int]:
    from safeeye.takedown.follow_up import OPEN

    stamp = now.isoformat()
    return [
        n.id
        for n in notices
        if n.status in OPEN and n.deadline_at is not None and n.deadline_at < stamp
    ]


def notices_page(
    work: Work,
    *,
    status: str | None = None,
    case: str | None = None,
    recipient: str | None = None,
    batch: int | None = None,
    overdue: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> NoticePage:
    """One page of notices, newest first, narrowed by state, case code, recipient key, batch,
    or to the overdue ones (open, past their deadline)."""
    from safeeye.takedown.follow_up import OPEN

    work.require(Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR, action="list notices")
    limit, offset = _bounds(limit, offset)
    session = work.session
    query = select(Notice)
    if status is not None:
        if status not in set(NoticeStatus):
            raise ValidationError(f"no notice state {status[:30]!r}")
        query = query.where(Notice.status == status)
    if case is not None:
        query = query.where(Notice.case_id == get_case(session, case).id)
    if recipient is not None:
        found = session.scalar(select(Recipient.id).where(Recipient.key == recipient.lower()))
        if found is None:
            raise NotFoundError(f"no recipient {recipient[:70]!r}")
        query = query.where(Notice.recipient_id == found)
    if batch is not None:
        query = query.where(Notice.batch_id == batch)
    now = utcnow()
    if overdue:
        query = query.where(Notice.status.in_(OPEN), Notice.deadline_at < now)
    rows = list(session.scalars(query.order_by(Notice.id.desc()).limit(limit + 1).offset(offset)))
    notices = summarize_all(session, rows[:limit])
    return NoticePage(notices, _overdue_ids(notices, now), limit, offset, len(rows) > limit)


def notice_detail(work: Work, notice_id: int) -> NoticeDetail:
    """One notice in full, for those who read notices; what it says is opened from its sealed
    content and shown as text."""
    from safeeye.db.models import AuditEvent, Case
    from safeeye.takedown.drafting import open_content
    from safeeye.takedown.follow_up import OPEN

    story = notice_story(work, notice_id)
    session = work.session
    notice = session.get(Notice, notice_id)
    assert notice is not None
    recipient = session.get(Recipient, notice.recipient_id)
    case = session.get(Case, notice.case_id)
    assert recipient is not None and case is not None
    content: dict[str, Any] = {}
    if case.wrapped_key is not None:
        content = open_content(work.app.keys.case_key(case), notice)
    rendered = content.get("rendered") or {}
    evidence = (content.get("facts") or {}).get("evidence") or {}
    now = utcnow()
    seconds_left = None
    if notice.deadline_at is not None and notice.status in OPEN:
        seconds_left = int((notice.deadline_at - now).total_seconds())
    events = session.execute(
        select(AuditEvent.at, AuditEvent.action, AuditEvent.actor)
        .where(
            AuditEvent.action.in_(NOTICE_ACTIONS),  # indexed: never a scan of the whole log
            AuditEvent.object_type == "notice",
            AuditEvent.object_id == str(notice_id),
        )
        .order_by(AuditEvent.id)
        .limit(200)
    )
    history: list[dict[str, object]] = [
        {"at": notice.created_at.isoformat(), "event": "drafted", "by": None}
    ]
    for stamp, by in ((notice.approved_at, notice.approved_by), (notice.sent_at, None)):
        if stamp is not None:
            history.append(
                {"at": stamp.isoformat(), "event": "approved" if by else "sent", "by": by}
            )
    for at, action, actor in events:
        history.append({"at": at.isoformat(), "event": action, "by": actor})
    history.sort(key=lambda h: str(h["at"]))
    return NoticeDetail(
        notice=story.notice,
        recipient_name=recipient.name,
        recipient_kind=recipient.kind,
        recipient_deadline_hours=float(recipient.deadline_hours),
        overdue=seconds_left is not None and seconds_left < 0,
        seconds_left=seconds_left,
        evidence_package=evidence.get("package_id"),
        evidence_sha256=evidence.get("manifest_sha256"),
        evidence_public_key=evidence.get("public_key"),
        subject=str(rendered.get("subject") or ""),
        body=str(rendered.get("body") or ""),
        english_subject=rendered.get("english_subject"),
        english_body=rendered.get("english_body"),
        legal_basis=[str(b) for b in rendered.get("legal_basis") or ()],
        rechecks=story.rechecks,
        answers=story.answers,
        history=history,
    )


def _batch_rows(work: Work, batches: list[Any]) -> list[BatchRow]:
    from sqlalchemy import func

    session = work.session
    ids = [b.id for b in batches]
    counts: dict[int, int] = {}
    if ids:
        counts = dict(
            session.execute(
                select(Notice.batch_id, func.count())
                .where(Notice.batch_id.in_(ids))
                .group_by(Notice.batch_id)
            ).all()
        )
    wanted = {b.recipient_id for b in batches}
    names = {
        row.id: (row.key, row.name)
        for row in session.execute(
            select(Recipient.id, Recipient.key, Recipient.name).where(Recipient.id.in_(wanted))
        )
    }
    return [
        BatchRow(
            id=b.id,
            reference=b.idempotency_key,
            recipient=names[b.recipient_id][0],
            recipient_name=names[b.recipient_id][1],
            connector=b.connector,
            status=b.status,
            notices=int(counts.get(b.id, 0)),
            created_at=b.created_at.isoformat(),
            approved_at=b.approved_at.isoformat() if b.approved_at else None,
            approved_by=b.approved_by,
            sent_at=b.sent_at.isoformat() if b.sent_at else None,
            error=b.error,
        )
        for b in batches
    ]


def batches_page(
    work: Work,
    *,
    status: str | None = None,
    recipient: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> BatchPage:
    """One page of batches, newest first, with their recipients and notice counts (three
    queries, whatever the page's length)."""
    from sqlalchemy import func

    from safeeye.db.models import Batch
    from safeeye.db.states import BatchStatus

    work.require(Role.REVIEWER, Role.AUDITOR, Role.COUNSELOR, action="list batches")
    limit, offset = _bounds(limit, offset)
    query = select(Batch)
    if status is not None:
        if status not in set(BatchStatus):
            raise ValidationError(f"no batch state {status[:30]!r}")
        query = query.where(Batch.status == status)
    if recipient is not None:
        found = work.session.scalar(select(Recipient.id).where(Recipient.key == recipient.lower()))
        if found is None:
            raise NotFoundError(f"no recipient {recipient[:70]!r}")
        query = query.where(Batch.recipient_id == found)
    query = query.order_by(Batch.id.desc()).limit(limit + 1).offset(offset)
    rows = list(work.session.scalars(query))
    counted = work.session.execute(select(Batch.status, func.count()).group_by(Batch.status))
    by_state = {str(state): int(n) for state, n in sorted(counted)}
    return BatchPage(_batch_rows(work, rows[:limit]), limit, offset, len(rows) > limit, by_state)


def batch_detail(work: Work, batch_id: int, *, limit: int = 50, offset: int = 0) -> BatchDetail:
    """One batch, how many of its notices are in each state, and a page of them."""
    from sqlalchemy import func

    from safeeye.db.models import Batch

    work.require(Role.REVIEWER, Role.AUDITOR, Role.COUNSELOR, action="read batches")
    batch = work.session.get(Batch, batch_id)
    if batch is None:
        raise NotFoundError(f"no batch {batch_id}")
    by_state = {
        str(status): int(n)
        for status, n in work.session.execute(
            select(Notice.status, func.count())
            .where(Notice.batch_id == batch_id)
            .group_by(Notice.status)
        )
    }
    page = notices_page(work, batch=batch_id, limit=limit, offset=offset)
    return BatchDetail(_batch_rows(work, [batch])[0], by_state, page)


def removal_medians(
    work: Work, since: datetime, until: datetime | None = None
) -> list[RemovalHours]:
    """Per recipient, the median hours from sending to verified removal of the notices sent in
    [since, until) and removed: the database gives the hours, one number a notice."""
    work.require(Role.REVIEWER, Role.AUDITOR, Role.ADMIN, action="read accountability figures")
    query = (
        select(Notice.recipient_id, _hours_between(work, Notice.sent_at, Notice.removed_at))
        .where(Notice.sent_at >= since, Notice.removed_at.is_not(None))
        .order_by(Notice.recipient_id)
    )
    if until is not None:
        query = query.where(Notice.sent_at < until)
    hours: dict[int, list[float]] = {}
    for recipient_id, taken in work.session.execute(query):
        hours.setdefault(recipient_id, []).append(float(taken))
    if not hours:
        return []
    names = {
        row.id: (row.key, row.name)
        for row in work.session.execute(
            select(Recipient.id, Recipient.key, Recipient.name).where(Recipient.id.in_(hours))
        )
    }
    found = [
        RemovalHours(names[rid][0], names[rid][1], len(values), round(statistics.median(values), 2))
        for rid, values in hours.items()
    ]
    return sorted(found, key=lambda f: (-f.removed, f.recipient))


def _hours_between(work: Work, start: Any, end: Any) -> Any:
    """Hours from ``start`` to ``end``, computed by the database (a number a row: no timestamps
    to turn into datetimes in Python)."""
    from sqlalchemy import Float, cast, extract, func

    if work.session.get_bind().dialect.name == "postgresql":
        return extract("epoch", end - start) / 3600.0
    return cast((func.julianday(end) - func.julianday(start)) * 24.0, Float)


def recipients_page(
    work: Work, *, kind: str | None = None, limit: int = 100, offset: int = 0
) -> RecipientPage:
    """One page of the recipients directory, by key."""
    work.require(*READERS, action="read recipients")
    limit, offset = _bounds(limit, offset)
    query = select(Recipient).order_by(Recipient.key)
    if kind is not None:
        query = query.where(Recipient.kind == kind_of(kind))
    rows = list(work.session.scalars(query.limit(limit + 1).offset(offset)))
    keys = {
        row_id: key
        for row_id, key in work.session.execute(
            select(Recipient.id, Recipient.key).where(
                Recipient.id.in_({r.escalates_to_id for r in rows if r.escalates_to_id})
            )
        )
    }
    entries = [entry_of(work.session, row, keys) for row in rows[:limit]]
    return RecipientPage(entries, limit, offset, len(rows) > limit)
