"""The review queue: matches waiting for a person, what hurts most first.

Order: the strongest match first (an exact file, then the smallest distance against its
threshold), then the highest sexual-content score, then the newest. Paged on the server.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, cast, func, literal, select
from sqlalchemy import case as when

from safeeye.cases.service import get_case
from safeeye.db.models import Case, Match, Media, Sighting
from safeeye.db.states import MatchStatus
from safeeye.review.matches import threshold_of
from safeeye.work import Role, Work

PAGE = 50


@dataclass(frozen=True)
class QueueItem:
    """One match as the queue lists it (no picture: the page asks for a blurred one)."""

    match_id: int
    case: str
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


def review_queue(
    work: Work,
    *,
    case: str | None = None,
    status: str = MatchStatus.PENDING,
    limit: int = PAGE,
    offset: int = 0,
) -> QueuePage:
    """Matches in ``status`` (pending, or escalated for senior reviewers), of every open case
    or of ``case``, in priority order; ``limit`` from ``offset``."""
    work.require(Role.REVIEWER, action="read the review queue")
    settings = work.app.settings
    session = work.session
    strength = when(
        (Match.distance <= 0, literal(0.0)),
        (Match.kind == "face", Match.distance / settings.face_distance),
        (Match.kind == "hash", Match.distance / float(settings.pdq_threshold)),
        else_=cast(Match.distance, Float),
    ).label("strength")
    seen = (
        select(
            Sighting.media_id.label("media_id"),
            func.min(Sighting.seen_at).label("first_seen"),
            func.count().label("sightings"),
        )
        .group_by(Sighting.media_id)
        .subquery()
    )
    query = (
        select(Match, Case.code, Media.media_type, Media.sexual_score, strength, seen)
        .join(Case, Case.id == Match.case_id)
        .join(Media, Media.id == Match.media_id)
        .outerjoin(seen, seen.c.media_id == Match.media_id)
        .where(Match.status == status, Case.status != "purged")
    )
    if case is not None:
        query = query.where(Match.case_id == get_case(session, case).id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.execute(
        query.order_by(
            strength,
            func.coalesce(Media.sexual_score, 0.0).desc(),
            Match.id.desc(),
        )
        .limit(max(1, min(limit, 500)))
        .offset(max(0, offset))
    ).all()
    items = [
        QueueItem(
            match_id=match.id,
            case=code,
            kind=match.kind,
            distance=float(match.distance),
            threshold=threshold_of(settings, match.kind),
            strength=round(float(score), 4),
            sexual_score=sexual,
            media_type=media_type,
            status=match.status,
            first_seen=first_seen.isoformat() if first_seen is not None else None,
            sightings=int(count or 0),
        )
        for match, code, media_type, sexual, score, _media, first_seen, count in rows
    ]
    return QueuePage(items, int(total), offset)
