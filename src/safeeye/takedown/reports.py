"""What the takedown work looks like: notices listed, one notice's story, and each recipient's
accountability figures (how many notices, how many removed, how many hours it took)."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import select

from safeeye.cases.service import get_case
from safeeye.db.models import Notice, Recheck, Recipient, RecipientAnswer
from safeeye.db.states import NoticeStatus
from safeeye.db.types import utcnow
from safeeye.errors import NotFoundError, ValidationError
from safeeye.takedown.drafting import NoticeSummary, summarize, summarize_all
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
