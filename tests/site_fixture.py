"""An in-memory test site for the crawler: pages, media, sitemaps, feeds and crawler traps.

``build_site()`` returns a ``FakeSite`` whose ``fetch`` serves it like a fetcher would (Content-
Type decides "html", everything else is "other" and left to the crawler to sniff), plus the
exact set of media URLs a crawl of it must report. Nothing touches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from safeeye.ingest.crawl import FetchedPage
from safeeye.ingest.urls import normalize_url

SITE = "https://site.example"
CDN = "https://cdn.example"
OTHER = "https://other.example"

HOME = f"""<!doctype html><html><head><title>home</title>
<meta property="og:image" content="/img/og-cover.jpg">
<link rel="alternate" type="application/rss+xml" href="/feed.xml">
<link rel="alternate" type="application/atom+xml" href="/atom.xml">
</head><body>
<a href="/gallery/">gallery</a> <a href="HTTPS://SITE.EXAMPLE:443/gallery/#top">again</a>
<a href="/videos/">videos</a> <a href="/base-test/page.html">base</a>
<a href="/broken.html">broken</a> <a href="/junk.html">junk</a>
<a href="/about?PHPSESSID=abc123">about</a> <a href="/about#team">about again</a>
<a href="/private/secret.html">private</a> <a href="{OTHER}/page.html">elsewhere</a>
<a href="/go-away">moved</a> <a href="/missing.html">gone</a>
<a href="/maze/">maze</a> <a href="/calendar?month=0">calendar</a>
<a href="javascript:alert(1)">js</a> <a href="mailto:x@site.example">mail</a>
<img src="data:image/png;base64,iVBORw0KGgo=">
</body></html>"""

GALLERY = f"""<html><body>
<img src="g1.jpg" srcset="g1-2x.jpg 2x, /gallery/g1-small.jpg 480w" alt="">
<picture><source type="image/avif" srcset="/gallery/p1.avif">
<source srcset="/gallery/p1.webp 1x, /gallery/p1@2x.webp 2x"><img src="/gallery/p1.jpg"></picture>
<img data-src="/gallery/lazy.png" src="/img/placeholder.gif">
<img src="{CDN}/g/c1.jpg"><img src="//cdn.example/g/c2.jpg?w=800&utm_source=x">
<a href="/gallery/full/1.JPG#zoom">full size</a> <a href="/gallery/full/1.JPG">same</a>
<a href="/">home</a>
</body></html>"""

VIDEOS = """<html><body>
<video src="/vid/v1.mp4" poster="/vid/v1-poster.jpg"></video>
<video controls><source src="/vid/v2.webm" type="video/webm"></video>
<audio><source src="/audio/song.mp3"></audio>
<a href="/vid/v3.mov">download</a>
<iframe src="/videos/embed/1"></iframe>
</body></html>"""

EMBED = """<html><body><video><source src="/vid/embed.m4v"></video></body></html>"""
BASE_TEST = """<html><head><base href="https://site.example/assets/"></head>
<body><img src="b1.png"><a href="../gallery/">up</a></body></html>"""
BROKEN = """<html><body><div><img src="/img/broken1.jpg" <p>unclosed <a href=/about>x
<table><tr><td><img src=/img/broken2.png></td></tr><!-- never closed comment <img src=/img/x.png>
"""
ABOUT = """<html><body><p>about us</p><img src="/img/team.webp"></body></html>"""
PRIVATE = """<html><body><img src="/img/private.jpg"></body></html>"""
OTHER_PAGE = """<html><body><img src="https://other.example/img/other.jpg"></body></html>"""
UNLINKED = """<html><body><img src="/img/unlinked.png"></body></html>"""
POST_1 = """<html><body><img src="/img/post1.jpg"></body></html>"""
POST_2 = """<html><head><meta name="twitter:image" content="https://cdn.example/t/post2-card.png">
</head><body><img src="/img/post2.jpg"></body></html>"""

SITEMAP_INDEX = """<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>https://site.example/sitemaps/pages.xml.gz</loc></sitemap>
<sitemap><loc>https://site.example/sitemaps/images.xml</loc></sitemap>
<sitemap><loc>https://site.example/sitemaps/bomb.xml</loc></sitemap>
</sitemapindex>"""

SITEMAP_PAGES = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>https://site.example/unlinked.html</loc></url>
<url><loc>https://site.example/gallery/</loc></url>
</urlset>"""

