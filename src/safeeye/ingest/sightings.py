"""Sightings as a person reads them: where a file was seen, when, and which cases it matches."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from safeeye.db.models import Case, Match, Media, Sighting
from safeeye.errors import ValidationError
from safeeye.work import Role, Work

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


@dataclass(frozen=True)
class SightingSummary:
    """One file seen at one place: the URL (``location``), the page that showed it or, for a
    Telegram export, the chat and message; first and last seen; the cases its media matches."""

    sighting_id: int
    source_id: int | None
    location: str
    page_url: str | None
    chat: str | None
    message_id: int | None
    first_seen: str
    last_seen: str
    times_seen: int
    http_status: int | None
    sha256: str
    media_id: int | None
    media_type: str | None
    cases: tuple[str, ...]
    error: str | None


def list_sightings(
    work: Work, *, limit: int = DEFAULT_LIMIT, before: int | None = None
) -> list[SightingSummary]:
    """Sightings, newest first, at most ``limit``; the next page is ``before`` the last
    ``sighting_id`` of this one."""
    work.require(Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR, action="list sightings")
    query = newest_first(select(Sighting), Sighting.id, limit, before)
    return summarize(work.session, list(work.session.execute(query).scalars()))


def newest_first(query: Select[Any], id_column: Any, limit: int, before: int | None) -> Select[Any]:
    """``query`` as one page of rows, highest ``id_column`` first (``ValidationError`` for a
    limit out of 1..``MAX_LIMIT`` or a cursor below 1)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"a page holds 1 to {MAX_LIMIT} rows")
    if before is not None:
        if before < 1:
            raise ValidationError("a page starts before an id of 1 or more")
        query = query.where(id_column < before)
    return query.order_by(id_column.desc()).limit(limit)


def summarize(session: Session, sightings: Sequence[Sighting]) -> list[SightingSummary]:
    """The summaries of ``sightings``, in their order (one query for their media and cases)."""
    media_ids = {s.media_id for s in sightings if s.media_id is not None}
    types = dict(
        session.execute(select(Media.id, Media.media_type).where(Media.id.in_(media_ids))).all()
    )
    cases: dict[int, list[str]] = defaultdict(list)
    for media_id, code in session.execute(
        select(Match.media_id, Case.code)
        .join(Case, Case.id == Match.case_id)
        .where(Match.media_id.in_(media_ids), Case.status != "purged")
        .distinct()
        .order_by(Case.code)
    ):
        cases[media_id].append(code)
    return [_summary(s, types.get(s.media_id), cases.get(s.media_id, [])) for s in sightings]


def _summary(sighting: Sighting, media_type: str | None, cases: list[str]) -> SightingSummary:
    evidence = sighting.evidence or {}
    telegram = evidence.get("source") == "telegram_export"
    return SightingSummary(
        sighting_id=sighting.id,
        source_id=sighting.source_id,
        location=sighting.location,
        page_url=sighting.page_url,
        chat=_chat(evidence) if telegram else None,
        message_id=evidence.get("message_id") if telegram else None,
        first_seen=sighting.seen_at.isoformat(),
        last_seen=sighting.last_seen_at.isoformat(),
        times_seen=sighting.times_seen,
        http_status=sighting.http_status,
        sha256=sighting.sha256,
        media_id=sighting.media_id,
        media_type=media_type,
        cases=tuple(cases),
        error=sighting.error,
    )


def _chat(evidence: dict[str, Any]) -> str | None:
    """A Telegram chat's name, else its id (an export may name neither)."""
    chat_id = evidence.get("chat_id")
    return evidence.get("chat") or (str(chat_id) if chat_id is not None else None)
