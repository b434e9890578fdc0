"""A crawl's frontier lives in the database, one task per page: an interrupted crawl carries on
where it stopped, a page's failure is that page's, nothing is queued twice, and workers share
one crawl and its limits."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from conftest import act, make_app, make_settings
from hostile_server import HostileServer, maze
from safeeye.app import SafeEye
from safeeye.db.models import Crawl, CrawlPage, Sighting, UrlState
from safeeye.db.types import utcnow
from safeeye.ingest.monitor import Monitor, VisitReport
from safeeye.ingest.service import add_source
from safeeye.pipeline.detectors import Detectors
from safeeye.tasks import TaskContext
from safeeye.tasks.crawling import PageOutcome, fetch_page
from safeeye.tasks.runner import InProcessRunner
from safeeye.tasks.scheduler import Scheduler
from test_celery_workers import (
    REDIS,
    _broker_reachable,
    _settings,
    _start_workers,
    _wait_until_scanned,
    workers_cleanup,  # noqa: F401 - a fixture
)
from test_discovery import _FetcherBrokenBy
from test_monitor_leases import noise_jpeg


def html(*body: str) -> bytes:
    return ("<!doctype html><html><body>" + "".join(body) + "</body></html>").encode()


def build_site(server: HostileServer, sections: int = 6) -> tuple[list[str], list[str]]:
    """A home page linking ``sections`` section pages, each showing a photo and linking two
    articles that show one photo each: its page paths and its media paths."""
    pages, media = ["/"], []
    home = []
    for s in range(sections):
        section = f"/s{s}/"
        articles = [f"/s{s}/a{a}.html" for a in range(2)]
        home.append(f'<a href="{section}">section</a>')
        photos = [f"/img/s{s}.jpg", *(f"/img/s{s}a{a}.jpg" for a in range(2))]
        server.add(
            section,
            html(f'<img src="{photos[0]}">', *(f'<a href="{a}">article</a>' for a in articles)),
            content_type="text/html",
        )
        for article, photo in zip(articles, photos[1:], strict=True):
            server.add(article, html(f'<img src="{photo}">'), content_type="text/html")
        pages += [section, *articles]
        media += photos
    server.add("/", html(*home), content_type="text/html")
    for i, path in enumerate(media):
        server.add(path, noise_jpeg(i), content_type="image/jpeg")
    return pages, media


class Recorder:
    """A runner that only records what is submitted (as a broker would queue it)."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, int, float]] = []

    def submit(self, task: str, row_id: int, *, delay: float = 0.0) -> None:
        self.submitted.append((task, row_id, delay))


@pytest.fixture(params=["sqlite", "postgres"])
def web_app(
    request: pytest.FixtureRequest, tmp_path: Path, detectors: Detectors
) -> Iterator[SafeEye]:
    """The service on each database (rows are claimed and locked differently on each)."""
    url = request.getfixturevalue("postgres_schema") if request.param == "postgres" else None
    settings = make_settings(
        tmp_path / "data", url, fetch_allowlist=("127.0.0.1",), fetch_host_interval=0.0
    )
    safe = make_app(settings, detectors)
    yield safe
    safe.close()


def _sighted(app: SafeEye) -> set[str]:
    with app.db.session(read_only=True) as session:
        return set(session.scalars(select(Sighting.location)))


def _rows(app: SafeEye) -> list[CrawlPage]:
    with app.db.session(read_only=True) as session:
        return list(session.scalars(select(CrawlPage).order_by(CrawlPage.id)))


def _visit_once(app: SafeEye, runner: object | None = None) -> VisitReport:
    monitor = Monitor(app, runner=runner)  # type: ignore[arg-type]
    try:
        (report,) = monitor.run_once()
    finally:
        monitor.close()
    return report


