"""How much each reviewer has looked at today: their unblurred looks (``media.revealed`` audit
events), counted per workday against ``Settings.reveals_before_break``, past which the review
page suggests a break and the admin's dashboard shows it.

Counted from the audit log itself (no counter to keep in step): one indexed query per count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from safeeye.accounts.model import ACTOR_PREFIX
from safeeye.db.models import AuditEvent
from safeeye.work import Role, Work

#: The audit event of one unblurred look (written by ``review.previews``).
REVEALED = "media.revealed"


@dataclass(frozen=True)
class RevealCount:
    """One reviewer's unblurred looks since the start of their workday (``since``, UTC) and
    the number after which a break is suggested."""

    username: str
    count: int
    limit: int
    since: str

    @property
    def past_limit(self) -> bool:
        """At or past the limit: time to suggest a break."""
        return self.count >= self.limit

    @property
    def left(self) -> int:
        return max(0, self.limit - self.count)


def day_start(work: Work, now: datetime | None = None) -> datetime:
    """When today began (midnight in ``Settings.workday_timezone``), in UTC."""
    zone = ZoneInfo(work.app.settings.workday_timezone)
    local = (now or datetime.now(UTC)).astimezone(zone)
    return datetime(local.year, local.month, local.day, tzinfo=zone).astimezone(UTC)


def reveals_today(
    work: Work, username: str | None = None, *, now: datetime | None = None
) -> RevealCount:
    """``username``'s unblurred looks today (the acting person's own when None; another
    person's for an administrator only)."""
    if username is None or ACTOR_PREFIX + username == work.actor.name:
        work.require(Role.REVIEWER, action="read their own exposure count")
        username = work.actor.name.removeprefix(ACTOR_PREFIX)
    else:
        work.require(Role.ADMIN, action="read a reviewer's exposure count")
    since = day_start(work, now)
    count = work.session.scalar(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == REVEALED,
            AuditEvent.actor == ACTOR_PREFIX + username,
            AuditEvent.at >= since,
        )
    )
    return RevealCount(
        username, int(count or 0), work.app.settings.reveals_before_break, since.isoformat()
    )


def reveals_by_reviewer(work: Work, *, now: datetime | None = None) -> list[RevealCount]:
    """Every person who unblurred something today, most looks first (for the admin's
    dashboard; ``past_limit`` marks who should be offered a break)."""
    work.require(Role.ADMIN, action="read reviewers' exposure counts")
    since = day_start(work, now)
    limit = work.app.settings.reveals_before_break
    looks = func.count().label("looks")
    rows = work.session.execute(
        select(AuditEvent.actor, looks)
        .where(
            AuditEvent.action == REVEALED,
            AuditEvent.actor.startswith(ACTOR_PREFIX),
            AuditEvent.at >= since,
        )
        .group_by(AuditEvent.actor)
        .order_by(looks.desc(), AuditEvent.actor)
    ).all()
    return [
        RevealCount(actor.removeprefix(ACTOR_PREFIX), int(n), limit, since.isoformat())
        for actor, n in rows
    ]
