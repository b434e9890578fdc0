"""The monitor: visits every due source, fetches what it shows, hands new media to the scanner.

All state lives in the database (sources and when they are due, visits, per-URL fetch state,
sightings), so a monitor that is killed mid-cycle loses nothing and repeats nothing. One monitor
at a time visits a source: a visit holds a lease on it (``ingest.lease``) that it renews while
it works, and writes its results only while it still holds it; another monitor takes the source
over only after the lease expired, marking the old visit "interrupted". A visit that runs out of
time (``visit_budget_seconds``) stops between two batches as "incomplete": the source is due
again at once and the next visit skips what was handled since, so a source with more work than
one budget gets through it over several visits while the others get their turns in between.
Whatever one URL or file does (a fetch error, a crafted file that breaks analysis) is that
item's error, never the visit's; sightings are unique per location and content, and
conditional fetches skip what has not changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from safeeye.app import SafeEye
from safeeye.db.models import Sighting, Source, UrlState, Visit
from safeeye.db.types import UTCDateTime, utcnow
from safeeye.errors import FetchError, SafeEyeError, error_text, unexpected
from safeeye.ingest.fetcher import Fetcher, FetchResult
from safeeye.ingest.lease import (
    HEARTBEAT_SECONDS,
    LEASE,
    Lease,
    LeaseLost,
    lease_is_free,
    take_lease,
)
from safeeye.ingest.policy import fetch_policy
from safeeye.ingest.sources import Candidate, VisitContext, kind_named, obeys_robots
from safeeye.pipeline.record import SightingFacts, location_key
from safeeye.pipeline.scan import Scanner, ScanResult
from safeeye.work import Actor

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 20
INTERRUPTED = "the monitor stopped during this visit; the source is visited again"
#: Database failures that say the database is away, not that one item is bad: they end the
#: visit (and ``run_forever`` waits for the database) instead of failing every item in turn.
_DATABASE_AWAY = (OperationalError, InterfaceError)


@dataclass(frozen=True)
class NewMatch:
    """A match a visit created: which case, how close, and where the file was seen."""

    match_id: int
    case: str
    kind: str
    distance: float
    location: str
    page_url: str | None


@dataclass
class VisitReport:
    """What one visit of one source did (``discover --json`` prints a list of these).

    ``status``: "done", "incomplete" (out of time; the next visit resumes), "failed" (the
    source itself could not be read), or "lost" (another monitor took the source over after
    this one's lease expired; nothing of this visit was recorded). ``new_matches`` lists the
    matches this visit created (``matches`` counts them).
    """

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
    skipped: int = 0  # handled by the incomplete visits this one resumes
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    new_matches: list[NewMatch] = field(default_factory=list)

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
    """Visits due sources; several may run against one database (each source has one visitor
    at a time). Workers for scanning are its scanner's pool."""

    def __init__(
        self,
        app: SafeEye,
        *,
        scanner: Scanner | None = None,
        fetcher: Fetcher | None = None,
        batch_size: int = 16,
        fetch_threads: int = 4,
        lease: timedelta = LEASE,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        budget_seconds: float | None = None,
        actor: Actor | None = None,
    ) -> None:
        self.app = app
        self.actor = actor or Actor.system("monitor")
        self.scanner = scanner or Scanner(app, actor=self.actor)
        settings = app.settings
        self.fetcher = fetcher or Fetcher(fetch_policy(settings))
        self.batch_size = batch_size
        self.lease = lease
        self.heartbeat_seconds = heartbeat_seconds
        self.budget_seconds = (
            budget_seconds if budget_seconds is not None else settings.visit_budget_seconds
        )
        self._fetch_pool = ThreadPoolExecutor(fetch_threads, thread_name_prefix="fetch")

    def close(self) -> None:
        self._fetch_pool.shutdown(wait=True)
        self.scanner.close()
        self.fetcher.close()

    # -- scheduling ------------------------------------------------------------------------

    def recover(self) -> int:
        """Mark running visits whose lease expired (their monitor died) as interrupted; their
        sources are due now and resume where they stopped. Live visits are left alone."""
        now = utcnow()
        taken = 0
        with self.app.db.session() as session:
            running = session.execute(
                select(
                    Visit.id,
                    Visit.source_id,
                    Visit.owner,
                    Visit.started_at,
                    Source.lease_owner,
                    Source.lease_until,
                )
                .join(Source, Source.id == Visit.source_id)
                .where(Visit.status == "running")
                .order_by(Visit.id)
            ).all()
            for visit_id, source_id, owner, started_at, lease_owner, lease_until in running:
                if owner is not None and lease_owner == owner:
                    if lease_until is not None and lease_until > now:
                        continue  # its monitor is alive and renewing
                    freed = session.execute(
                        update(Source)
                        .where(
                            Source.id == source_id,
                            Source.lease_owner == owner,
                            Source.lease_until <= now,
                        )
                        .values(lease_owner=None, lease_until=None)
                        .execution_options(synchronize_session=False)
                    )
                    if freed.rowcount != 1:
                        continue  # renewed just now
                taken += _interrupt(session, visit_id, source_id, started_at, now)
        return taken

    def due_sources(self) -> list[int]:
        """Sources due now that no monitor is visiting, the longest-waiting first."""
        now = utcnow()
        with self.app.db.session(read_only=True) as session:
            return list(
                session.execute(
                    select(Source.id)
                    .where(
                        Source.enabled.is_(True),
                        Source.next_due_at <= now,
                        lease_is_free(now),
                    )
                    .order_by(Source.next_due_at, Source.id)
                ).scalars()
            )

    def next_due_in(self) -> float | None:
        """Seconds until the next source is due and free (0 when one is now), None if none is."""
        with self.app.db.session(read_only=True) as session:
            rows = session.execute(
                select(Source.next_due_at, Source.lease_until).where(
                    Source.enabled.is_(True), Source.next_due_at.is_not(None)
                )
            ).all()
        if not rows:
            return None
        due = min(max(d, held) if held is not None else d for d, held in rows)
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

    def _claim(self, source_id: int) -> tuple[Source, Visit, Lease] | None:
        """Take the source's lease (None when it is not due or another monitor holds it) and
        open a visit; a visit left running under an expired lease is interrupted."""
        with self.app.db.session() as session:
            lease = take_lease(session, source_id, self.lease)
            if lease is None:
                return None
            now = utcnow()
            stale = session.execute(
                select(Visit.id, Visit.started_at).where(
                    Visit.source_id == source_id, Visit.status == "running"
                )
            ).all()
            for visit_id, started_at in stale:
                _interrupt(session, visit_id, source_id, started_at, now, holder=lease.token)
            visit = Visit(source_id=source_id, started_at=now, status="running", owner=lease.token)
            session.add(visit)
            session.flush()
            source = session.get(Source, source_id)
            assert source is not None
            session.refresh(source)
            session.expunge(source)
            return source, visit, lease

    def visit(self, source_id: int) -> VisitReport | None:
        """Visit one due source now: discover, fetch, scan, record. None if it is not due or
        another monitor is visiting it."""
        claimed = self._claim(source_id)
        if claimed is None:
            return None
        source, visit, lease = claimed
        report = VisitReport(source.id, source.kind, source.locator, visit.id)
        started = time.monotonic()
        ctx = VisitContext(app=self.app, fetcher=self.fetcher, source_id=source.id)
        lease.heartbeat(self.app, self.heartbeat_seconds)
        try:
            report.status = self._discover(ctx, source, report, lease, started)
        except LeaseLost as exc:
            report.status, report.errors = "lost", [*report.errors, exc.as_text()]
        except SafeEyeError as exc:
            report.status, report.errors = "failed", [*report.errors, exc.as_text()]
        except _DATABASE_AWAY:
            raise
        except Exception as exc:  # a bug must not stop the monitor or leave the visit running
            report.status = "failed"
            report.errors = [*report.errors, error_text(exc, f"visit {visit.id}")]
        finally:
            lease.stop()
        report.pages = ctx.pages
        report.failures += len(ctx.page_failures)
        report.errors.extend(ctx.page_failures[: MAX_REPORTED_ERRORS - len(report.errors)])
        report.seconds = round(time.monotonic() - started, 3)
        if report.status != "lost":
            try:
                self._finish(source, visit, report, lease)
            except LeaseLost as exc:
                report.status, report.errors = "lost", [*report.errors, exc.as_text()]
        return report

    def _discover(
        self, ctx: VisitContext, source: Source, report: VisitReport, lease: Lease, started: float
    ) -> str:
        """Process what the source shows, batch by batch, until it is all done ("done") or the
        budget is spent ("incomplete": each visit handles at least one batch, so a source
        always makes progress). Raises ``LeaseLost`` when another monitor took the source."""
        kind = kind_named(source.kind)
        seen: set[str] = set()
        handled = 0
        with closing(kind.discover(ctx, source)) as candidates:
            for batch in _batches(candidates, self.batch_size):
                if lease.lost.is_set():
                    raise LeaseLost("another monitor took this source over; this visit stopped")
                if handled and time.monotonic() - started >= self.budget_seconds:
                    return "incomplete"
                fresh = [c for c in batch if c.location not in seen]
                seen.update(c.location for c in fresh)
                handled += self._process(fresh, source, report, lease)
        return "done"

    def _finish(self, source: Source, visit: Visit, report: VisitReport, lease: Lease) -> None:
        """Record the visit and give the source back, only while this visit holds its lease."""
        now = utcnow()
        error = "; ".join(report.errors[:3])[:2000] if report.errors else None
        if report.status == "incomplete":
            next_due, resume = now, source.resume_since or visit.started_at
        else:
            interval = source.interval_seconds
            next_due, resume = (now + timedelta(seconds=interval) if interval else None), None
        with self.app.work(self.actor) as work:
            session = work.session
            lease.release(
                session,
                last_visit_at=now,
                last_status=report.status,
                last_error=error,
                next_due_at=next_due,
                resume_since=resume,
            )
            session.execute(
                update(Visit)
                .where(Visit.id == visit.id, Visit.owner == lease.token)
                .values(
                    status=report.status,
                    finished_at=now,
                    pages=report.pages,
                    media_found=report.media_found,
                    media_new=report.media_new,
                    unchanged=report.unchanged,
                    failures=report.failures,
                    matches=report.matches,
                    error=error,
                )
                .execution_options(synchronize_session=False)
            )
            work.audit(
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

    def _process(
        self, batch: list[Candidate], source: Source, report: VisitReport, lease: Lease
    ) -> int:
        """Fetch, scan and record one batch; returns how many items it handled (those the
        incomplete visits this one resumes handled already are skipped)."""
        if not batch:
            return 0
        states = self._states(source.id, batch)
        items = []
        for candidate in batch:
            state = states.get(location_key(candidate.location))
            if _handled_since(state, source.resume_since):
                report.skipped += 1
            else:
                items.append(_Item(candidate, state))
        if not items:
            return 0
        obey = obeys_robots(source)
        list(self._fetch_pool.map(lambda item: self._obtain(item, obey), items))
        try:
            with self.app.db.session() as session:
                lease.hold(session)  # a visit that lost its source records no sighting more
            results = self._scan(
                [i for i in items if i.path is not None and not i.unchanged], source
            )
        finally:
            for item in items:
                if item.fetched is not None:
                    item.fetched.unlink()
        for item in items:
            report.media_found += 1
            result = results.get(id(item))
            if item.error:
                report.failures += 1
                if len(report.errors) < MAX_REPORTED_ERRORS:
                    report.errors.append(f"{item.candidate.location[:300]}: {item.error}")
            elif item.unchanged:
                report.unchanged += 1
            elif result is not None:
                report.media_new += int(result.new_sighting)
                report.new_matches.extend(_new_matches(item.candidate, result))
                report.matches += sum(1 for m in result.matches if m.new)
                if result.error:
                    report.failures += 1
        self._save_states(source.id, items, results, lease)
        return len(items)

    def _scan(self, items: list[_Item], source: Source) -> dict[int, ScanResult]:
        """Scan and record the items' files; an item whose scan raises gets that as its error
        (the batch is scanned file by file then, so that the others still get results)."""
        todo: list[tuple[_Item, SightingFacts]] = []
        for item in items:
            try:
                todo.append((item, self._facts(item, source)))
            except Exception as exc:
                item.error = error_text(exc, "the facts of one item")
        if not todo:
            return {}
        try:
            paths = [i.path for i, _ in todo if i.path is not None]
            results = self.scanner.scan_paths(paths, [f for _, f in todo])
            return {id(i): r for (i, _), r in zip(todo, results, strict=True)}
        except _DATABASE_AWAY:
            raise
        except Exception as exc:
            unexpected(exc, "a batch scan (retried file by file)")
        results_by_item: dict[int, ScanResult] = {}
        for item, facts in todo:
            assert item.path is not None
            try:
                (results_by_item[id(item)],) = self.scanner.scan_paths([item.path], [facts])
            except _DATABASE_AWAY:
                raise
            except Exception as exc:
                item.error = error_text(exc, "the scan of one file")
        return results_by_item

    def _obtain(self, item: _Item, obey_robots: bool) -> None:
        """Get the candidate's bytes into ``item.path`` (or mark it unchanged or failed);
        never raises: whatever goes wrong is the item's error."""
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
        except Exception as exc:  # one URL's failure, whatever it is, is that URL's
            item.error = error_text(exc, "obtaining one item")

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
        with self.app.db.session(read_only=True) as session:
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
        self, source_id: int, items: list[_Item], results: dict[int, ScanResult], lease: Lease
    ) -> None:
        """Record what each item's fetch and scan found (only while the lease is held)."""
        now = utcnow()
        with self.app.db.session() as session:
            lease.hold(session)
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
                    last_modified = item.fetched.last_modified
                    state.etag = item.fetched.etag
                    state.last_modified = last_modified[:64] if last_modified else None
                if result is not None:
                    state.sha256 = result.sha256
                    if result.error:
                        state.status, state.error = "failed", result.error[:2000]
                elif item.fetched is not None and item.fetched.sha256:
                    state.sha256 = item.fetched.sha256


def _new_matches(candidate: Candidate, result: ScanResult) -> list[NewMatch]:
    where = candidate.location, candidate.page_url
    return [
        NewMatch(m.match_id, m.case, m.kind, m.distance, *where) for m in result.matches if m.new
    ]


def _batches(candidates: Iterator[Candidate], size: int) -> Iterator[list[Candidate]]:
    batch: list[Candidate] = []
    for candidate in candidates:
        batch.append(candidate)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _handled_since(state: UrlState | None, since: datetime | None) -> bool:
    """Whether the incomplete visits since ``since`` handled this item already."""
    checked = state.last_checked_at if state is not None else None
    return since is not None and checked is not None and checked >= since


def _interrupt(
    session: Session,
    visit_id: int,
    source_id: int,
    started_at: datetime,
    now: datetime,
    *,
    holder: str | None = None,
) -> int:
    """End a visit whose monitor is gone. Unless another visit holds the source now (``holder``
    is the caller's own lease, if any), the source is due now and resumes where it stopped."""
    ended = session.execute(
        update(Visit)
        .where(Visit.id == visit_id, Visit.status == "running")
        .values(status="interrupted", finished_at=now, error=INTERRUPTED)
        .execution_options(synchronize_session=False)
    )
    if ended.rowcount != 1:
        return 0
    held_by = Source.lease_owner.is_(None) if holder is None else Source.lease_owner == holder
    session.execute(
        update(Source)
        .where(Source.id == source_id, held_by)
        .values(
            next_due_at=case(
                (Source.next_due_at.is_(None) | (Source.next_due_at > now), now),
                else_=Source.next_due_at,
            ),
            resume_since=func.coalesce(Source.resume_since, literal(started_at, UTCDateTime())),
        )
        .execution_options(synchronize_session=False)
    )
    return 1
