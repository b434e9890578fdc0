"""A site crawl as tasks over rows: its frontier is the crawl's page rows, one ``fetch_page``
task per page.

A visit of a crawl source starts a crawl (``start_crawl``: a ``Crawl`` row and its start URLs as
pending ``CrawlPage`` rows) or, while the last crawl still has pending pages, carries that one
on. ``fetch_page`` claims page rows, fetches each with the source's politeness and robots rules
(keeping it as evidence) and reads it with the crawler's per-page step (``ingest.crawl``); then,
in one transaction that holds the crawl's row, it queues the new in-scope pages as rows and the
media as URL states for ``fetch_media``, counts them on the crawl (pages and media queued, the
trap defences) and marks the page done or failed. So the workers that share a crawl keep its
limits together, a page's failure is that page's, and a redelivered or retried page finds its
row done or redoes a step that never committed: nothing is queued twice.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import ColumnElement, delete, func, or_, select, update
from sqlalchemy.orm import Session

from safeeye.db.models import Crawl, CrawlPage, Page, Source, UrlState
from safeeye.db.states import PageStatus
from safeeye.db.types import utcnow
from safeeye.errors import SafeEyeError, error_text
from safeeye.ingest.crawl import (
    Crawler,
    CrawlEvent,
    CrawlState,
    FetchedPage,
    Found,
    MediaFound,
    PageFailed,
    PageRead,
    QueuedUrl,
    Role,
)
from safeeye.ingest.links import MediaLink
from safeeye.ingest.sources.base import Candidate, VisitContext
from safeeye.ingest.sources.crawl import CrawlSource, media_candidate, missing_sitemap
from safeeye.pipeline.record import location_key
from safeeye.tasks import TASKS, Results, TaskContext, task
from safeeye.tasks.discovery import FETCH_THREADS, queue_fetch
from safeeye.tasks.leases import give_back, holds, release

PAGE_BATCH = 8
CRAWL = CrawlSource()
#: Page failures a report leaves out: the fetch's own error is reported instead.
_REPORTED_AS_FETCH_ERRORS = ("fetch", "bad_url")


@dataclass(frozen=True)
class StartedCrawl:
    """What a visit's start of a crawl came to: the crawl, the pages to submit, and the start
    URLs that cannot be crawled ("location: reason")."""

    crawl_id: int
    page_ids: list[int]
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PageOutcome:
    """What one page's task came to: ``done``, ``failed``, ``skipped`` (not read: a limit ended
    its crawl first), ``retrying`` or ``lost``; the pages it fetched (kept as evidence), the media
    URL states it queued with what the crawl knew of each, and the failures to report
    ("location: reason")."""

    page_id: int
    crawl_id: int
    result: str
    pages: int = 0
    queued: dict[int, Candidate] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def start_crawl(session: Session, source: Source, visit_id: int, *, carry_on: bool) -> StartedCrawl:
    """Start a crawl of ``source`` for visit ``visit_id``, its start URLs pending, or, while the
    last crawl still has pending pages, carry that one on instead of starting over: with
    ``carry_on`` its pending pages that nobody holds become this visit's to submit again (else
    they are left to the workers). A new crawl drops the finished ones before it."""
    now = utcnow()
    last = session.scalars(
        select(Crawl.id).where(Crawl.source_id == source.id).order_by(Crawl.id.desc()).limit(1)
    ).first()
    if last is not None:
        pending = select(CrawlPage.id).where(_pending(last)).order_by(CrawlPage.id)
        page_ids = list(session.scalars(pending))
        if page_ids:
            if not carry_on:
                return StartedCrawl(last, [])
            session.execute(
                update(CrawlPage)
                .where(_pending(last), _unheld(now))
                .values(visit_id=visit_id, not_before=None, queued_at=now)
                .execution_options(synchronize_session=False)
            )
            return StartedCrawl(last, page_ids)
        session.execute(
            delete(Crawl)
            .where(Crawl.source_id == source.id)
            .execution_options(synchronize_session=False)
        )
    crawler = CRAWL.crawler(source)
    events = list(crawler.seed(CRAWL.seeds(source), CRAWL.config(source).sitemaps))
    crawl = Crawl(source_id=source.id, visit_id=visit_id, started_at=now)
    _count(crawl, crawler)
    session.add(crawl)
    session.flush()
    rows = [_page_row(crawl, visit_id, queued, now) for queued in crawler.state.frontier]
    session.add_all(rows)
    session.flush()
    failures = [f"{e.url[:300]}: {e.reason}" for e in events if isinstance(e, PageFailed)]
    return StartedCrawl(crawl.id, [row.id for row in rows], failures)


def leave_for_later(session: Session, crawl_id: int, seconds: float) -> None:
    """Leave the crawl's pending pages that nobody holds to a later visit (this one is out of
    time): none is taken for ``seconds``, so the tasks already submitted for them do nothing."""
    now = utcnow()
    session.execute(
        update(CrawlPage)
        .where(_pending(crawl_id), _unheld(now))
        .values(not_before=now + timedelta(seconds=seconds), queued_at=now)
        .execution_options(synchronize_session=False)
    )


def crawl_finished(session: Session, crawl_id: int) -> bool:
    """Whether none of the crawl's pages is pending."""
    return session.scalars(select(CrawlPage.id).where(_pending(crawl_id)).limit(1)).first() is None