SITEMAP_IMAGES = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
  xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"
  xmlns:video="http://www.google.com/schemas/sitemap-video/1.1">
<url><loc>https://site.example/hidden/album.html</loc>
  <image:image><image:loc>https://site.example/img/sitemap-only.jpg</image:loc></image:image>
  <video:video><video:thumbnail_loc>https://site.example/vid/sitemap-thumb.jpg</video:thumbnail_loc>
  <video:content_loc>https://site.example/vid/sitemap-only.mp4</video:content_loc></video:video>
</url>
<url><loc>https://site.example/private/listed.html</loc>
  <image:image><image:loc>https://site.example/img/private-sitemap.jpg</image:loc></image:image>
</url>
</urlset>"""

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
<!ENTITY lol "lol">
<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>https://site.example/&lol9;</loc>
<image:image xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
<image:loc>https://site.example/img/bomb.jpg</image:loc></image:image></url>
</urlset>"""

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
  xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>blog</title><link>https://site.example/</link>
<item><title>one</title><link>https://site.example/blog/post-1.html</link>
  <enclosure url="https://site.example/media/podcast-video.mp4" type="video/mp4" length="1"/>
  <media:content url="https://site.example/media/feed-content.jpg" medium="image"/>
  <media:thumbnail url="https://site.example/media/feed-thumb.jpg"/>
  <description>&lt;p&gt;look &lt;img src="/img/from-description.jpg"&gt;&lt;/p&gt;</description>
</item>
<item><title>a podcast</title><link>https://site.example/blog/post-1.html</link>
  <enclosure url="https://site.example/audio/episode.mp3" type="audio/mpeg" length="1"/>
</item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>atom</title>
<link rel="self" href="https://site.example/atom.xml"/>
<entry><title>two</title><link rel="alternate" href="/blog/post-2.html"/>
  <link rel="enclosure" type="video/webm" href="/media/atom-enclosure.webm"/>
  <content type="html">&lt;img src="https://site.example/img/atom-content.gif"&gt;</content>
