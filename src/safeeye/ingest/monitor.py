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

The work of a visit goes through the pipeline's tasks: each media URL becomes a URL state row
queued for ``fetch_media``, each stored file a media row queued for ``scan_media``; a crawl's
frontier is rows too, one ``fetch_page`` task per page (``tasks/crawling.py``), and a visit
starts a crawl or carries on the one an incomplete visit left. With the in-process runner (the
CLI) the visit runs these tasks before it ends (within its budget, for a crawl's pages) and
reports what they found; in a Celery worker (``runner`` given) it queues them for every worker
and ends.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from safeeye.app import SafeEye
from safeeye.db.models import Source, UrlState, Visit
from safeeye.db.states import VisitStatus, allowed
from safeeye.db.types import UTCDateTime, utcnow
from safeeye.errors import ConflictError, SafeEyeError, error_text
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
from safeeye.ingest.sources.crawl import CrawlSource
from safeeye.ingest.spacing import SharedSpacing
from safeeye.pipeline.record import location_key, store_file
from safeeye.signals.hashes import hash_file
from safeeye.tasks import Results, Runner, TaskContext, task
from safeeye.tasks.crawling import PageOutcome, crawl_finished, leave_for_later, start_crawl
from safeeye.tasks.discovery import (
    FetchOutcome,
    candidate_json,
    fetched_facts,
    local_facts,
    queue_fetch,
    queue_scan,
    touch_sighting,
    url_state,
)
from safeeye.tasks.runner import InProcessRunner
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
    status: str = VisitStatus.RUNNING
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
        runner: Runner | None = None,
        fetcher: Fetcher | None = None,
        batch_size: int = 16,
        lease: timedelta = LEASE,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        budget_seconds: float | None = None,
        actor: Actor | None = None,
    ) -> None:
        """``runner``: where the visit's tasks go; by default an in-process runner that this
        monitor drains (and closes). ``fetcher`` serves the pages the source kinds read and,
        in-process, the media fetches."""
        self.app = app
        self.actor = actor or Actor.system("monitor")
        self._owns_runner = runner is None
        self.runner: Runner = runner or InProcessRunner(app, self.actor)
        settings = app.settings
        self._owns_fetcher = fetcher is None
        if fetcher is None and isinstance(self.runner, InProcessRunner):
            fetcher = self.runner.context.fetcher
        self.fetcher = fetcher or Fetcher(fetch_policy(settings), spacing=SharedSpacing(app.db))
        self.batch_size = batch_size
        self.lease = lease
        self.heartbeat_seconds = heartbeat_seconds
        self.budget_seconds = (
            budget_seconds if budget_seconds is not None else settings.visit_budget_seconds
        )

    @property
    def drains(self) -> bool:
        """Whether this monitor runs its visits' tasks itself (the in-process runner)."""
        return isinstance(self.runner, InProcessRunner)

    def warm_up(self) -> None:
        """Load the models now, when this monitor scans in this process."""
        if isinstance(self.runner, InProcessRunner):
            self.runner.context.warm_up()

    def close(self) -> None:
        if self._owns_runner and isinstance(self.runner, InProcessRunner):
            self.runner.close()  # closes the fetcher it lent too
        elif self._owns_fetcher:
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
                .where(Visit.status == VisitStatus.RUNNING)
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

    def _claim(self, source_id: int, now_anyway: bool) -> tuple[Source, Visit, Lease] | None:
        """Take the source's lease (None when it is not due, unless ``now_anyway``, or another
        monitor holds it) and open a visit; a visit left running under an expired lease is
        interrupted."""
        with self.app.db.session() as session:
            lease = take_lease(session, source_id, self.lease, due_only=not now_anyway)
            if lease is None:
                return None
            now = utcnow()
            stale = session.execute(
                select(Visit.id, Visit.started_at).where(
                    Visit.source_id == source_id, Visit.status == VisitStatus.RUNNING
                )
            ).all()
            for visit_id, started_at in stale:
                _interrupt(session, visit_id, source_id, started_at, now, holder=lease.token)
            visit = Visit(
                source_id=source_id, started_at=now, status=VisitStatus.RUNNING, owner=lease.token
            )
            session.add(visit)
            session.flush()
            source = session.get(Source, source_id)
            assert source is not None
            session.refresh(source)
            session.expunge(source)
            return source, visit, lease

    def visit(self, source_id: int, *, now_anyway: bool = False) -> VisitReport | None:
        """Visit one due source now (``now_anyway``: due or not): discover, fetch, scan,
        record. None if it is not due or another monitor is visiting it."""
        claimed = self._claim(source_id, now_anyway)
        if claimed is None:
            return None
        source, visit, lease = claimed
        report = VisitReport(source.id, source.kind, source.locator, visit.id)
        started = time.monotonic()
        ctx = VisitContext(app=self.app, fetcher=self.fetcher, source_id=source.id)
        lease.heartbeat(self.app, self.heartbeat_seconds)
        try:
            report.status = self._discover(ctx, source, visit, report, lease, started)
        except LeaseLost as exc:
            report.status, report.errors = VisitStatus.LOST, [*report.errors, exc.as_text()]
        except SafeEyeError as exc:
            report.status, report.errors = VisitStatus.FAILED, [*report.errors, exc.as_text()]
        except _DATABASE_AWAY:
            raise
        except Exception as exc:  # a bug must not stop the monitor or leave the visit running
            report.status = VisitStatus.FAILED
            report.errors = [*report.errors, error_text(exc, f"visit {visit.id}")]
        finally:
            lease.stop()
        report.pages = ctx.pages
        report.failures += len(ctx.page_failures)
        report.errors.extend(ctx.page_failures[: MAX_REPORTED_ERRORS - len(report.errors)])
        report.seconds = round(time.monotonic() - started, 3)
        if report.status != VisitStatus.LOST:
            try:
                self._finish(source, visit, report, lease)
            except LeaseLost as exc:
                report.status, report.errors = VisitStatus.LOST, [*report.errors, exc.as_text()]
        return report

    def _discover(
        self,
        ctx: VisitContext,
        source: Source,
        visit: Visit,
        report: VisitReport,
        lease: Lease,
        started: float,
    ) -> str:
        """Process what the source shows, batch by batch, until it is all done ("done") or the
        budget is spent ("incomplete": each visit handles at least one batch, so a source
        always makes progress). Raises ``LeaseLost`` when another monitor took the source."""
        kind = kind_named(source.kind)
        if isinstance(kind, CrawlSource):
            return self._crawl(ctx, source, visit, report, lease, started)
        seen: set[str] = set()
        handled = 0
        with closing(kind.discover(ctx, source)) as candidates:
            for batch in _batches(candidates, self.batch_size):
                if lease.lost.is_set():
                    raise LeaseLost("another monitor took this source over; this visit stopped")
                if handled and time.monotonic() - started >= self.budget_seconds:
                    return VisitStatus.INCOMPLETE
                fresh = [c for c in batch if c.location not in seen]
                seen.update(c.location for c in fresh)
                handled += self._process(fresh, source, visit, report, lease)
        return VisitStatus.DONE

    def _crawl(
        self,
        ctx: VisitContext,
        source: Source,
        visit: Visit,
        report: VisitReport,
        lease: Lease,
        started: float,
    ) -> str:
        """Start a crawl, or carry on the one an incomplete visit left. In a Celery worker the
        visit ends there and the workers read the pages; in process it runs the pages' tasks
        and their media's until none is left ("done") or the budget is spent ("incomplete":
        at least one batch of pages is read, and the media found are still followed; the pages
        still pending wait for the next visit)."""
        with self.app.db.session() as session:
            lease.hold(session)
            crawl = start_crawl(session, source, visit.id, carry_on=self.drains)
        ctx.page_failures.extend(crawl.failures)
        for page_id in crawl.page_ids:
            self.runner.submit("fetch_page", page_id)
        if not self.drains:
            return VisitStatus.DONE
        runner = cast(InProcessRunner, self.runner)
        batches = itertools.count()

        def in_budget() -> bool:
            spent = time.monotonic() - started >= self.budget_seconds
            return not lease.lost.is_set() and (next(batches) == 0 or not spent)

        results = runner.drain(keep_going=in_budget)
        if runner.pending and not lease.lost.is_set():
            with self.app.db.session() as session:
                leave_for_later(session, crawl.crawl_id, runner.context.lease.total_seconds())
            results.update(runner.drain(keep_going=lambda: not lease.lost.is_set()))
        if lease.lost.is_set():
            raise LeaseLost("another monitor took this source over; this visit stopped")
        for (name, _), page in results.items():
            if name != "fetch_page" or not isinstance(page, PageOutcome):
                continue
            if page.crawl_id != crawl.crawl_id:
                continue  # left over from a visit that lost its source
            ctx.pages += page.pages
            ctx.page_failures.extend(page.errors)
            for state_id, candidate in page.queued.items():
                fetched = _fetch_outcome(results, state_id, candidate)
                self._count(report, candidate, fetched, results)
        with self.app.db.session(read_only=True) as session:
            return (
                VisitStatus.DONE
                if crawl_finished(session, crawl.crawl_id)
                else VisitStatus.INCOMPLETE
            )

    def _finish(self, source: Source, visit: Visit, report: VisitReport, lease: Lease) -> None:
        """Record the visit and give the source back, only while this visit holds its lease."""
        now = utcnow()
        if not allowed(VisitStatus.RUNNING, VisitStatus(report.status)):
            raise ConflictError(f"a visit cannot end as {report.status}", code="state")
        error = "; ".join(report.errors[:3])[:2000] if report.errors else None
        if report.status == VisitStatus.INCOMPLETE:
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

    # -- queueing and following a batch ---------------------------------------------------

    def _process(
        self,
        batch: list[Candidate],
        source: Source,
        visit: Visit,
        report: VisitReport,
        lease: Lease,
    ) -> int:
        """Queue one batch's media for fetching (or store the files this visit read itself)
        and, in-process, run those tasks and count what they found; returns how many items it
        handled (those the incomplete visits this one resumes handled already are skipped)."""
        if not batch:
            return 0
        states = self._states(source.id, batch)
        items: list[Candidate] = []
        for candidate in batch:
            if _handled_since(states.get(location_key(candidate.location)), source.resume_since):
                report.skipped += 1
            else:
                items.append(candidate)
        if not items:
            return 0
        obey = obeys_robots(source)
        queued: dict[int, Candidate] = {}
        with self.app.db.session() as session:
            lease.hold(session)  # a visit that lost its source queues nothing more
            for candidate in items:
                if candidate.path is None and candidate.prefetched is None:
                    state_id = queue_fetch(session, source, visit.id, candidate, obey)
                    queued[state_id] = candidate
        for state_id in queued:
            self.runner.submit("fetch_media", state_id)
        outcomes: dict[int, FetchOutcome] = {}
        for candidate in items:
            if candidate.path is not None or candidate.prefetched is not None:
                outcome = self._take_in(candidate, source, states, lease)
                outcomes[id(candidate)] = outcome
        if not self.drains:
            report.media_found += len(items)
            return len(items)
        results = self.runner.drain(keep_going=lambda: not lease.lost.is_set())  # type: ignore[attr-defined]
        for state_id, candidate in queued.items():
            outcomes[id(candidate)] = _fetch_outcome(results, state_id, candidate)
        for candidate in items:
            self._count(report, candidate, outcomes[id(candidate)], results)
        return len(items)

    def _count(
        self,
        report: VisitReport,
        candidate: Candidate,
        outcome: FetchOutcome,
        results: dict[tuple[str, int], Any],
    ) -> None:
        report.media_found += 1
        if outcome.result == "failed":
            report.failures += 1
            if len(report.errors) < MAX_REPORTED_ERRORS:
                report.errors.append(f"{candidate.location[:300]}: {outcome.error}")
            return
        if outcome.result == "unchanged" or outcome.stored is None:
            report.unchanged += 1
            return
        report.media_new += int(outcome.stored.new_sighting)
        media_id = outcome.stored.media_id
        scanned = results.get(("scan_media", media_id)) or results.get(("match_media", media_id))
        if scanned is None:
            return
        new = [m for m in scanned.matches if m.new]
        report.matches += len(new)
        report.new_matches.extend(
            NewMatch(
                m.match_id,
                m.case_code,
                m.candidate.kind,
                round(m.candidate.distance, 4),
                candidate.location,
                candidate.page_url,
            )
            for m in new
        )
        if scanned.analysis.error is not None and not scanned.analysis.frames:
            report.failures += 1

    def _take_in(
        self, candidate: Candidate, source: Source, states: dict[str, UrlState], lease: Lease
    ) -> FetchOutcome:
        """Store a file this visit read itself (a local file, a body the crawler fetched) and
        queue its scan; never raises: whatever goes wrong is the item's error."""
        key = location_key(candidate.location)
        state = states.get(key)
        facts_source = candidate_json(candidate, source, True)
        try:
            if candidate.path is not None and _unchanged_file(state, candidate):
                with self.app.db.session() as session:
                    lease.hold(session)
                    assert state is not None
                    touch_sighting(session, key, state.sha256)
                    _save_state(session, source.id, candidate, status="ok")
                return FetchOutcome(0, candidate.location, "unchanged")
            fetched = candidate.prefetched
            path = candidate.path if fetched is None else fetched.path
            assert path is not None
            hashes = hash_file(path)
            if fetched is None:
                facts = local_facts(source.id, facts_source, candidate.location)
            else:
                facts = fetched_facts(_transient_state(source.id, candidate), facts_source, fetched)
            with self.app.work(self.actor) as work:
                lease.hold(work.session)
                stored = store_file(work, path, hashes, facts)
                _save_state(
                    work.session,
                    source.id,
                    candidate,
                    status="ok",
                    sha256=hashes.sha256,
                    fetched=fetched,
                )
        except LeaseLost:
            raise
        except _DATABASE_AWAY:
            raise
        except Exception as exc:
            error = (
                f"io: {exc.strerror or type(exc).__name__}"
                if isinstance(exc, OSError)
                else error_text(exc, "storing one item")
            )
            self._failed_state(source.id, candidate, error, lease)
            return FetchOutcome(0, candidate.location, "failed", error)
        finally:
            if candidate.prefetched is not None:
                candidate.prefetched.unlink()
        queue_scan(self.runner, stored)
        return FetchOutcome(0, candidate.location, "stored", stored=stored)

    def _failed_state(self, source_id: int, candidate: Candidate, error: str, lease: Lease) -> None:
        with self.app.db.session() as session:
            lease.hold(session)
            _save_state(session, source_id, candidate, status="failed", error=error)

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