@dataclass(frozen=True)
class _Claimed:
    page_id: int
    queued: QueuedUrl
    source: Source
    crawl_id: int
    started_at: datetime
    visit_id: int | None


@task("fetch_page", max_attempts=3, batch=PAGE_BATCH)
def fetch_page(ctx: TaskContext, page_ids: list[int]) -> Results:
    """Fetch and read the crawl pages this worker can claim; queue the pages and media they
    show."""
    results: Results = {}
    claimed: list[_Claimed] = []
    for page_id in page_ids:
        taken = _claim(ctx, page_id)
        if isinstance(taken, _Claimed):
            claimed.append(taken)
        else:
            results[page_id] = taken
    if not claimed:
        return results
    ctx.app.blobs  # noqa: B018 - opened once here, not by each thread that keeps a page
    with (
        ctx.heartbeat(CrawlPage, [item.page_id for item in claimed]),
        ThreadPoolExecutor(min(FETCH_THREADS, len(claimed))) as pool,
    ):
        fetched = list(pool.map(lambda item: _fetch(ctx, item), claimed))
    for item, (page, kept, pages) in zip(claimed, fetched, strict=True):
        try:
            results[item.page_id] = _settle(ctx, item, page, kept, pages)
        except Exception as exc:  # its database work was rolled back: tried again later
            _retry(ctx, item.page_id, error_text(exc, "recording a page"))
            results[item.page_id] = PageOutcome(item.page_id, item.crawl_id, "retrying", pages)
    return results


def _claim(ctx: TaskContext, page_id: int) -> _Claimed | PageOutcome | None:
    """Take the page for this worker (None when it is not pending or another holds it); a page
    of a crawl that a limit ended, or of a source that no longer crawls, is finished unread."""
    with ctx.app.db.session() as session:
        row = ctx.claim(session, CrawlPage, page_id, CrawlPage.status == PageStatus.PENDING)
        if row is None:
            return None
        crawl = session.get(Crawl, row.crawl_id)
        source = session.get(Source, row.source_id)
        assert crawl is not None and source is not None  # the page's foreign keys
        try:
            why = _why_not_read(crawl, source)
        except SafeEyeError as exc:  # the source's settings cannot be read (any more)
            _finish(row, PageStatus.FAILED, exc.as_text())
            errors = [f"{row.url[:300]}: {exc.as_text()}"]
            return PageOutcome(page_id, crawl.id, "failed", errors=errors)
        if why is not None:
            _finish(row, PageStatus.DONE, f"not read: {why}")
            return PageOutcome(page_id, crawl.id, "skipped")
        session.expunge(source)
        queued = QueuedUrl(
            row.url, row.depth, cast(Role, row.role), row.referrer, cast(Found, row.found)
        )
        return _Claimed(page_id, queued, source, crawl.id, crawl.started_at, row.visit_id)


def _why_not_read(crawl: Crawl, source: Source) -> str | None:
    """Why the crawl reads no more pages (a limit ended it), or None."""
    if source.kind != CRAWL.name:
        return "the source no longer crawls"
    seconds = CRAWL.config(source).max_seconds
    if seconds is not None and utcnow() >= crawl.started_at + timedelta(seconds=seconds):
        crawl.stopped = crawl.stopped or "max_seconds"
    return crawl.stopped


