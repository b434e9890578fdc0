"""Discovery end to end: a real local site crawled by the monitor, scanned, matched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import FACES, VIDEO, act, make_app, make_settings
from hostile_server import HostileServer, declared_length, endless, maze, redirect
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, add_known, create_case
from safeeye.db.models import Match, Page, Sighting, Source, UrlState, Visit
from safeeye.db.types import utcnow
from safeeye.ingest.fetcher import Fetcher
from safeeye.ingest.monitor import Monitor
from safeeye.ingest.policy import fetch_policy
from safeeye.ingest.service import add_source, make_due
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.pool import InlineAnalyzer
from safeeye.tasks.runner import InProcessRunner
from synthetic_media import gif_cut_in_graphic_control_extension, webp_with_empty_frame_chunks
from test_monitor_leases import noise_jpeg


def html(*body: str) -> bytes:
    return ("<!doctype html><html><body>" + "".join(body) + "</body></html>").encode()


def jpeg(name: str) -> bytes:
    return (FACES / name).read_bytes()


@pytest.fixture
def site() -> Iterator[HostileServer]:
    """A small site: pages, images, a video, a sitemap, a feed, and out-of-scope corners."""
    with HostileServer() as server, HostileServer(host="127.0.0.2") as other:
        other.add("/elsewhere.html", html('<img src="/x.jpg">'), content_type="text/html")
        other.add("/x.jpg", jpeg("johnsnow_test1.jpg"), content_type="image/jpeg")
        server.add(
            "/",
            html(
                '<a href="/gallery/one.html">one</a>',
                '<a href="/gallery/two.html#top">two</a>',
                '<a href="/private/secret.html">members</a>',
                f'<a href="{other.url("/elsewhere.html")}">elsewhere</a>',
                '<link rel="alternate" type="application/rss+xml" href="/feed.xml">',
            ),
            content_type="text/html",
        )
        server.add(
            "/gallery/one.html",
            html('<img src="/img/biden.jpg">', '<img srcset="/img/rose.jpg 2x">'),
            content_type="text/html",
        )
        server.add(
            "/gallery/two.html",
            html('<video><source src="/vid/clip.mp4"></video>', '<a href="/img/kit.jpg">big</a>'),
            content_type="text/html",
        )
        server.add(
            "/gallery/unlinked.html", html('<img src="/img/alex.png">'), content_type="text/html"
        )
        server.add(
            "/private/secret.html", html('<img src="/img/two.jpg">'), content_type="text/html"
        )
        server.add(
            "/sitemap.xml",
            (
                '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<url><loc>{server.url('/gallery/unlinked.html')}</loc></url></urlset>"
            ).encode(),
            content_type="application/xml",
        )
        server.add(
            "/feed.xml",
            (
                '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
                f"<title>new</title><link>{server.url('/gallery/one.html')}</link>"
                f'<enclosure url="{server.url("/img/feed.jpg")}" type="image/jpeg" length="1"/>'
                "</item></channel></rss>"
            ).encode(),
            content_type="application/rss+xml",
        )
        for path, name in [
            ("/img/biden.jpg", "biden.jpg"),
            ("/img/rose.jpg", "rose_leslie1.jpg"),
            ("/img/kit.jpg", "kit_with_rose.jpg"),
            ("/img/feed.jpg", "obama2.jpg"),
            ("/img/two.jpg", "two_people.jpg"),
        ]:
            server.add(path, jpeg(name), content_type="image/jpeg")
        server.add(
            "/img/alex.png", (FACES / "alex-lacamoire.png").read_bytes(), content_type="image/png"
        )
        server.add("/vid/clip.mp4", VIDEO.read_bytes(), content_type="video/mp4")
        server.other = other  # type: ignore[attr-defined]
        yield server


@pytest.fixture
def web_app(tmp_path: Path, detectors: Detectors) -> Iterator[SafeEye]:
    settings = make_settings(
        tmp_path / "data", fetch_allowlist=("127.0.0.1", "127.0.0.2"), fetch_host_interval=0.0
    )
    safe = make_app(settings, detectors)
    yield safe
    safe.close()


def test_a_feed_url_yields_the_media_of_its_entries(web_app: SafeEye, site: HostileServer) -> None:
    act(web_app, add_source, "url", site.url("/feed.xml"))
    monitor = Monitor(web_app)
    try:
        (report,) = monitor.run_once()
    finally:
        monitor.close()
    assert report.status == "done" and report.media_new == 1
    assert _sighted(web_app) == {site.url("/img/feed.jpg")}


def _sighted(app: SafeEye) -> set[str]:
    with app.db.session() as session:
        return {s.location for s in session.execute(select(Sighting)).scalars()}


def test_a_crawl_finds_every_in_scope_media_file_and_none_out_of_scope(
    web_app: SafeEye, site: HostileServer
) -> None:
    act(
        web_app,
        add_source,
        "crawl",
        site.url("/"),
        config={"depth": 3, "exclude": ["/private/**"]},
        interval_seconds=600,
    )
    monitor = Monitor(web_app)
    try:
        (report,) = monitor.run_once()
    finally:
        monitor.close()
    expected = {
        site.url(p)
        for p in (
            "/img/biden.jpg",
            "/img/rose.jpg",
            "/img/kit.jpg",
            "/img/feed.jpg",
            "/img/alex.png",
            "/vid/clip.mp4",
        )
    }
    assert report.status == "done" and report.failures == 0, report.errors
    assert _sighted(web_app) == expected
    assert report.media_new == len(expected) and report.pages >= 5
    with web_app.db.session() as session:
        sighting = session.execute(
            select(Sighting).where(Sighting.location == site.url("/img/biden.jpg"))
        ).scalar_one()
        assert sighting.page_url == site.url("/gallery/one.html")
        assert sighting.http_status == 200 and sighting.server_ip == "127.0.0.1"
        assert sighting.evidence and sighting.evidence["page_id"]
        page = session.get(Page, sighting.evidence["page_id"])
        assert page is not None and page.url == site.url("/gallery/one.html")
        stored_html = web_app.blobs.get_bytes(page.blob_address, web_app.keys.media)
        assert b"/img/biden.jpg" in stored_html  # the page is kept (encrypted) as evidence


def _cli(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


VISIT_FIELDS = {
    "source_id",
    "kind",
    "locator",
    "visit_id",
    "status",
    "pages",
    "media_found",
    "media_new",
    "unchanged",
    "failures",
    "matches",
    "skipped",
    "seconds",
    "errors",
}


def test_a_crawl_reads_its_start_page_outside_its_scope_and_discover_names_the_new_matches(
    web_app: SafeEye, site: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.add(
        "/",
        html(
            '<img src="/img/home.jpg">',
            '<a href="/gallery/one.html">one</a>',
            '<a href="/private/secret.html">members</a>',
            '<a href="/news.html">news</a>',
        ),
        content_type="text/html",
    )
    site.add("/img/home.jpg", jpeg("obama3.jpg"), content_type="image/jpeg")
    site.add("/news.html", html('<img src="/img/news.jpg">'), content_type="text/html")
    site.add("/img/news.jpg", jpeg("obama.jpg"), content_type="image/jpeg")
    act(web_app, create_case, "CASE-BIDEN")
    act(web_app, add_faces, "CASE-BIDEN", [FACES / "biden2.jpg"])
    act(web_app, create_case, "CASE-HOME")
    act(web_app, add_known, "CASE-HOME", [FACES / "obama3.jpg"])
    added = _cli(
        web_app, monkeypatch, "source", "add", site.url("/"), "--crawl", "--scope", "/gallery/**"
    )
    assert added["config"]["include"] == ["/gallery/**"]
    out = _cli(web_app, monkeypatch, "discover", "--once")
    (visit,) = out["visits"]
    assert set(visit) == VISIT_FIELDS | {"new_matches"} and visit["status"] == "done"
    assert _sighted(web_app) == {
        site.url(p) for p in ("/img/home.jpg", "/img/biden.jpg", "/img/rose.jpg", "/img/alex.png")
    }  # the start page, the gallery it links to and the sitemap's gallery page; nothing else
    assert site.hits("/") == 1 and site.hits("/news.html") == site.hits("/private/secret.html") == 0
    new_matches = visit["new_matches"]
    new = {(m["case"], m["kind"], m["location"], m["page_url"]) for m in new_matches}
    assert new == {
        ("CASE-BIDEN", "face", site.url("/img/biden.jpg"), site.url("/gallery/one.html")),
        ("CASE-HOME", "hash", site.url("/img/home.jpg"), site.url("/")),
    }
    assert visit["matches"] == len(new_matches) == out["totals"]["matches"]
    with web_app.db.session(read_only=True) as session:
        stored = {m.id: (m.case.code, m.kind, round(m.distance, 4)) for m in session.query(Match)}
    assert {m["match_id"]: (m["case"], m["kind"], m["distance"]) for m in new_matches} == stored


def test_a_second_visit_repeats_nothing_and_catches_what_is_new(
    web_app: SafeEye, site: HostileServer
) -> None:
    act(web_app, create_case, "CASE-OBAMA")
    act(web_app, add_faces, "CASE-OBAMA", [FACES / "obama.jpg"])
    source = act(
        web_app,
        add_source,
        "crawl",
        site.url("/"),
        config={"exclude": ["/private/**"]},
        interval_seconds=30,
    )
    monitor = Monitor(web_app)
    try:
        monitor.run_once()
        before = _sighted(web_app)
        # A new page with the person's photo appears on the site.
        site.add("/gallery/new.html", html('<img src="/img/new.jpg">'), content_type="text/html")
        site.add("/img/new.jpg", jpeg("obama3.jpg"), content_type="image/jpeg")
        site.add(
            "/",
            html('<a href="/gallery/one.html">one</a><a href="/gallery/new.html">new</a>'),
            content_type="text/html",
        )
        act(web_app, make_due, source.id)
        (report,) = monitor.run_once()
    finally:
        monitor.close()
    assert _sighted(web_app) == before | {site.url("/img/new.jpg")}
    assert report.media_new == 1 and report.matches >= 1
    with web_app.db.session() as session:
        matches = session.execute(select(Match)).scalars().all()
        located = {s.media_id: s.location for s in session.execute(select(Sighting)).scalars()}
        assert any(
            m.kind == "face" and located.get(m.media_id) == site.url("/img/new.jpg")
            for m in matches
        )
        sightings = session.execute(select(Sighting)).scalars().all()
        assert len(sightings) == len({(s.location, s.sha256) for s in sightings})
        kept = session.execute(select(Page).where(Page.url == site.url("/gallery/one.html")))
        (page,) = kept.scalars().all()  # unchanged on the second visit: kept once
        assert page.last_seen_at > page.fetched_at
        assert all(s.times_seen >= 1 for s in sightings)


def test_hostile_corners_fail_alone_and_the_visit_completes(
    tmp_path: Path, detectors: Detectors, site: HostileServer
) -> None:
    import io

    from PIL import Image

    settings = make_settings(
        tmp_path / "hostile",
        fetch_allowlist=("127.0.0.1",),
        fetch_host_interval=0.0,
        fetch_total_timeout=5.0,
        max_media_bytes=20 * 1024**2,
    )
    web_app = make_app(settings, detectors)

    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, format="PNG")  # ~60 KB, 400 megapixels
    site.route("/bad/endless.jpg", endless(jpeg("obama.jpg")[:65536], content_type="image/jpeg"))
    site.route("/bad/loop.jpg", redirect("/bad/loop2.jpg"))
    site.route("/bad/loop2.jpg", redirect("/bad/loop.jpg"))
    site.route("/bad/private.jpg", redirect("http://10.0.0.1/x.jpg"))
    site.add("/bad/bomb.png", bomb.getvalue(), content_type="image/png")
    site.add("/bad/text.jpg", b"<html>not an image</html>", content_type="image/jpeg")
    site.add("/bad/typed.bin", jpeg("biden2.jpg"), content_type="text/html")
    site.route("/bad/huge.mp4", declared_length(10 * 1024**3))
    site.add("/bad/junk.html", bytes(range(256)) * 64, content_type="text/html")
    site.route_prefix("/maze/", maze())
    site.add(
        "/bad/",
        html(
            *(
                f'<img src="/bad/{n}">'
                for n in (
                    "endless.jpg",
                    "loop.jpg",
                    "private.jpg",
                    "bomb.png",
                    "text.jpg",
                    "typed.bin",
                    "huge.mp4",
                )
            ),
            '<img src="/img/biden.jpg">',
        ),
        content_type="text/html",
    )
    act(web_app, add_source, "url", site.url("/bad/"))
    act(web_app, add_source, "crawl", site.url("/maze/"), config={"depth": 100, "max_pages": 80})
    act(web_app, add_source, "url", site.url("/bad/junk.html"))
    monitor = Monitor(web_app)
    try:
        report, maze_report, junk_report = monitor.run_once()
    finally:
        monitor.close()
    assert maze_report.status == "done" and 10 <= maze_report.pages <= 81
    assert junk_report.status == "done" and junk_report.media_found == 0
    assert report.status == "done"
    assert site.url("/img/biden.jpg") in _sighted(web_app)
    assert site.url("/bad/typed.bin") in _sighted(web_app)  # sniffed, not trusted by type
    reasons = {e.split(": ", 1)[0].rsplit("/", 1)[-1]: e for e in report.errors}
    assert "too_large" in reasons["endless.jpg"] or "timeout" in reasons["endless.jpg"]
    assert "redirect_loop" in reasons["loop.jpg"]
    assert "blocked_address" in reasons["private.jpg"]
    assert "not_media" in reasons["text.jpg"]
    assert "too_large" in reasons["huge.mp4"], report.errors
    with web_app.db.session() as session:
        bomb_sighting = session.execute(
            select(Sighting).where(Sighting.location == site.url("/bad/bomb.png"))
        ).scalar_one()
        assert bomb_sighting.error and bomb_sighting.error.startswith("too_many_pixels")
        visits = session.execute(select(Visit).order_by(Visit.id)).scalars().all()
        assert [v.status for v in visits] == ["done"] * 3 and visits[0].failures >= 6
    web_app.close()


def test_unchanged_pages_are_fetched_conditionally_and_read_from_the_evidence(
    web_app: SafeEye, site: HostileServer
) -> None:
    from hostile_server import send

    page = html('<img src="/img/biden.jpg">')

    def with_etag(handler) -> None:  # type: ignore[no-untyped-def]
        if handler.headers.get("If-None-Match") == '"v1"':
            send(handler, 304, headers={"ETag": '"v1"'})
        else:
            send(handler, 200, page, content_type="text/html", headers={"ETag": '"v1"'})

    site.route("/etag.html", with_etag)
    source = act(
        web_app,
        add_source,
        "crawl",
        site.url("/etag.html"),
        config={"sitemaps": False},
        interval_seconds=60,
    )
    monitor = Monitor(web_app)
    try:
        monitor.run_once()
        act(web_app, make_due, source.id)
        (second,) = monitor.run_once()
    finally:
        monitor.close()
    conditional = [r.headers.get("if-none-match") for r in site.requests("/etag.html")]
    assert conditional == [None, '"v1"']
    assert second.status == "done" and second.pages == 1 and second.media_new == 0
    assert site.url("/img/biden.jpg") in _sighted(web_app)


def _states(app: SafeEye) -> dict[str, UrlState]:
    with app.db.session(read_only=True) as session:
        return {s.location: s for s in session.execute(select(UrlState)).scalars()}


def test_crafted_files_fail_alone_and_the_rest_of_their_page_is_scanned(
    web_app: SafeEye, tmp_path: Path
) -> None:
    gif = gif_cut_in_graphic_control_extension(tmp_path / "cut.gif").read_bytes()
    webp = webp_with_empty_frame_chunks(tmp_path / "crafted.webp").read_bytes()
    with HostileServer() as server:
        server.add("/crafted.gif", gif, content_type="image/gif")
        server.add("/crafted.webp", webp, content_type="image/webp")
        for i in range(2):
            server.add(f"/img/{i}.jpg", noise_jpeg(i), content_type="image/jpeg")
        server.add(
            "/",
            html(
                '<img src="/img/0.jpg">',
                '<img src="/crafted.gif">',
                '<img src="/crafted.webp">',
                '<img src="/img/1.jpg">',
            ),
            content_type="text/html",
        )
        act(web_app, add_source, "url", server.url("/"), interval_seconds=600)
        monitor = Monitor(web_app)
        try:
            (report,) = monitor.run_once()
        finally:
            monitor.close()
        crafted = [server.url("/crafted.gif"), server.url("/crafted.webp")]
        scanned = {server.url(f"/img/{i}.jpg") for i in (0, 1)}
    assert report.status == "done" and report.media_found == 4 and report.failures == 2
    states = _states(web_app)
    assert all(states[url].status == "failed" and states[url].error for url in crafted)
    assert all(states[url].status == "ok" for url in scanned)
    assert scanned <= _sighted(web_app)


class _AnalyzerBrokenBy(InlineAnalyzer):
    """The real analysis, except that analysing one content raises (a decoder's bug)."""

    def __init__(self, app: SafeEye, poison: bytes) -> None:
        super().__init__(app.settings, app.detectors)
        self.poison = poison

    def analyze_all(self, paths, hashes=None, *, local_features=True):  # type: ignore[no-untyped-def]
        if any(p.read_bytes() == self.poison for p in paths):
            raise IndexError("index out of range")
        return super().analyze_all(paths, hashes, local_features=local_features)


class _FetcherBrokenBy(Fetcher):
    """The real fetcher, except that fetching one URL raises something unforeseen."""

    def __init__(self, app: SafeEye, broken_url: str) -> None:
        super().__init__(fetch_policy(app.settings))
        self.broken_url = broken_url

    def fetch(self, url: str, **options):  # type: ignore[no-untyped-def]
        if url == self.broken_url:
            raise RuntimeError("a bug in the fetcher")
        return super().fetch(url, **options)


def test_whatever_one_item_raises_is_that_items_error_and_the_visit_completes(
    web_app: SafeEye, caplog: pytest.LogCaptureFixture
) -> None:
    poison = noise_jpeg(7)
    with HostileServer() as server:
        for i in range(4):
            server.add(f"/img/{i}.jpg", noise_jpeg(i), content_type="image/jpeg")
        server.add("/img/poison.jpg", poison, content_type="image/jpeg")
        links = ["/img/0.jpg", "/img/poison.jpg", "/img/1.jpg", "/img/broken.jpg", "/img/2.jpg"]
        server.add("/", html(*(f'<img src="{u}">' for u in links)), content_type="text/html")
        act(web_app, add_source, "url", server.url("/"), interval_seconds=600)
        runner = InProcessRunner(web_app)
        runner.context.__dict__["analyzer"] = _AnalyzerBrokenBy(web_app, poison)
        runner.context.__dict__["fetcher"] = _FetcherBrokenBy(
            web_app, server.url("/img/broken.jpg")
        )
        monitor = Monitor(web_app, runner=runner)
        try:
            (report,) = monitor.run_once()
        finally:
            monitor.close()
            runner.close()
        url = server.url
    assert report.status == "done" and report.media_found == 5 and report.failures == 2
    assert report.media_new == 4  # the poisoned file was seen; its analysis failed alone
    states = _states(web_app)
    assert states[url("/img/poison.jpg")].error == "internal: IndexError"
    assert states[url("/img/broken.jpg")].error == "internal: RuntimeError"
    assert {url(f"/img/{i}.jpg") for i in range(3)} | {url("/img/poison.jpg")} == _sighted(web_app)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "IndexError" in logged and "RuntimeError" in logged  # logged for the operator,
    assert "127.0.0.1" not in logged and "poison" not in logged  # without URLs or file names


def test_a_crawl_page_whose_reading_raises_fails_alone_and_the_crawl_goes_on(
    web_app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    import safeeye.ingest.crawl as crawl_module

    real_extract = crawl_module.extract_links

    def extract_links(body: bytes, url: str, charset: str | None = None):  # type: ignore[no-untyped-def]
        if url.endswith("/broken.html"):
            raise IndexError("a parser's bug")
        return real_extract(body, url, charset)

    monkeypatch.setattr(crawl_module, "extract_links", extract_links)
    with HostileServer() as server:
        server.add(
            "/",
            html('<a href="/broken.html">b</a>', '<a href="/fine.html">f</a>'),
            content_type="text/html",
        )
        server.add("/broken.html", html('<img src="/img/0.jpg">'), content_type="text/html")
        server.add("/fine.html", html('<img src="/img/1.jpg">'), content_type="text/html")
        for i in range(2):
            server.add(f"/img/{i}.jpg", noise_jpeg(i), content_type="image/jpeg")
        act(web_app, add_source, "crawl", server.url("/"), config={"sitemaps": False})
        monitor = Monitor(web_app)
        try:
            (report,) = monitor.run_once()
        finally:
            monitor.close()
        broken, found = server.url("/broken.html"), server.url("/img/1.jpg")
    assert report.status == "done" and report.failures == 1
    assert report.errors == [f"{broken}: internal: IndexError"]
    assert _sighted(web_app) == {found}


def test_a_visit_out_of_time_ends_incomplete_and_the_next_ones_carry_on(
    tmp_path: Path, detectors: Detectors
) -> None:
    settings = make_settings(
        tmp_path / "data",
        fetch_allowlist=("127.0.0.1",),
        fetch_host_interval=0.0,
        visit_budget_seconds=0.001,  # every visit runs out of time after its first batch
    )
    app = make_app(settings, detectors)
    with HostileServer() as server:
        for i in range(6):
            server.add(f"/img/{i}.jpg", noise_jpeg(i), content_type="image/jpeg")
        server.add(
            "/big/",
            html(*(f'<img src="/img/{i}.jpg">' for i in range(5))),
            content_type="text/html",
        )
        server.add("/small/", html('<img src="/img/5.jpg">'), content_type="text/html")
        big = act(app, add_source, "url", server.url("/big/"), interval_seconds=600)
        small = act(app, add_source, "url", server.url("/small/"), interval_seconds=600)
        monitor = Monitor(app, batch_size=2)
        try:
            cycles = [monitor.run_once() for _ in range(3)]
            hits_after_resumed_visits = [server.hits(f"/img/{i}.jpg") for i in range(6)]
            with app.db.session(read_only=True) as session:
                through = session.get(Source, big.id)
            act(app, make_due, big.id)  # a visit after the work was through starts from the top
            (again,) = monitor.run_once()
        finally:
            monitor.close()
        sighted = {server.url(f"/img/{i}.jpg") for i in range(6)}
    seen = [[(r.source_id, r.status, r.media_found, r.skipped) for r in c] for c in cycles]
    assert seen == [
        [(big.id, "incomplete", 2, 0), (small.id, "done", 1, 0)],  # the other source's turn
        [(big.id, "incomplete", 2, 2)],
        [(big.id, "done", 1, 4)],
    ]
    assert hits_after_resumed_visits == [1] * 6  # nothing was fetched twice
    assert _sighted(app) == sighted
    assert through is not None and through.resume_since is None
    assert through.next_due_at is not None and through.next_due_at > utcnow()
    assert (again.status, again.media_found, again.skipped) == ("incomplete", 2, 0)
    app.close()
