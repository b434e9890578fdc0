"""The dashboard's figures: what is open, what waits, what is due, and the last 30 days per day.

Every figure is an aggregate the database computes (COUNT ... GROUP BY), so the dashboard costs
the same few queries with ten notices or a hundred thousand sightings. Each block is filled only
for the roles that may read what it counts; the others get None.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safeeye.db.models import Case, Match, Notice
from safeeye.db.states import CaseStatus, MatchStatus
from safeeye.db.types import utcnow
from safeeye.takedown.drafting import NoticeSummary, summarize_all
from safeeye.takedown.follow_up import OPEN
from safeeye.takedown.reports import RemovalHours, removal_medians
from safeeye.work import Role, Work

#: How many days the charts cover, and how far ahead "about to pass" looks.
DAYS = 30
DUE_SOON_HOURS = 6
#: At most this many notices are named in the "due soon" and "overdue" lists.
LISTED = 10
READERS = (Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR)


@dataclass(frozen=True)
class DayCount:
    """One day of a chart (UTC dates)."""

    day: str  # YYYY-MM-DD
    count: int


@dataclass(frozen=True)
class Deadlines:
    """Open notices whose deadline passes in the next hours, and those past it (the first
    ``LISTED`` of each, soonest first)."""

    due_soon: int
    overdue: int
    due_soon_notices: list[NoticeSummary]
    overdue_notices: list[NoticeSummary]


@dataclass(frozen=True)
class RevealCount:
    """How many unblurred looks at matched media one reviewer took today, and whether that is
    past the number after which a break is suggested."""

    username: str
    reveals: int
    limit: int
    past_limit: bool


@dataclass(frozen=True)
class Dashboard:
    """What the dashboard shows; a block is None when the reader's roles may not see it."""

    generated_at: str
    days: int
    open_cases: int | None
    awaiting_review: dict[str, int] | None  # pending, escalated
    notices_by_state: dict[str, int] | None
    deadlines: Deadlines | None
    detections: list[DayCount] | None  # matches created, per day
    notices_sent: list[DayCount] | None  # notices first sent, per day
    removal_hours: list[RemovalHours] | None  # median hours to removal, per recipient
    reveals_today: list[RevealCount] | None  # admins only, once the review side records them


def dashboard(work: Work) -> Dashboard:
    """The figures for the person at the dashboard: each block only for the roles that may read
    it (an administrator sees all). Anyone with no role is refused."""
    work.require(*READERS, action="read the dashboard")
    session = work.session
    now = utcnow()
    first_day = (now - timedelta(days=DAYS - 1)).date()
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=now.tzinfo)
    readers = work.actor.may(*READERS)
    figures = work.actor.may(Role.REVIEWER, Role.AUDITOR)
    return Dashboard(
        generated_at=now.isoformat(timespec="seconds"),
        days=DAYS,
        open_cases=_open_cases(session) if readers else None,
        awaiting_review=_awaiting_review(session) if readers else None,
        notices_by_state=_notices_by_state(session) if readers else None,
        deadlines=_deadlines(session, now) if readers else None,
        detections=_per_day(session, Match.created_at, since, first_day) if readers else None,
        notices_sent=_per_day(session, Notice.sent_at, since, first_day) if readers else None,
        removal_hours=removal_medians(work, since) if figures else None,
        reveals_today=_reveals_today(work) if work.actor.may(Role.ADMIN) else None,
    )


def _open_cases(session: Session) -> int:
    query = select(func.count()).select_from(Case).where(Case.status == CaseStatus.OPEN)
    return int(session.scalar(query) or 0)


def _awaiting_review(session: Session) -> dict[str, int]:
    waiting = (MatchStatus.PENDING, MatchStatus.ESCALATED)
    rows = session.execute(
        select(Match.status, func.count()).where(Match.status.in_(waiting)).group_by(Match.status)
    )
    counts = {str(status): 0 for status in waiting}
    counts.update({str(status): int(n) for status, n in rows})
    return counts


def _notices_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(Notice.status, func.count()).group_by(Notice.status))
    return {str(status): int(n) for status, n in sorted(rows)}


def _deadlines(session: Session, now: datetime) -> Deadlines:
    soon = now + timedelta(hours=DUE_SOON_HOURS)
    open_ = Notice.status.in_(OPEN)
    overdue = open_ & (Notice.deadline_at < now)
    due_soon = open_ & (Notice.deadline_at >= now) & (Notice.deadline_at < soon)

    def count(condition: Any) -> int:
        return int(session.scalar(select(func.count()).select_from(Notice).where(condition)) or 0)

    def first(condition: Any) -> list[NoticeSummary]:
        query = select(Notice).where(condition).order_by(Notice.deadline_at, Notice.id)
        return summarize_all(session, list(session.scalars(query.limit(LISTED))))

    return Deadlines(count(due_soon), count(overdue), first(due_soon), first(overdue))


def day_of(session: Session, column: Any) -> Any:
    """The UTC date of a timestamp column, as the database computes it."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite keeps UTC timestamps naive


def _per_day(session: Session, column: Any, since: datetime, first_day: date) -> list[DayCount]:
    """How many rows have ``column`` on each of the last ``DAYS`` days (a zero for a day with
    none), counted by the database."""
    day = day_of(session, column)
    rows = session.execute(
        select(day, func.count()).where(column >= since).group_by(day).order_by(day)
    )
    counted = {str(found)[:10]: int(n) for found, n in rows if found is not None}
    days = [(first_day + timedelta(days=i)).isoformat() for i in range(DAYS)]
    return [DayCount(d, counted.get(d, 0)) for d in days]


def _reveals_today(work: Work) -> list[RevealCount] | None:
    """Each reviewer's unblurred looks today, most first, when the review side counts them
    (``safeeye.review.exposure``; None without it)."""
    try:
        from safeeye.review.exposure import reveals_by_reviewer
    except ImportError:
        return None
    return [
        RevealCount(c.username, c.count, c.limit, c.past_limit) for c in reveals_by_reviewer(work)
    ]
