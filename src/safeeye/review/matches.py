"""Matches as a reviewer reads them: which case, how close, what file, and where it was seen."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safeeye.cases.sealing import open_match_evidence
from safeeye.cases.service import get_case
from safeeye.config import Settings
from safeeye.db.models import Case, Match, Media, Sighting
from safeeye.ingest.sightings import DEFAULT_LIMIT, SightingSummary, newest_first, summarize
from safeeye.work import Role, Work

#: The setting each kind of match is decided by (a distance at or under it matches).
THRESHOLD_SETTINGS = {"hash": "pdq_threshold", "face": "face_distance"}
SIGHTINGS_PER_MATCH = 50


@dataclass(frozen=True)
class MatchSummary:
    """A match of one media file to one case. ``frames`` are the times (seconds; 0 for a
    still) where it matched; ``sightings`` the newest places the file was seen (at most
    ``SIGHTINGS_PER_MATCH`` of ``sightings_total``), ``first_seen``/``last_seen`` over all."""

    match_id: int
    case: str
    kind: str
    distance: float
    threshold: float | None
    status: str
    media_id: int
    sha256: str
    media_type: str | None
    frames: tuple[float, ...]
    frame_count: int
    created_at: str
    first_seen: str | None
    last_seen: str | None
    sightings_total: int
    sightings: tuple[SightingSummary, ...]


def threshold_of(settings: Settings, kind: str) -> float | None:
    """The threshold a match of ``kind`` was decided by (None for a kind without one)."""
    name = THRESHOLD_SETTINGS.get(kind)
    return float(getattr(settings, name)) if name else None


def list_matches(
    work: Work,
    *,
    case: str | None = None,
    status: str | None = None,
    limit: int = DEFAULT_LIMIT,
    before: int | None = None,
) -> list[MatchSummary]:
    """Matches of every case (or of ``case``, by code; with ``status`` only those), newest
    first, at most ``limit``; the next page is ``before`` the last ``match_id`` of this one.
    Purged cases have none."""
    work.require(Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR, action="list matches")
    session = work.session
    query = (
        select(Match, Case, Media)
        .join(Case, Case.id == Match.case_id)
        .join(Media, Media.id == Match.media_id)
        .where(Case.status != "purged")
    )
    if case is not None:
        query = query.where(Match.case_id == get_case(session, case).id)
    if status is not None:
        query = query.where(Match.status == status)
    rows = session.execute(newest_first(query, Match.id, limit, before)).all()
    media_ids = {media.id for _, _, media in rows}
    seen = _seen(session, media_ids)
    sightings = _newest_sightings(session, media_ids)
    keys: dict[int, bytes] = {}
    summaries = []
    for match, matched_case, media in rows:
        if matched_case.id not in keys:
            keys[matched_case.id] = work.app.keys.case_key(matched_case)
        evidence = open_match_evidence(keys[matched_case.id], match.id, match.evidence_sealed)
        first, last, total = seen.get(media.id, (None, None, 0))
        summaries.append(
            MatchSummary(
                match_id=match.id,
                case=matched_case.code,
                kind=match.kind,
                distance=match.distance,
                threshold=threshold_of(work.app.settings, match.kind),
                status=match.status,
                media_id=media.id,
                sha256=media.sha256,
                media_type=media.media_type,
                frames=tuple(frame["time"] for frame in evidence.get("frames", [])),
                frame_count=match.frame_count,
                created_at=match.created_at.isoformat(),
                first_seen=first,
                last_seen=last,
                sightings_total=total,
                sightings=tuple(sightings.get(media.id, [])),
            )
        )
    return summaries


def _seen(session: Session, media_ids: set[int]) -> dict[int, tuple[str, str, int]]:
    """Per media: when it was first and last seen anywhere, and at how many places."""
    rows = session.execute(
        select(
            Sighting.media_id,
            func.min(Sighting.seen_at),
            func.max(Sighting.last_seen_at),
            func.count(Sighting.id),
        )
        .where(Sighting.media_id.in_(media_ids))
        .group_by(Sighting.media_id)
    ).all()
    return {media_id: (first.isoformat(), last.isoformat(), n) for media_id, first, last, n in rows}


def _newest_sightings(session: Session, media_ids: set[int]) -> dict[int, list[SightingSummary]]:
    """Per media: its newest ``SIGHTINGS_PER_MATCH`` sightings, summarised."""
    ranked = (
        select(
            Sighting.id,
            func.row_number()
            .over(partition_by=Sighting.media_id, order_by=Sighting.id.desc())
            .label("rank"),
        )
        .where(Sighting.media_id.in_(media_ids))
        .subquery()
    )
    newest = session.execute(
        select(Sighting)
        .join(ranked, ranked.c.id == Sighting.id)
        .where(ranked.c.rank <= SIGHTINGS_PER_MATCH)
        .order_by(Sighting.id.desc())
    ).scalars()
    by_media: dict[int, list[SightingSummary]] = defaultdict(list)
    for summary in summarize(session, list(newest)):
        if summary.media_id is not None:
            by_media[summary.media_id].append(summary)
    return by_media
