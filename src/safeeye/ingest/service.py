"""Source operations shared by the CLI, the web app and the workers (no HTTP, no printing)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from safeeye.app import SafeEye
from safeeye.db.models import Sighting, Source
from safeeye.db.types import utcnow
from safeeye.errors import SafeEyeError
from safeeye.ingest.sources import KINDS
from safeeye.ingest.urls import normalize_url

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_INTERVAL_SECONDS = 10


def parse_interval(text: str) -> int:
    """Seconds in ``"30s"``, ``"10m"``, ``"2h"``, ``"1d"`` (a bare number is seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise SafeEyeError(f"not an interval: {text!r} (use e.g. 30s, 10m, 2h, 1d)", code="invalid")
    seconds = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if seconds < MIN_INTERVAL_SECONDS:
        raise SafeEyeError(
            f"an interval under {MIN_INTERVAL_SECONDS} s would hammer the site", code="invalid"
        )
    return seconds


@dataclass(frozen=True)
class SourceSummary:
    id: int
    kind: str
    locator: str
    description: str
    interval_seconds: int | None
    enabled: bool
    next_due_at: str | None
    last_visit_at: str | None
    last_status: str | None
    last_error: str | None
    sightings: int


def add_source(
    app: SafeEye,
    kind: str,
    locator: str,
    *,
    config: dict[str, Any] | None = None,
    interval_seconds: int | None = None,
) -> Source:
    """Register a source; it is due at once. URLs are checked and normalised."""
    if kind not in KINDS:
        raise SafeEyeError(f"unknown source kind {kind!r}", code="invalid")
    if kind in ("url", "crawl"):
        normal = normalize_url(locator)
        if normal is None:
            raise SafeEyeError(f"not a usable http(s) URL: {locator[:200]}", code="bad_url")
        locator = normal
    elif kind in ("folder", "telegram"):
        path = Path(locator).expanduser()
        if not path.exists():
            raise SafeEyeError(f"no such folder: {locator}", code="not_found")
        locator = str(path.resolve())
    with app.db.session() as session:
        source = Source(
            kind=kind,
            locator=locator,
            config=config or {},
            interval_seconds=interval_seconds,
            enabled=True,
            next_due_at=utcnow(),
        )
        session.add(source)
        session.flush()
        app.audit.append(
            session,
            app.actor,
            "source.added",
            "source",
            source.id,
            {"kind": kind, "interval": interval_seconds},
        )
        session.expunge(source)
        return source


def list_sources(app: SafeEye) -> list[SourceSummary]:
    with app.db.session() as session:
        counts = dict(
            session.execute(
                select(Sighting.source_id, func.count(Sighting.id)).group_by(Sighting.source_id)
            ).all()
        )
        return [
            SourceSummary(
                id=s.id,
                kind=s.kind,
                locator=s.locator,
                description=KINDS[s.kind]().describe(s),
                interval_seconds=s.interval_seconds,
                enabled=s.enabled,
                next_due_at=s.next_due_at.isoformat() if s.next_due_at else None,
                last_visit_at=s.last_visit_at.isoformat() if s.last_visit_at else None,
                last_status=s.last_status,
                last_error=s.last_error,
                sightings=counts.get(s.id, 0),
            )
            for s in session.execute(select(Source).order_by(Source.id)).scalars()
        ]


def make_due(app: SafeEye, source_id: int, delay: timedelta = timedelta(0)) -> None:
    """Make a source due now (or after ``delay``)."""
    with app.db.session() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise SafeEyeError(f"no source {source_id}", code="not_found")
        source.next_due_at = utcnow() + delay