</entry></feed>"""

# Every media file a crawl of the site (depth 3) must report, and no other.
EXPECTED_MEDIA = frozenset(
    SITE + path
    for path in (
        "/img/og-cover.jpg",
        "/gallery/g1.jpg",
        "/gallery/g1-2x.jpg",
        "/gallery/g1-small.jpg",
        "/gallery/p1.avif",
        "/gallery/p1.webp",
        "/gallery/p1@2x.webp",
        "/gallery/p1.jpg",
        "/gallery/lazy.png",
        "/img/placeholder.gif",
        "/gallery/full/1.JPG",
        "/vid/v1.mp4",
        "/vid/v1-poster.jpg",
        "/vid/v2.webm",
        "/vid/v3.mov",
        "/vid/embed.m4v",
        "/assets/b1.png",
        "/img/broken1.jpg",
        "/img/broken2.png",
        "/img/junk-before.gif",
        "/img/team.webp",
        "/img/sitemap-only.jpg",
        "/vid/sitemap-only.mp4",
        "/vid/sitemap-thumb.jpg",
        "/img/unlinked.png",
        "/media/podcast-video.mp4",
        "/media/feed-content.jpg",
        "/media/feed-thumb.jpg",
        "/img/from-description.jpg",
        "/img/post1.jpg",
        "/media/atom-enclosure.webm",
        "/img/atom-content.gif",
        "/img/post2.jpg",
    )
) | {f"{CDN}/g/c1.jpg", f"{CDN}/g/c2.jpg?w=800", f"{CDN}/t/post2-card.png"}

# Media that exist on the site's servers but must never be reported.
FORBIDDEN_MEDIA = frozenset(
    {
        f"{SITE}/img/private.jpg",
        f"{SITE}/img/private-sitemap.jpg",
        f"{SITE}/img/bomb.jpg",
        f"{SITE}/img/x.png",
        f"{SITE}/audio/song.mp3",
        f"{SITE}/audio/episode.mp3",
        f"{OTHER}/img/other.jpg",
        f"{OTHER}/img/moved.jpg",
    }
)


@dataclass
class FakeSite:
    """Serves an in-memory site, records every fetch, and generates the trap sections."""

    pages: dict[str, tuple[str, bytes]]
    redirects: dict[str, str] = field(default_factory=dict)
    fetched: list[str] = field(default_factory=list)
    raise_for: frozenset[str] = frozenset()

    def fetch(self, url: str) -> FetchedPage | None:
        self.fetched.append(url)
        if url in self.raise_for:
            raise ConnectionError("connection reset")
        final = self.redirects.get(url, url)
        served = self.pages.get(final) or _generated(final)
        if served is None:
            return FetchedPage(url, final, 404, "text/html", b"<h1>not found</h1>", "html")
        content_type, body = served
        kind = "html" if content_type.startswith("text/html") else "other"
        return FetchedPage(url, final, 200, content_type, body, kind)

    def fetched_under(self, prefix: str) -> list[str]:
        return [url for url in self.fetched if url.startswith(SITE + prefix)]


def _generated(url: str) -> tuple[str, bytes] | None:
    """The endless sections: a link maze and a calendar with ever-new query strings."""
    parts = urlsplit(url)
    if parts.netloc != "site.example":
        return None
    if parts.path.startswith("/maze/"):
        children = [hashlib.sha1(f"{url}{i}".encode()).hexdigest()[:8] for i in (0, 1)]
        links = "".join(f'<a href="{c}/">{c}</a>' for c in children)
        return "text/html", f"<html><body>{links}</body></html>".encode()
    if parts.path == "/calendar":
        month = int(parse_qs(parts.query).get("month", ["0"])[0])
        links = (
            f'<a href="/calendar?month={month + 1}">next</a>'
            f'<a href="/calendar?month={month - 1}&sid=s{month}">prev</a>'
        )
        return "text/html", f"<html><body>{links}</body></html>".encode()
    return None


def build_site() -> FakeSite:
    """The test site described in the module docstring."""
    junk = b'<html><body><img src="/img/junk-before.gif">' + random.Random(7).randbytes(300_000)
    html = {
        "/": HOME,
        "/gallery/": GALLERY,
        "/videos/": VIDEOS,
        "/videos/embed/1": EMBED,
        "/base-test/page.html": BASE_TEST,
        "/broken.html": BROKEN,
        "/about": ABOUT,
        "/private/secret.html": PRIVATE,
        "/unlinked.html": UNLINKED,
        "/blog/post-1.html": POST_1,
        "/blog/post-2.html": POST_2,
    }
    pages: dict[str, tuple[str, bytes]] = {
        SITE + path: ("text/html; charset=utf-8", body.encode()) for path, body in html.items()
    }
    pages[SITE + "/junk.html"] = ("text/html", junk)
    pages[OTHER + "/page.html"] = ("text/html", OTHER_PAGE.encode())
    pages[OTHER + "/moved.html"] = ("text/html", b'<img src="/img/moved.jpg">')
    pages[SITE + "/sitemap.xml"] = ("application/xml", SITEMAP_INDEX.encode())
    pages[SITE + "/sitemaps/pages.xml.gz"] = (
        "application/x-gzip",
        gzip.compress(SITEMAP_PAGES.encode()),
    )
    pages[SITE + "/sitemaps/images.xml"] = ("text/xml", SITEMAP_IMAGES.encode())
    pages[SITE + "/sitemaps/bomb.xml"] = ("application/xml", BILLION_LAUGHS.encode())
    pages[SITE + "/feed.xml"] = ("application/rss+xml", RSS.encode())
    pages[SITE + "/atom.xml"] = ("application/atom+xml", ATOM.encode())
    assert all(normalize_url(url) == url for url in pages)
    return FakeSite(pages, redirects={SITE + "/go-away": OTHER + "/moved.html"})
