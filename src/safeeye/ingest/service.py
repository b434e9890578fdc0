"""Source operations shared by the CLI, the web app and the workers (no HTTP, no printing)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safeeye.db.models import Sighting, Source
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, NotFoundError, ValidationError
from safeeye.ingest.sources import detect_kind, kind_named
from safeeye.work import Role, Work

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_SECONDS = 10
#: A year: longer intervals are typing mistakes (and would not fit the column).
MAX_INTERVAL_SECONDS = 366 * 86400


def parse_interval(text: str) -> int:
    """Seconds in ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"`` (a bare number is seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise ValidationError(f"not an interval: {text!r} (use e.g. 30s, 10m, 2h, 1d)")
    seconds = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if seconds < MIN_INTERVAL_SECONDS:
        raise ValidationError(f"an interval under {MIN_INTERVAL_SECONDS} s would hammer the site")
    if seconds > MAX_INTERVAL_SECONDS:
        raise ValidationError("an interval is at most a year (366d)")
    return seconds


#: A page of sources holds 1 to this many.
MAX_PAGE = 500


@dataclass(frozen=True)
class SourceSummary:
    id: int
    kind: str
    locator: str
    description: str
    config: dict[str, Any]
    interval_seconds: int | None
    enabled: bool
    next_due_at: str | None
    last_visit_at: str | None
    last_status: str | None
    last_error: str | None
    sightings: int

    @property
    def paused(self) -> bool:
        """A paused source is never due: no monitor or scheduler visits it until resumed."""
        return not self.enabled


@dataclass(frozen=True)
class SourcePage:
    items: list[SourceSummary]
    total: int
    limit: int
    offset: int


def add_source(
    work: Work,
    kind: str,
    locator: str,
    *,
    config: Mapping[str, Any] | None = None,
    interval_seconds: int | None = None,
    due: bool = True,
) -> SourceSummary:
    """Register a source of ``kind``; it is due at once (``due=False``: only when the caller
    visits it, e.g. files handed in that only this machine can read). The locator is checked
    and normalised (a URL, an existing folder) and ``config`` is validated by the kind, its
    defaults filled in: a bad or unknown setting is a ``ValidationError`` naming it."""
    work.require(Role.COUNSELOR, action="add sources")
    if interval_seconds is not None and interval_seconds < 1:
        raise ValidationError("a source is visited again after 1 s or more, or only once")
    source_kind = kind_named(kind)
    locator = source_kind.locator(locator)
    settings = source_kind.validate(config)
    source = Source(
        kind=kind,
        locator=locator,
        config=settings.model_dump(mode="json"),
        interval_seconds=interval_seconds,
        enabled=True,
        next_due_at=utcnow() if due else None,
    )
    work.session.add(source)
    work.session.flush()
    work.audit("source.added", "source", source.id, {"kind": kind, "interval": interval_seconds})
    return _summaries(work.session, [source])[0]


def add_watch(
    work: Work,
    target: str,
    *,
    crawl: bool = False,
    config: Mapping[str, Any] | None = None,
    interval_seconds: int | None = None,
) -> SourceSummary:
    """Watch what a person typed: a URL, a site (``crawl``), a folder or a Telegram export
    (``sources.detect_kind``). ``config`` holds only the settings they gave; one the detected
    kind does not take is a ``ValidationError`` naming it."""
    return add_source(
        work,
        detect_kind(target, crawl=crawl),
        target,
        config=config,
        interval_seconds=interval_seconds,
    )


def list_sources(work: Work) -> list[SourceSummary]:
    """Every source, oldest first, with how many sightings it produced."""
    work.require(Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR, action="list sources")
    sources = list(work.session.execute(select(Source).order_by(Source.id)).scalars())
    return _summaries(work.session, sources)


def list_sources_page(work: Work, *, limit: int = 50, offset: int = 0) -> SourcePage:
    """One page of sources, newest first, with the count of all."""
    work.require(Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR, action="list sources")
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ValidationError(f"a page holds 1 to {MAX_PAGE} sources from an offset of 0 or more")
    session = work.session
    sources = list(
        session.execute(
            select(Source).order_by(Source.id.desc()).limit(limit).offset(offset)
        ).scalars()
    )
    total = session.execute(select(func.count(Source.id))).scalar_one()
    return SourcePage(_summaries(session, sources), total, limit, offset)


def pause_source(work: Work, source_id: int) -> SourceSummary:
    """Stop visiting a source until it is resumed. It is taken off the schedule as well as
    disabled, so neither a monitor nor a visit already queued for it will claim it (a visit
    running now finishes, and the source stays paused)."""
    work.require(Role.COUNSELOR, action="pause sources")
    source = _source(work, source_id)
    if source.enabled or source.next_due_at is not None:
        source.enabled, source.next_due_at = False, None
        work.audit("source.paused", "source", source.id, {"kind": source.kind})
    return _summaries(work.session, [source])[0]


def resume_source(work: Work, source_id: int) -> SourceSummary:
    """Visit a paused source again: it is due at once, then every interval as before (a
    source visited only once, and visited already, stays visited)."""
    work.require(Role.COUNSELOR, action="resume sources")
    source = _source(work, source_id)
    if not source.enabled:
        once_done = source.interval_seconds is None and source.last_visit_at is not None
        source.enabled, source.next_due_at = True, None if once_done else utcnow()
        work.audit("source.resumed", "source", source.id, {"kind": source.kind})
    return _summaries(work.session, [source])[0]


def _source(work: Work, source_id: int) -> Source:
    source = work.session.get(Source, source_id)
    if source is None:
        raise NotFoundError(f"no source {source_id}")
    return source


def _summaries(session: Session, sources: list[Source]) -> list[SourceSummary]:
    counts = dict(
        session.execute(
            select(Sighting.source_id, func.count(Sighting.id))
            .where(Sighting.source_id.in_([s.id for s in sources]))
            .group_by(Sighting.source_id)
        ).all()
    )
    return [
        SourceSummary(
            id=s.id,
            kind=s.kind,
            locator=s.locator,
            description=_describe(s),
            config=dict(s.config or {}),
            interval_seconds=s.interval_seconds,
            enabled=s.enabled,
            next_due_at=s.next_due_at.isoformat() if s.next_due_at else None,
            last_visit_at=s.last_visit_at.isoformat() if s.last_visit_at else None,
            last_status=s.last_status,
            last_error=s.last_error,
            sightings=counts.get(s.id, 0),
        )
        for s in sources
    ]


def _describe(source: Source) -> str:
    try:
        return kind_named(source.kind).describe(source)
    except ValidationError as exc:  # a stored config this version cannot read: say so
        return f"{source.locator} ({exc.as_text()})"


def make_due(work: Work, source_id: int, delay: timedelta = timedelta(0)) -> None:
    """Make a source due now (or after ``delay``)."""
    work.require(Role.COUNSELOR, Role.SYSTEM, action="schedule sources")
    source = _source(work, source_id)
    if not source.enabled:
        raise ConflictError(f"source {source_id} is paused: resume it first", code="paused")
    source.next_due_at = utcnow() + delay