@task("visit_source", max_attempts=3)
def visit_source(ctx: TaskContext, source_ids: list[int]) -> Results:
    """Visit each due source (the visit claims the source's lease itself) and queue its work."""
    monitor = Monitor(ctx.app, runner=ctx.runner, fetcher=ctx.fetcher, actor=ctx.actor)
    try:
        return {source_id: monitor.visit(source_id) for source_id in source_ids}
    finally:
        monitor.close()


def _fetch_outcome(
    results: dict[tuple[str, int], Any], state_id: int, candidate: Candidate
) -> FetchOutcome:
    """What ``fetch_media`` did with a URL this visit queued (failed: not done in this visit)."""
    fetched = results.get(("fetch_media", state_id))
    return fetched or FetchOutcome(
        state_id, candidate.location, "failed", "fetch: not done in this visit"
    )


def _save_state(
    session: Session,
    source_id: int,
    candidate: Candidate,
    *,
    status: str,
    error: str | None = None,
    sha256: str | None = None,
    fetched: FetchResult | None = None,
) -> None:
    """Record what handling a file this visit read itself found."""
    state = url_state(session, source_id, candidate.location)
    state.last_checked_at = utcnow()
    state.status, state.error = status, error[:2000] if error else None
    if status == "failed":
        state.failures = (state.failures or 0) + 1
        return
    state.failures = 0
    state.fingerprint = candidate.fingerprint
    if sha256 is not None:
        state.sha256 = sha256
    if fetched is not None:
        state.etag = fetched.etag
        state.last_modified = fetched.last_modified[:64] if fetched.last_modified else None


def _unchanged_file(state: UrlState | None, candidate: Candidate) -> bool:
    return state is not None and state.status == "ok" and state.fingerprint == candidate.fingerprint


def _transient_state(source_id: int, candidate: Candidate) -> UrlState:
    return UrlState(source_id=source_id, location=candidate.location)


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
        .where(Visit.id == visit_id, Visit.status == VisitStatus.RUNNING)
        .values(status=VisitStatus.INTERRUPTED, finished_at=now, error=INTERRUPTED)
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