def test_a_crawl_out_of_time_carries_on_from_its_frontier_and_reads_no_page_twice(
    web_app: SafeEye,
) -> None:
    with HostileServer() as server:
        pages, media = build_site(server)
        act(web_app, add_source, "crawl", server.url("/"), interval_seconds=600)
        monitor = Monitor(web_app, budget_seconds=0.001)  # one batch of pages per visit
        reports: list[VisitReport] = []
        try:
            while not reports or reports[-1].status == "incomplete":
                assert len(reports) < 10, [r.status for r in reports]
                (report,) = monitor.run_once()
                reports.append(report)
        finally:
            monitor.close()
        page_hits = {path: server.hits(path) for path in pages}
        media_hits = {path: server.hits(path) for path in media}
        probes = server.hits("/sitemap.xml")
        urls = {server.url(path) for path in media}
        probe = server.url("/sitemap.xml")
    statuses = [r.status for r in reports]
    assert len(statuses) >= 3 and statuses == ["incomplete"] * (len(statuses) - 1) + ["done"]
    assert reports[0].pages < len(pages)  # the first visit stopped after a few pages ...
    assert page_hits == dict.fromkeys(pages, 1)  # ... and no visit read a page again
    assert media_hits == dict.fromkeys(media, 1) and probes == 1
    assert sum(r.pages for r in reports) == len(pages)
    assert sum(r.media_found for r in reports) == sum(r.media_new for r in reports) == len(media)
    assert all(r.failures == 0 for r in reports), [r.errors for r in reports]
    assert _sighted(web_app) == urls
    rows = _rows(web_app)
    assert len({row.crawl_id for row in rows}) == 1  # carried on, never started over
    assert len({row.visit_id for row in rows}) == len(reports)  # each visit read its part
    assert {row.url for row in rows if row.status != "done"} == {probe}  # this site has none


def test_the_crawls_limits_hold_across_its_page_tasks(web_app: SafeEye) -> None:
    with HostileServer() as server:
        server.route_prefix("/maze/", maze())
        server.add(
            "/",
            html('<a href="/maze/">maze</a>', '<a href="/g/1.html">g</a>'),
            content_type="text/html",
        )
        server.add("/g/1.html", html('<img src="/img/g.jpg">'), content_type="text/html")
        server.add("/img/g.jpg", noise_jpeg(1), content_type="image/jpeg")
        config = {"depth": 100, "max_pages_per_prefix": 10, "sitemaps": False}
        act(web_app, add_source, "crawl", server.url("/"), config=config)
        report = _visit_once(web_app)
        maze_hits = len([r for r in server.requests() if r.path.startswith("/maze/")])
        url = server.url("/img/g.jpg")
    assert report.status == "done" and maze_hits == 10  # one endless section has its budget
    assert _sighted(web_app) == {url}  # and the rest of the site was read
    with HostileServer() as server:
        server.route_prefix("/maze/", maze())
        config = {"depth": 100, "max_pages": 25, "sitemaps": False}
        source = act(web_app, add_source, "crawl", server.url("/maze/"), config=config)
        report = _visit_once(web_app)
        maze_hits = len([r for r in server.requests() if r.path.startswith("/maze/")])
    assert report.status == "done" and report.pages == maze_hits == 25
    with web_app.db.session(read_only=True) as session:
        crawl = session.scalars(select(Crawl).where(Crawl.source_id == source.id)).one()
        assert crawl.pages == 25 and "max_pages|frontier full" in crawl.traps["limits_reported"]


