"""The monitor: visits every due source, fetches what it shows, hands new media to the scanner.

All state lives in the database (sources and when they are due, visits, per-URL fetch state,
sightings), so a monitor that is killed mid-cycle loses nothing and repeats nothing: a visit it
left "running" is marked "interrupted" at the next start and the source is visited again;
sightings are unique per location and content, and conditional fetches skip what has not
changed.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from safeeye.app import SafeEye
from safeeye.db.models import Sighting, Source, UrlState, Visit
from safeeye.db.types import utcnow
from safeeye.errors import FetchError, SafeEyeError
from safeeye.ingest.fetcher import Fetcher, FetchResult
from safeeye.ingest.policy import fetch_policy
from safeeye.ingest.sources import KINDS, Candidate, VisitContext
from safeeye.pipeline.record import SightingFacts, location_key
from safeeye.pipeline.scan import Scanner, ScanResult

log = logging.getLogger(__name__)

#: How long a visit may hold a source before another monitor may take it over.
LEASE = timedelta(minutes=15)
MAX_REPORTED_ERRORS = 20


@dataclass
class VisitReport:
    """What one visit of one source did (``discover --json`` prints a list of these)."""

    source_id: int
    kind: str
    locator: str
    visit_id: int
    status: str = "running"
    pages: int = 0
    media_found: int = 0
    media_new: int = 0
    unchanged: int = 0
    failures: int = 0
    matches: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Item:
    candidate: Candidate
    state: UrlState | None
    path: Path | None = None
    fetched: FetchResult | None = None
    unchanged: bool = False
    error: str | None = None


class Monitor:
    """Visits due sources; one per process (workers for scanning are its scanner's pool)."""

    def __init__(
        self,
        app: SafeEye,
        *,
        scanner: Scanner | None = None,
        fetcher: Fetcher | None = None,
        batch_size: int = 16,
        fetch_threads: int = 4,
    ) -> None:
        self.app = app
        self.scanner = scanner or Scanner(app)
        settings = app.settings
        self.fetcher = fetcher or Fetcher(fetch_policy(settings))
        self.batch_size = batch_size
        self._fetch_pool = ThreadPoolExecutor(fetch_threads, thread_name_prefix="fetch")

    def close(self) -> None:
        self._fetch_pool.shutdown(wait=True)
        self.scanner.close()
        self.fetcher.close()

    # -- scheduling ------------------------------------------------------------------------

    def recover(self) -> int:
        """Mark visits a killed monitor left running as interrupted; their sources are due now."""
        now = utcnow()
        with self.app.db.session() as session:
            stale = list(session.execute(select(Visit).where(Visit.status == "running")).scalars())
            for visit in stale:
                visit.status, visit.finished_at = "interrupted", now
                visit.error = "the monitor stopped during this visit; the source is visited again"
                session.execute(
                    update(Source).where(Source.id == visit.source_id).values(next_due_at=now)
                )
        return len(stale)

    def due_sources(self) -> list[int]:
        now = utcnow()
        with self.app.db.session() as session:
            return list(
                session.execute(
                    select(Source.id)
                    .where(Source.enabled.is_(True), Source.next_due_at <= now)
                    .order_by(Source.next_due_at, Source.id)
                ).scalars()
            )

    def next_due_in(self) -> float | None:
        """Seconds until the next source is due (0 when one is due now), None when none is."""
        with self.app.db.session() as session:
            due = session.execute(
                select(Source.next_due_at)
                .where(Source.enabled.is_(True), Source.next_due_at.is_not(None))
                .order_by(Source.next_due_at)
                .limit(1)
            ).scalar_one_or_none()
        if due is None:
            return None
        return max(0.0, (due - utcnow()).total_seconds())

    def run_once(self) -> list[VisitReport]:
        """Visit every source that is due now, one after the other."""
        self.recover()
        reports = []
        for source_id in self.due_sources():
            report = self.visit(source_id)
            if report is not None:
                reports.append(report)
        return reports

    def run_forever(
        self,
        stop: threading.Event,
        *,
        max_sleep: float = 5.0,
        on_visit: Callable[[VisitReport], None] | None = None,
    ) -> None:
        """Visit due sources until ``stop`` is set; sleeps until the next one is due."""
        self.recover()
        failures = 0
        while not stop.is_set():
            try:
                for source_id in self.due_sources():
                    if stop.is_set():
                        return
                    report = self.visit(source_id)
                    if report is not None and on_visit is not None:
                        on_visit(report)
                wait = self.next_due_in()
                failures = 0
            except SQLAlchemyError as exc:  # the database is away: wait and try again
                failures += 1
                wait = min(60.0, 2.0**failures)
                log.warning(
                    "monitor cannot reach the database (%s); retrying in %.0f s",
                    type(exc).__name__,
                    wait,
                )
                stop.wait(wait)
                continue
            stop.wait(max_sleep if wait is None else min(max(wait, 0.2), max_sleep))

    # -- one visit -------------------------------------------------------------------------

    def _claim(self, source_id: int) -> tuple[Source, Visit] | None:
        """Take the source for this visit (another monitor may have it) and open a visit."""
        now = utcnow()
        with self.app.db.session() as session:
            source = session.get(Source, source_id)
            if source is None or source.next_due_at is None or source.next_due_at > now:
                return None
            taken = session.execute(
                update(Source)
                .where(Source.id == source_id, Source.next_due_at == source.next_due_at)
                .values(next_due_at=now + LEASE)
            )
            if taken.rowcount != 1:
                return None
            visit = Visit(source_id=source_id, started_at=now, status="running")
            session.add(visit)
            session.flush()
            session.refresh(source)
            session.expunge(source)
            return source, visit

    def visit(self, source_id: int) -> VisitReport | None:
        """Visit one due source now: discover, fetch, scan, record. None if not due."""
        claimed = self._claim(source_id)
        if claimed is None:
            return None
        source, visit = claimed
        report = VisitReport(source.id, source.kind, source.locator, visit.id)
        started = time.monotonic()
        ctx = VisitContext(app=self.app, fetcher=self.fetcher, source_id=source.id)
        kind = KINDS[source.kind]()
        try:
            seen: set[str] = set()
            for batch in _batches(kind.discover(ctx, source), self.batch_size):
                fresh = [c for c in batch if c.location not in seen]
                seen.update(c.location for c in fresh)
                self._process(fresh, source, report)
            report.status = "done"
        except SafeEyeError as exc:
            report.status, report.errors = "failed", [*report.errors, exc.as_text()]
        except Exception as exc:  # a bug must not stop the monitor or leave the visit running
            report.status = "failed"
            report.errors = [*report.errors, f"internal: {type(exc).__name__}"]
            # The message may name a URL or a file: only the type and the code path are logged.
            log.error(
                "visit %s of source %s failed: %s\n%s",
                visit.id,
                source.id,
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
        report.pages = ctx.pages
        report.failures += len(ctx.page_failures)
        report.errors.extend(ctx.page_failures[: MAX_REPORTED_ERRORS - len(report.errors)])
        report.seconds = round(time.monotonic() - started, 3)
        self._finish(source, visit, report)
        return report

    def _finish(self, source: Source, visit: Visit, report: VisitReport) -> None:
        now = utcnow()
        with self.app.db.session() as session:
            row = session.get(Visit, visit.id)
            assert row is not None
            row.status, row.finished_at = report.status, now
            row.pages, row.media_found, row.media_new = (
                report.pages,
                report.media_found,
                report.media_new,
            )
            row.unchanged, row.failures, row.matches = (
                report.unchanged,
                report.failures,
                report.matches,
            )
            row.error = "; ".join(report.errors[:3])[:2000] if report.errors else None
            interval = source.interval_seconds
            session.execute(
                update(Source)
                .where(Source.id == source.id)
                .values(
                    last_visit_at=now,
                    last_status=report.status,
                    last_error=row.error,
                    next_due_at=now + timedelta(seconds=interval) if interval else None,
                )
            )
            self.app.audit.append(
                session,
                self.app.actor,
                "source.visited",
                "source",
                source.id,
                {
                    "visit": visit.id,
                    "status": report.status,
                    "media_new": report.media_new,
                    "matches": report.matches,
                    "failures": report.failures,
                },
            )

    # -- fetching and scanning a batch -----------------------------------------------------

    def _process(self, batch: list[Candidate], source: Source, report: VisitReport) -> None:
        if not batch:
            return
        states = self._states(source.id, batch)
        items = [_Item(c, states.get(location_key(c.location))) for c in batch]
        obey = bool(source.config.get("obey_robots", True))
        list(self._fetch_pool.map(lambda item: self._obtain(item, obey), items))
        to_scan = [i for i in items if i.path is not None and not i.unchanged]
        try:
            results = self.scanner.scan_paths(
                [i.path for i in to_scan if i.path is not None],
                [self._facts(i, source) for i in to_scan],
            )
        finally:
            for item in items:
                if item.fetched is not None:
                    item.fetched.unlink()
        by_item = dict(zip(map(id, to_scan), results, strict=True))
        for item in items:
            report.media_found += 1
            result = by_item.get(id(item))
            if item.error:
                report.failures += 1
                if len(report.errors) < MAX_REPORTED_ERRORS:
                    report.errors.append(f"{item.candidate.location[:300]}: {item.error}")
            elif item.unchanged:
                report.unchanged += 1
            elif result is not None:
                report.media_new += int(result.new_sighting)
                report.matches += sum(1 for m in result.matches if m.new)
                if result.error:
                    report.failures += 1
        self._save_states(source.id, items, by_item)

    def _obtain(self, item: _Item, obey_robots: bool) -> None:
        """Get the candidate's bytes into ``item.path`` (or mark it unchanged or failed)."""
        candidate, state = item.candidate, item.state
        try:
            if candidate.path is not None:
                if state and state.status == "ok" and state.fingerprint == candidate.fingerprint:
                    item.unchanged = True
                    self._touch(state)
                else:
                    item.path = candidate.path
                return
            fetched = candidate.prefetched or self.fetcher.fetch(
                candidate.url or candidate.location,
                etag=state.etag if state and state.status == "ok" else None,
                last_modified=state.last_modified if state and state.status == "ok" else None,
                obey_robots=obey_robots,
                want="media",
            )
            item.fetched = fetched
            if fetched.not_modified:
                item.unchanged = True
                if state is not None:
                    self._touch(state)
            else:
                item.path = fetched.path
        except FetchError as exc:
            item.error = exc.as_text()
        except OSError as exc:
            item.error = f"io: {exc.strerror or exc.__class__.__name__}"

    def _touch(self, state: UrlState) -> None:
        """Unchanged content was seen again: its sighting's last-seen time moves."""
        if not state.sha256:
            return
        with self.app.db.session() as session:
            sighting = session.execute(
                select(Sighting).where(
                    Sighting.location_key == state.location_key, Sighting.sha256 == state.sha256
                )
            ).scalar_one_or_none()
            if sighting is not None:
                sighting.last_seen_at = utcnow()
                sighting.times_seen += 1

    def _facts(self, item: _Item, source: Source) -> SightingFacts:
        candidate, fetched = item.candidate, item.fetched
        evidence = {"how": candidate.how, "source_kind": source.kind, **candidate.evidence}
        if candidate.page_id is not None:
            evidence["page_id"] = candidate.page_id
        if fetched is None:
            return SightingFacts(
                location=candidate.location,
                page_url=candidate.page_url,
                evidence=evidence,
                source_id=source.id,
            )
        evidence.update(
            fetched_at=fetched.fetched_at.isoformat(),
            redirects=fetched.redirects,
            declared_type=fetched.content_type,
            bytes=fetched.size,
        )
        return SightingFacts(
            location=candidate.location,
            page_url=candidate.page_url,
            final_url=fetched.final_url,
            http_status=fetched.status,
            http_headers=fetched.headers,
            server_ip=fetched.server_ip,
            evidence=evidence,
            source_id=source.id,
        )

    def _states(self, source_id: int, batch: list[Candidate]) -> dict[str, UrlState]:
        keys = [location_key(c.location) for c in batch]
        with self.app.db.session() as session:
            rows = session.execute(
                select(UrlState).where(
                    UrlState.source_id == source_id, UrlState.location_key.in_(keys)
                )
            ).scalars()
            states = {row.location_key: row for row in rows}
            for row in states.values():
                session.expunge(row)
            return states

    def _save_states(
        self, source_id: int, items: list[_Item], results: dict[int, ScanResult]
    ) -> None:
        now = utcnow()
        with self.app.db.session() as session:
            for item in items:
                key = location_key(item.candidate.location)
                state = session.execute(
                    select(UrlState).where(
                        UrlState.source_id == source_id, UrlState.location_key == key
                    )
                ).scalar_one_or_none()
                if state is None:
                    state = UrlState(
                        source_id=source_id,
                        location=item.candidate.location,
                        location_key=key,
                        kind="media",
                        failures=0,
                    )
                    session.add(state)
                state.last_checked_at = now
                result = results.get(id(item))
                if item.error:
                    state.status, state.error = "failed", item.error[:2000]
                    state.failures = (state.failures or 0) + 1
                    continue
                if item.unchanged:
                    continue
                state.status, state.error, state.failures = "ok", None, 0
                state.fingerprint = item.candidate.fingerprint
                if item.fetched is not None:
                    state.etag, state.last_modified = (
                        item.fetched.etag,
                        item.fetched.last_modified,
                    )
                if result is not None:
                    state.sha256 = result.sha256
                    if result.error:
                        state.status, state.error = "failed", result.error[:2000]
                elif item.fetched is not None and item.fetched.sha256:
                    state.sha256 = item.fetched.sha256


def _batches(candidates: Iterator[Candidate], size: int) -> Iterator[list[Candidate]]:
    batch: list[Candidate] = []
    for candidate in candidates:
        batch.append(candidate)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