def _fetch(ctx: TaskContext, item: _Claimed) -> tuple[FetchedPage | Exception, int | None, int]:
    """The page (or what fetching it raised), its kept page's id, and how many pages were
    kept; never raises."""
    visit = VisitContext(app=ctx.app, fetcher=ctx.fetcher, source_id=item.source.id)
    try:
        page, kept = CRAWL.fetch(visit, item.queued.url, item.source)
    except Exception as exc:  # one page's failure, whatever it is, is that page's
        return exc, None, visit.pages
    return page, kept, visit.pages


def _settle(
    ctx: TaskContext,
    item: _Claimed,
    fetched: FetchedPage | Exception,
    kept: int | None,
    pages: int,
) -> PageOutcome:
    """Read the page and record the step in one transaction that holds the crawl's row (the
    new pages and media queued, the crawl's counts, the page done or failed); then submit the
    tasks of what it queued."""
    crawler = CRAWL.crawler(item.source)
    read, fetch_error = _read(crawler, item.queued, fetched)
    errors = [f"{item.queued.url[:300]}: {fetch_error}"] if fetch_error else []
    with ctx.app.db.session() as session:
        row = session.get(CrawlPage, item.page_id)
        if row is None or not holds(row, ctx.owner):
            return PageOutcome(item.page_id, item.crawl_id, "lost", pages)
        crawl = session.execute(
            select(Crawl).where(Crawl.id == item.crawl_id).with_for_update()
        ).scalar_one()
        crawler.state = _state(session, crawl, item.source.id, read)
        known = set(crawler.state.seen)
        events = list(crawler.take(read))
        rows = _new_pages(crawl, item, read, crawler.state, known)
        session.add_all(rows)
        media = _queue_media(session, crawl, item, read, kept, events)
        failures = [e for e in events if isinstance(e, PageFailed)]
        errors += [
            f"{e.url[:300]}: {e.reason}"
            for e in failures
            if not e.reason.startswith(_REPORTED_AS_FETCH_ERRORS)
        ]
        _count(crawl, crawler)
        failure = failures[0].reason if failures else None
        status = PageStatus.DONE if failure is None else PageStatus.FAILED
        _finish(row, status, fetch_error or failure)
        session.flush()
        new_pages = [r.id for r in rows if r.status == PageStatus.PENDING]
    for page_id in new_pages:
        ctx.runner.submit("fetch_page", page_id)
    for state_id in media:
        ctx.runner.submit("fetch_media", state_id)
    result = "done" if failure is None else "failed"
    return PageOutcome(item.page_id, item.crawl_id, result, pages, media, errors)


def _read(
    crawler: Crawler, queued: QueuedUrl, fetched: FetchedPage | Exception
) -> tuple[PageRead, str | None]:
    """The page as the crawl reads it, and the fetch's own error to report (none for a host
    without a sitemap); a parser's bug on a crafted page is that page's failure."""
    fetch_error = None
    if isinstance(fetched, Exception) and not missing_sitemap(queued, fetched):
        fetch_error = error_text(fetched, "one page")
    try:
        return crawler.read(queued, fetched), fetch_error
    except Exception as exc:
        return PageRead(queued, queued.url, failure=error_text(exc, "one page")), fetch_error


def _new_pages(
    crawl: Crawl, item: _Claimed, read: PageRead, state: CrawlState, known: set[str]
) -> list[CrawlPage]:
    """Rows for what taking the page added to the crawl: the pages it queued, and where it
    redirected (read there, so done)."""
    now = utcnow()
    rows = [_page_row(crawl, item.visit_id, queued, now) for queued in state.frontier]
    if read.url not in known and read.url in state.seen:
        queued = item.queued
        moved = QueuedUrl(read.url, queued.depth, queued.role, queued.url, "redirect")
        rows.append(_page_row(crawl, item.visit_id, moved, now, PageStatus.DONE))
    return rows


def _queue_media(
    session: Session,
    crawl: Crawl,
    item: _Claimed,
    read: PageRead,
    kept: int | None,
    events: list[CrawlEvent],
) -> dict[int, Candidate]:
    """Queue the media the page showed the crawl for ``fetch_media``: URL state id -> what the
    crawl knew of it."""
    found = [e for e in events if isinstance(e, MediaFound)]
    links = [e.link for e in found]
    page_ids = _kept_pages(session, item.source.id, crawl.started_at, read.url, kept, links)
    obey = CRAWL.config(item.source).obey_robots
    media: dict[int, Candidate] = {}
    for event in found:
        candidate = media_candidate(event, page_ids.get(event.link.page_url))
        media[queue_fetch(session, item.source, item.visit_id, candidate, obey)] = candidate
    return media