def test_a_page_delivered_twice_or_retried_queues_nothing_twice(
    web_app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safeeye.tasks.crawling as crawling

    with HostileServer() as server:
        server.add(
            "/",
            html('<a href="/a.html">a</a><a href="/b.html">b</a><img src="/img/0.jpg">'),
            content_type="text/html",
        )
        for name in ("a", "b"):
            server.add(
                f"/{name}.html",
                html('<a href="/">home</a><a href="/b.html">b</a><img src="/img/0.jpg">'),
                content_type="text/html",
            )
        config = {"sitemaps": False}
        source = act(web_app, add_source, "crawl", server.url("/"), config=config)
        queue = Recorder()
        report = _visit_once(web_app, queue)  # a worker's visit: it only starts the crawl
        assert (report.status, report.pages, report.media_found) == ("done", 0, 0)
        ((task, home, _),) = queue.submitted
        assert task == "fetch_page"
        ctx = TaskContext(web_app, queue)

        # The step fails while it records what the page showed (the database went away):
        # nothing of it stays, and the page is tried again after a while.
        real_queue_fetch = crawling.queue_fetch

        def failing(*args: object) -> int:
            raise RuntimeError("the database went away")

        monkeypatch.setattr(crawling, "queue_fetch", failing)
        assert fetch_page(ctx, [home])[home].result == "retrying"
        monkeypatch.setattr(crawling, "queue_fetch", real_queue_fetch)
        assert queue.submitted[-1][:2] == ("fetch_page", home) and queue.submitted[-1][2] > 0
        assert [(r.status, r.attempts) for r in _rows(web_app)] == [("pending", 1)]
        with web_app.db.session() as session:
            assert session.scalar(select(func.count()).select_from(UrlState)) == 0
            session.execute(update(CrawlPage).values(not_before=None))  # its backoff is over

        done = fetch_page(ctx, [home])[home]
        assert isinstance(done, PageOutcome) and done.result == "done"
        assert fetch_page(ctx, [home]) == {home: None}  # a second delivery does nothing
        a, b = (row.id for row in _rows(web_app)[1:])

        # A worker took page a and died: once its lease ran out, another reads it.
        with web_app.db.session() as session:
            session.execute(
                update(CrawlPage)
                .where(CrawlPage.id == a)
                .values(lease_owner="dead", lease_until=utcnow() + timedelta(hours=1))
            )
        assert fetch_page(ctx, [a]) == {a: None}
        with web_app.db.session() as session:
            session.execute(update(CrawlPage).where(CrawlPage.id == a).values(lease_until=utcnow()))
        assert fetch_page(ctx, [a, b])[a].result == "done"
        hits = server.hits("/")
    rows = _rows(web_app)
    assert [(r.url, r.status) for r in rows] == [
        (server.url(p), "done") for p in ("/", "/a.html", "/b.html")
    ]
    assert hits == 2  # the failed try and the retry; not the second delivery
    with web_app.db.session(read_only=True) as session:
        (state,) = session.scalars(select(UrlState))  # the photo all three pages show
        crawl = session.scalars(select(Crawl).where(Crawl.source_id == source.id)).one()
        assert (crawl.pages, crawl.media) == (3, 1)
    fetches = [row for task, row, _ in queue.submitted if task == "fetch_media"]
    assert fetches == [state.id]


def test_pages_left_when_a_crawls_time_is_up_are_not_read(web_app: SafeEye) -> None:
    with HostileServer() as server:
        server.add("/", html('<img src="/img/0.jpg">'), content_type="text/html")
        config = {"max_seconds": 60}
        act(web_app, add_source, "crawl", server.url("/"), config=config)
        queue = Recorder()
        _visit_once(web_app, queue)
        with web_app.db.session() as session:
            session.execute(update(Crawl).values(started_at=utcnow() - timedelta(minutes=2)))
        pages = [row for task, row, _ in queue.submitted]
        outcomes = fetch_page(TaskContext(web_app, queue), pages)
        hits = len(server.requests())
    assert {o.result for o in outcomes.values()} == {"skipped"} and len(pages) == 2
    assert hits == 0
    assert {(r.status, r.error) for r in _rows(web_app)} == {("done", "not read: max_seconds")}
    with web_app.db.session(read_only=True) as session:
        assert session.scalars(select(Crawl.stopped)).one() == "max_seconds"


def test_a_page_whose_handling_raises_fails_alone(
    web_app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safeeye.ingest.crawl as crawl_module

    real_extract = crawl_module.extract_links

    def extract_links(body: bytes, url: str, charset: str | None = None):  # type: ignore[no-untyped-def]
        if url.endswith("/unreadable.html"):
            raise IndexError("a parser's bug")
        return real_extract(body, url, charset)

    monkeypatch.setattr(crawl_module, "extract_links", extract_links)
    with HostileServer() as server:
        names = ("unfetchable", "unreadable", "fine")
        server.add(
            "/",
            html(*(f'<a href="/{n}.html">{n}</a>' for n in names)),
            content_type="text/html",
        )
        for i, name in enumerate(names):
            server.add(f"/{name}.html", html(f'<img src="/img/{i}.jpg">'), content_type="text/html")
            server.add(f"/img/{i}.jpg", noise_jpeg(i), content_type="image/jpeg")
        act(web_app, add_source, "crawl", server.url("/"), config={"sitemaps": False})
        runner = InProcessRunner(web_app)
        runner.context.__dict__["fetcher"] = _FetcherBrokenBy(
            web_app, server.url("/unfetchable.html")
        )
        try:
            report = _visit_once(web_app, runner)
        finally:
            runner.close()
        url = server.url
    assert report.status == "done" and report.failures == 2
    assert sorted(report.errors) == [
        f"{url('/unfetchable.html')}: internal: RuntimeError",
        f"{url('/unreadable.html')}: internal: IndexError",
    ]
    assert {(r.url, r.status, r.error) for r in _rows(web_app)} == {
        (url("/"), "done", None),
        (url("/unfetchable.html"), "failed", "internal: RuntimeError"),
        (url("/unreadable.html"), "failed", "internal: IndexError"),
        (url("/fine.html"), "done", None),
    }
    assert _sighted(web_app) == {url("/img/2.jpg")}


def test_the_scheduler_hands_on_a_page_whose_message_was_lost(web_app: SafeEye) -> None:
    with HostileServer() as server:
        act(web_app, add_source, "crawl", server.url("/"))
        _visit_once(web_app, Recorder())  # queued on a broker that then forgot the messages
    with web_app.db.session() as session:
        session.execute(update(CrawlPage).values(queued_at=utcnow() - timedelta(days=1)))
    pages = {row.id for row in _rows(web_app)}
    queue = Recorder()
    scheduler = Scheduler(web_app, queue)
    assert scheduler.tick().get("fetch_page") == len(pages) == 2  # the start page, the probe
    assert {row for task, row, _ in queue.submitted if task == "fetch_page"} == pages
    assert "fetch_page" not in scheduler.tick()  # handed on once, not at every tick


def _wait_until_read(app: SafeEye, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(row.status == "pending" for row in _rows(app)):
        assert time.monotonic() < deadline, "crawl pages still pending"
        time.sleep(0.2)


@pytest.mark.slow
def test_two_workers_crawl_a_site_together_reading_each_page_once(
    tmp_path: Path,
    postgres_schema: str,
    detectors: Detectors,
    workers_cleanup: list[subprocess.Popen[bytes]],  # noqa: F811 - the imported fixture
) -> None:
    if reason := _broker_reachable(REDIS):
        pytest.skip(reason)
    settings = _settings(tmp_path / "data", postgres_schema, REDIS)
    app = make_app(settings, detectors)
    server = HostileServer().start()
    try:
        pages, media = build_site(server)
        workers_cleanup.extend(_start_workers(settings, 2, tmp_path))
        act(app, add_source, "crawl", server.url("/"))  # due now: a worker's visit starts it
        _wait_until_scanned(app, len(media), timeout=240)
        _wait_until_read(app, timeout=30)
        page_hits = {path: server.hits(path) for path in pages}
        media_hits = {path: server.hits(path) for path in media}
        urls = {server.url(path) for path in media}
    finally:
        server.stop()
    assert page_hits == dict.fromkeys(pages, 1)
    assert media_hits == dict.fromkeys(media, 1)
    assert _sighted(app) == urls
    rows = _rows(app)
    assert len(rows) == len(pages) + 1 and {r.status for r in rows} == {"done", "failed"}
    assert {(r.attempts, r.lease_owner) for r in rows} == {(1, None)}  # each taken once
    with app.db.session(read_only=True) as session:
        (crawl,) = session.scalars(select(Crawl))
        assert (crawl.pages, crawl.media) == (len(pages) + 1, len(media))
    app.close()
