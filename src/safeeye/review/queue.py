"""The review queue: matches waiting for a person, what hurts most first.

Order: a case flagged as a minor first, then the strongest match (an exact file, then the
smallest distance against its threshold), then the highest sexual-content score, then the
newest. Paged on the server: one query for the page, one for its sightings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, cast, func, literal, or_, select
from sqlalchemy import case as when

from safeeye.cases.service import get_case
from safeeye.config import Settings
from safeeye.db.models import Case, Match, Media
from safeeye.db.states import MatchStatus
from safeeye.errors import NotFoundError, ValidationError
from safeeye.ingest.sightings import SightingSummary
from safeeye.review.matches import _newest_sightings, _seen, threshold_of
from safeeye.review.previews import MatchView, match_view
from safeeye.work import Role, Work

PAGE = 50
MAX_PAGE = 500
#: The statuses a queue lists: waiting for a first look, or for a second one.
QUEUE_STATUSES = (MatchStatus.PENDING.value, MatchStatus.ESCALATED.value)


@dataclass(frozen=True)
class QueueItem:
    """One match as the queue lists it (no picture: the page asks for a blurred one)."""

    match_id: int
    case: str
    minor: bool
    kind: str
    distance: float
    threshold: float | None
    strength: float  # distance / threshold: 0 is certain, 1 is at the threshold
    sexual_score: float | None
    media_type: str | None
    status: str
    first_seen: str | None
    sightings: int


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    total: int
    offset: int


@dataclass(frozen=True)
class MatchDetail:
    """One match as the review page shows it: why it matched, and where and when the file
    was seen (the newest places, at most ``matches.SIGHTINGS_PER_MATCH`` of ``sightings_total``)."""

    view: MatchView
    minor: bool
    first_seen: str | None
    last_seen: str | None
    sightings_total: int
    sightings: tuple[SightingSummary, ...]


def _strength(settings: Settings) -> ColumnElement[Any]:
    return when(
        (Match.distance <= 0, literal(0.0)),
        (Match.kind == "face", Match.distance / settings.face_distance),
        (Match.kind == "hash", Match.distance / float(settings.pdq_threshold or 1)),
        else_=cast(Match.distance, Float),
    )


def _sexual() -> ColumnElement[Any]:
    return func.coalesce(Media.sexual_score, 0.0)


def _minor() -> ColumnElement[Any]:
    """1 for a case flagged as a minor's, else 0 (an integer sorts and compares the same on
    every backend)."""
    return when((Case.minor.is_(True), 1), else_=0)


def _check_status(status: str) -> None:
    if status not in QUEUE_STATUSES:
        raise ValidationError(f"the queue lists {' or '.join(QUEUE_STATUSES)} matches")


def review_queue(
    work: Work,
    *,
    case: str | None = None,
    status: str = MatchStatus.PENDING,
    limit: int = PAGE,
    offset: int = 0,
) -> QueuePage:
    """Matches in ``status`` (pending, or escalated for senior reviewers), of every open case
    or of ``case``, in priority order; ``limit`` (1..500) from ``offset``."""
    work.require(Role.REVIEWER, action="read the review queue")
    _check_status(status)
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValidationError(f"a page holds 1 to {MAX_PAGE} matches from an offset of 0 or more")
    settings = work.app.settings
    session = work.session
    strength = _strength(settings).label("strength")
    query = (
        select(Match, Case.code, _minor(), Media.media_type, Media.sexual_score, strength)
        .join(Case, Case.id == Match.case_id)
        .join(Media, Media.id == Match.media_id)
        .where(Match.status == status, Case.status != "purged")
    )
    if case is not None:
        query = query.where(Match.case_id == get_case(session, case).id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(_minor().desc(), strength, _sexual().desc(), Match.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    seen = _seen(session, {match.media_id for match, *_ in rows})
    items = []
    for match, code, minor, media_type, sexual, score in rows:
        first, _last, count = seen.get(match.media_id, (None, None, 0))
        items.append(
            QueueItem(
                match_id=match.id,
                case=code,
                minor=bool(minor),
                kind=match.kind,
                distance=float(match.distance),
                threshold=threshold_of(settings, match.kind),
                strength=round(float(score), 4),
                sexual_score=sexual,
                media_type=media_type,
                status=match.status,
                first_seen=first,
                sightings=count,
            )
        )
    return QueuePage(items, int(total), offset)


def next_in_queue(
    work: Work,
    match_id: int,
    *,
    case: str | None = None,
    status: str = MatchStatus.PENDING,
) -> int | None:
    """The match that comes after ``match_id`` in the queue's order (whether or not
    ``match_id`` itself is still waiting: after a decision, this is the next to look at);
    None at the end of the queue."""
    work.require(Role.REVIEWER, action="read the review queue")
    _check_status(status)
    settings = work.app.settings
    session = work.session
    strength = _strength(settings)
    here = session.execute(
        select(_minor(), strength, _sexual())
        .select_from(Match)
        .join(Case, Case.id == Match.case_id)
        .join(Media, Media.id == Match.media_id)
        .where(Match.id == match_id)
    ).first()
    if here is None:
        raise NotFoundError(f"no match {match_id}")
    minor, score, sexual = int(here[0]), float(here[1]), float(here[2])
    # The rows after this one in (minor desc, strength, sexual desc, id desc) order.
    later = or_(
        _minor() < minor,
        and_(_minor() == minor, strength > score),
        and_(_minor() == minor, strength == score, _sexual() < sexual),
        and_(_minor() == minor, strength == score, _sexual() == sexual, Match.id < match_id),
    )
    query = (
        select(Match.id)
        .join(Case, Case.id == Match.case_id)
        .join(Media, Media.id == Match.media_id)
        .where(Match.status == status, Case.status != "purged", Match.id != match_id, later)
    )
    if case is not None:
        query = query.where(Match.case_id == get_case(session, case).id)
    return session.scalar(
        query.order_by(_minor().desc(), strength, _sexual().desc(), Match.id.desc()).limit(1)
    )


def match_detail(work: Work, match_id: int) -> MatchDetail:
    """Match ``match_id`` as a reviewer decides it: why it matched, and where it was seen."""
    work.require(Role.REVIEWER, action="read the review queue")
    view = match_view(work, match_id)
    session = work.session
    row = session.execute(
        select(Match.media_id, _minor())
        .join(Case, Case.id == Match.case_id)
        .where(Match.id == match_id)
    ).one()
    media_id, minor = row
    first, last, total = _seen(session, {media_id}).get(media_id, (None, None, 0))
    sightings = _newest_sightings(session, {media_id}).get(media_id, [])
    return MatchDetail(view, bool(minor), first, last, total, tuple(sightings))