def _state(session: Session, crawl: Crawl, source_id: int, read: PageRead) -> CrawlState:
    """The crawl's state as far as taking ``read`` needs it: its counts and trap defences, the
    URLs the page names that the crawl has seen, the media it names that the crawl handled."""
    urls = {location_key(url): url for url in (read.url, *(q.url for q in read.offers))}
    seen = session.scalars(
        select(CrawlPage.url_key).where(
            CrawlPage.crawl_id == crawl.id, CrawlPage.url_key.in_(list(urls))
        )
    )
    media = {location_key(link.url): link.url for link in read.media}
    handled = _handled(session, source_id, crawl.started_at, list(media)) if media else []
    state = CrawlState(
        seen={urls[key] for key in seen},
        media_seen={media[key] for key in handled},
        queued=crawl.pages,
        media_found=crawl.media,
    )
    state.load_traps(crawl.traps)
    return state


def _handled(session: Session, source_id: int, since: datetime, keys: list[str]) -> list[str]:
    """Which of the media (by location key) were queued or fetched since the crawl started:
    a crawl queues each media URL once."""
    return list(
        session.scalars(
            select(UrlState.location_key).where(
                UrlState.source_id == source_id,
                UrlState.location_key.in_(keys),
                or_(UrlState.queued_at >= since, UrlState.last_checked_at >= since),
            )
        )
    )


def _kept_pages(
    session: Session,
    source_id: int,
    since: datetime,
    url: str,
    kept: int | None,
    links: list[MediaLink],
) -> dict[str, int]:
    """The kept page (evidence) of each page the media were found on: this page's, or one this
    crawl kept before (a sitemap or feed names media of other pages)."""
    ids = {url: kept} if kept is not None else {}
    others = {location_key(u): u for u in {link.page_url for link in links} if u not in ids}
    if others:
        rows = session.execute(
            select(Page.url_key, func.max(Page.id))
            .where(
                Page.source_id == source_id,
                Page.url_key.in_(list(others)),
                Page.last_seen_at >= since,
            )
            .group_by(Page.url_key)
        )
        ids.update({others[key]: page_id for key, page_id in rows})
    return ids


def _retry(ctx: TaskContext, page_id: int, error: str) -> None:
    with ctx.app.db.session() as session:
        row = session.get(CrawlPage, page_id)
        if row is None or not holds(row, ctx.owner):
            return
        delay = give_back(row, error, TASKS["fetch_page"].max_attempts)
        if delay is None:
            row.status, row.finished_at = PageStatus.FAILED, utcnow()
            return
    ctx.runner.submit("fetch_page", page_id, delay=delay)


def _finish(row: CrawlPage, status: PageStatus, error: str | None) -> None:
    row.status, row.error, row.finished_at = status, error[:2000] if error else None, utcnow()
    release(row)


def _count(crawl: Crawl, crawler: Crawler) -> None:
    """Keep the crawl's counts and the limit that ended it (if one did) on its row."""
    state = crawler.state
    crawl.pages, crawl.media, crawl.traps = state.queued, state.media_found, state.traps()
    crawl.stopped = crawl.stopped or crawler.stopped


def _page_row(
    crawl: Crawl,
    visit_id: int | None,
    queued: QueuedUrl,
    now: datetime,
    status: PageStatus = PageStatus.PENDING,
) -> CrawlPage:
    pending = status == PageStatus.PENDING
    return CrawlPage(
        crawl_id=crawl.id,
        source_id=crawl.source_id,
        visit_id=visit_id,
        url=queued.url,
        url_key=location_key(queued.url),
        depth=queued.depth,
        role=queued.role,
        found=queued.found,
        referrer=queued.referrer,
        status=status,
        attempts=0,
        queued_at=now if pending else None,
        finished_at=None if pending else now,
    )


def _pending(crawl_id: int) -> ColumnElement[bool]:
    return (CrawlPage.crawl_id == crawl_id) & (CrawlPage.status == PageStatus.PENDING)


def _unheld(now: datetime) -> ColumnElement[bool]:
    return or_(CrawlPage.lease_until.is_(None), CrawlPage.lease_until < now)
