"""The site crawl: breadth-first discovery of every image and video within a ``CrawlScope``.

Pure logic: the caller's ``fetch_page`` does all I/O (and robots.txt, rate limits, address
checks), so the crawl runs the same against the network, a local server or a dict in a test.
One page's step is two calls on a ``Crawler``: ``read`` (what the fetched page offers and
links; changes nothing) and ``take`` (into the crawl's ``CrawlState``: queue what is new, in
scope and within the limits, report each media once). ``crawl`` loops over that step in memory
and yields events as it goes (its state can be saved with ``to_json`` between events and handed
back to resume); ``tasks/crawling.py`` runs the same step one page per task, over a frontier kept
in the database.

Defences against crawler traps (generated link mazes, calendars, session ids in URLs): the depth
and page limits, URL normalisation (which drops session and tracking parameters), a cap on
distinct query strings per path, a page budget per path prefix (host plus first directory, so
that one endless section cannot starve the rest of the site), a cap on path segments, and
refusing paths whose segments repeat (``/a/b/a/b/a/b/a``).
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from safeeye.errors import SafeEyeError
from safeeye.ingest.feeds import parse_feed
from safeeye.ingest.links import MediaLink, charset_of, extract_links
from safeeye.ingest.scope import CrawlScope
from safeeye.ingest.sitemaps import parse_sitemap, xml_root_name
from safeeye.ingest.urls import normalize_url

PageKind = Literal["html", "sitemap", "feed", "other"]
Role = Literal["page", "sitemap", "feed"]
#: How a URL came into the frontier: a start URL (or the sitemap probe of its host), a link of an
#: HTML page, an entry of a sitemap or of a feed, or where a page redirected to.
Found = Literal["seed", "link", "sitemap", "feed", "redirect"]
_MAX_SEGMENT_REPEATS = 3
_FRONTIER_FULL = "max_pages|frontier full"
_SITEMAP_ROOTS = frozenset({"urlset", "sitemapindex"})
_FEED_ROOTS = frozenset({"rss", "feed", "RDF"})
_STATE_VERSION = 2


@dataclass(frozen=True)
class FetchedPage:
    """What the caller's fetch function returns for one URL (after following redirects)."""

    url: str
    final_url: str
    status: int
    content_type: str | None
    body: bytes
    kind: PageKind


@dataclass(frozen=True)
class CrawlLimits:
    """Bounds on one crawl. ``max_pages`` counts every fetch (sitemaps, feeds and failures too)."""

    max_depth: int = 3
    max_pages: int = 500
    max_media: int = 20000
    max_url_length: int = 2048
    max_query_variants_per_path: int = 20
    max_seconds: float | None = None
    max_pages_per_prefix: int = 250
    max_path_segments: int = 16


@dataclass(frozen=True)
class PageVisited:
    """A page, feed or sitemap was fetched and read; ``url`` is where it ended up."""

    url: str
    depth: int
    status: int
    links_found: int


@dataclass(frozen=True)
class MediaFound:
    """An in-scope image or video, reported once per URL; ``depth`` is its page's depth."""

    link: MediaLink
    depth: int


@dataclass(frozen=True)
class PageFailed:
    """A URL that could not be fetched or read; the crawl goes on without it."""

    url: str
    reason: str


@dataclass(frozen=True)
class LimitReached:
    """A limit stopped the crawl (``max_pages``, ``max_media``, ``max_seconds``) or pruned it
    (``max_depth``, ``max_query_variants_per_path``, ``max_pages_per_prefix``, ...)."""

    which: str
    detail: str = ""


CrawlEvent = PageVisited | MediaFound | PageFailed | LimitReached
FetchPage = Callable[[str], FetchedPage | None]


@dataclass(frozen=True)
class QueuedUrl:
    """A URL waiting in the frontier: what it is expected to be, who linked to it and how."""

    url: str
    depth: int
    role: Role
    referrer: str | None = None
    found: Found = "link"

    @property
    def is_seed(self) -> bool:
        """Whether this is a start page: the only pages at depth 0 (linked, listed and fed
        pages are one deeper than what listed them)."""
        return self.role == "page" and self.depth == 0 and self.referrer is None


@dataclass(frozen=True)
class PageRead:
    """One fetched page as the crawl reads it: where it ended up (``url``, normalised), the
    URLs it offers to the frontier and the media it links; or, with ``failure``, why it was not
    read. A page that failed before the crawl accepted where it ended up keeps the queued URL."""

    queued: QueuedUrl
    url: str
    status: int = 0
    offers: tuple[QueuedUrl, ...] = ()
    media: tuple[MediaLink, ...] = ()
    failure: str | None = None


@dataclass
class CrawlState:
    """The crawl's progress as plain data: save it with ``to_json`` and resume with it.

    The URL at the head of ``frontier`` leaves it only after all its events were yielded, so a
    crawl stopped mid-page (or after its state was saved mid-page) reads that page again.
    ``queued`` (URLs ever queued) and ``media_found`` are counted apart from ``seen`` and
    ``media_seen`` because a crawl kept in a database loads only the part of those sets that one
    page's step asks about.
    """

    frontier: deque[QueuedUrl] = field(default_factory=deque)
    seen: set[str] = field(default_factory=set)
    media_seen: set[str] = field(default_factory=set)
    pages_fetched: int = 0
    query_variants: dict[str, int] = field(default_factory=dict)
    prefix_pages: dict[str, int] = field(default_factory=dict)
    limits_reported: set[str] = field(default_factory=set)
    queued: int = 0
    media_found: int = 0

    def to_json(self) -> str:
        """The state as a JSON document."""
        return json.dumps(
            {
                "version": _STATE_VERSION,
                "frontier": [[q.url, q.depth, q.role, q.referrer, q.found] for q in self.frontier],
                "seen": sorted(self.seen),
                "media_seen": sorted(self.media_seen),
                "pages_fetched": self.pages_fetched,
                "queued": self.queued,
                "media_found": self.media_found,
                **self.traps(),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CrawlState:
        """The state saved by ``to_json``; ValueError if ``text`` is not one."""
        try:
            data = json.loads(text)
            if data.get("version") != _STATE_VERSION:
                raise ValueError("unknown crawl state version")
            frontier = deque(
                QueuedUrl(str(url), int(depth), role, None if ref is None else str(ref), found)
                for url, depth, role, ref, found in data["frontier"]
                if role in get_args(Role) and found in get_args(Found)
            )
            state = cls(
                frontier=frontier,
                seen=set(map(str, data["seen"])),
                media_seen=set(map(str, data["media_seen"])),
                pages_fetched=int(data["pages_fetched"]),
                queued=int(data["queued"]),
                media_found=int(data["media_found"]),
            )
            state.load_traps(data)
            return state
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a crawl state: {exc}") from exc

    def traps(self) -> dict[str, Any]:
        """The trap defences' counts and the limits reported, as JSON-ready data."""
        return {
            "query_variants": self.query_variants,
            "prefix_pages": self.prefix_pages,
            "limits_reported": sorted(self.limits_reported),
        }

    def load_traps(self, data: dict[str, Any]) -> None:
        """Take back what ``traps`` gave (KeyError, TypeError or AttributeError if it is not)."""
        self.query_variants = {str(k): int(v) for k, v in data["query_variants"].items()}
        self.prefix_pages = {str(k): int(v) for k, v in data["prefix_pages"].items()}
        self.limits_reported = set(map(str, data["limits_reported"]))


def page_kind(content_type: str | None, body: bytes) -> PageKind:
    """How to read a response: by its Content-Type, then by its first element (for XML)."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in ("text/html", "application/xhtml+xml"):
        return "html"
    if mime.startswith(("image/", "video/", "audio/")):
        return "other"
    root = xml_root_name(body)
    if root in _SITEMAP_ROOTS:
        return "sitemap"
    if root in _FEED_ROOTS:
        return "feed"
    head = body[:1024].lower()
    if root == "html" or b"<html" in head or b"<!doctype html" in head:
        return "html"
    return "other"


def crawl(
    seeds: Iterable[str],
    scope: CrawlScope,
    limits: CrawlLimits,
    fetch_page: FetchPage,
    *,
    sitemaps: bool = True,
    feeds: bool = True,
    state: CrawlState | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[CrawlEvent]:
    """Crawl from ``seeds`` breadth-first within ``scope`` and ``limits``, yielding events.

    Seeds are depth 0 and are always visited, even outside the scope's path patterns: the
    scope decides which links are followed, not whether the start pages are read. With
    ``sitemaps``, ``/sitemap.xml`` of each seed's host is read too (its pages are depth 1);
    with ``feeds``, feeds a page declares are followed. Every fetched body is read by its kind
    (HTML, sitemap, feed); an image or video served at a page URL is reported as media of the
    page that linked it. No normalised URL is fetched twice, and each media URL is reported
    once. A fetch that returns None or raises is a ``PageFailed``.
    Pass a ``state`` (fresh or from ``CrawlState.from_json``) to observe or resume the crawl.
    """
    crawler = Crawler(scope, limits, state, feeds=feeds)
    return _run(crawler, list(seeds), sitemaps, fetch_page, clock)


def _run(
    crawler: Crawler,
    seeds: list[str],
    sitemaps: bool,
    fetch_page: FetchPage,
    clock: Callable[[], float],
) -> Iterator[CrawlEvent]:
    """The in-memory crawl: one page's step after the other, from the head of the frontier."""
    start = clock()
    state, limits = crawler.state, crawler.limits
    yield from crawler.seed(seeds, sitemaps)
    frontier = state.frontier
    while frontier:
        if state.pages_fetched >= limits.max_pages:
            yield LimitReached("max_pages")
            return
        seconds = limits.max_seconds
        if seconds is not None and clock() - start >= seconds:
            yield LimitReached("max_seconds")
            return
        queued = frontier[0]
        state.pages_fetched += 1
        yield from crawler.take(crawler.read(queued, _fetch(fetch_page, queued.url)))
        if crawler.stopped:
            yield LimitReached(crawler.stopped)
            return
        frontier.popleft()
    if _FRONTIER_FULL in state.limits_reported:
        yield LimitReached("max_pages")


def _fetch(fetch_page: FetchPage, url: str) -> FetchedPage | BaseException | None:
    try:
        return fetch_page(url)
    except Exception as exc:  # one page's failure, whatever it is, must not end the crawl
        return exc


class Crawler:
    """One crawl's rules (scope, limits, whether feeds are followed) over its ``state``: the
    per-page step that ``crawl`` loops over and ``tasks/crawling.py`` runs as a task."""

    def __init__(
        self,
        scope: CrawlScope,
        limits: CrawlLimits,
        state: CrawlState | None = None,
        *,
        feeds: bool = True,
    ) -> None:
        self.scope = scope
        self.limits = limits
        self.feeds = feeds
        self.state = state or CrawlState()
        #: The limit that ended the crawl (``max_media``), once one did.
        self.stopped: str | None = None

    def seed(self, seeds: Iterable[str], sitemaps: bool) -> Iterator[CrawlEvent]:
        """Queue the start URLs (always visited, even outside the scope's path patterns) and,
        with ``sitemaps``, ``/sitemap.xml`` of each of their hosts."""
        origins: dict[str, None] = {}
        for seed in seeds:
            url = self._normalize(seed)
            if url is None:
                yield PageFailed(seed[:200], "not a crawlable http(s) URL")
                continue
            origins.setdefault(url[: url.index("/", url.index("//") + 2)])
            yield from self._offer(QueuedUrl(url, 0, "page", None, "seed"), seed=True)
        if sitemaps:
            for origin in origins:
                yield from self._offer(
                    QueuedUrl(f"{origin}/sitemap.xml", 0, "sitemap", None, "seed")
                )

    def read(self, queued: QueuedUrl, fetched: FetchedPage | BaseException | None) -> PageRead:
        """What fetching ``queued`` gave (the page, None when the fetch failed, or what it
        raised), read by the body's kind; changes no state. A parser's bug raises."""
        if isinstance(fetched, BaseException):
            reason = (
                fetched.as_text() if isinstance(fetched, SafeEyeError) else type(fetched).__name__
            )
            return PageRead(queued, queued.url, failure=f"fetch raised {reason}")
        if fetched is None:
            return PageRead(queued, queued.url, failure="fetch failed")
        if fetched.status >= 400:
            return PageRead(queued, queued.url, failure=f"HTTP {fetched.status}")
        url = self._normalize(fetched.final_url) or queued.url
        if url != queued.url:
            allowed = self.scope.allows_index
            if queued.role == "page":
                allowed = self.scope.allows_host if queued.is_seed else self.scope.allows_page
            if not allowed(url):
                return PageRead(queued, queued.url, failure="redirected out of scope")
        try:
            offers, media = self._read(fetched, url, queued)
        except SafeEyeError as exc:
            return PageRead(queued, url, fetched.status, failure=exc.as_text())
        return PageRead(queued, url, fetched.status, tuple(offers), tuple(media))

    def take(self, read: PageRead) -> Iterator[CrawlEvent]:
        """Take one page's reading into the crawl's state: the page once (a redirect to a URL
        the crawl has seen reads nothing new), what it offers queued unless seen, out of scope
        or caught by a trap defence, and each of its media reported once within ``max_media``.
        State changes as the events are consumed."""
        queued, url, state = read.queued, read.url, self.state
        if url != queued.url:
            if url in state.seen:  # a redirect to a page queued or read on its own
                yield PageVisited(url, queued.depth, read.status, 0)
                return
            state.seen.add(url)
        if read.failure is not None:
            yield PageFailed(url, read.failure)
            return
        pruned = [event for offer in read.offers for event in self._offer(offer)]
        yield PageVisited(url, queued.depth, read.status, len(read.offers) + len(read.media))
        yield from pruned
        for link in read.media:
            found = self._media(link, queued.depth)
            if self.stopped:
                return
            if found is not None:
                yield found

    def _normalize(self, url: str, base: str | None = None) -> str | None:
        return normalize_url(url, base, max_length=self.limits.max_url_length)

    def _read(
        self, page: FetchedPage, url: str, queued: QueuedUrl
    ) -> tuple[list[QueuedUrl], list[MediaLink]]:
        """The URLs to offer to the frontier and the media linked, by the body's kind."""
        depth = queued.depth
        kind = page.kind
        if kind != "html":
            sniffed = page_kind(page.content_type, page.body)
            kind = sniffed if sniffed != "other" else kind
        if kind == "other" and queued.role != "page" and not _is_media_type(page.content_type):
            kind = queued.role  # read what was asked for as a sitemap or feed as one, or fail
        if kind == "html":
            links = extract_links(page.body, url, charset_of(page.content_type))
            offers = [QueuedUrl(u, depth + 1, "page", url) for u in links.pages]
            if self.feeds:
                offers += [QueuedUrl(u, depth + 1, "feed", url) for u in links.feeds]
            return offers, list(links.media)
        if kind == "sitemap":
            sitemap = parse_sitemap(page.body, url)
            offers = [QueuedUrl(u, depth, "sitemap", url, "sitemap") for u in sitemap.sitemaps]
            offers += [QueuedUrl(u, depth + 1, "page", url, "sitemap") for u in sitemap.pages]
            media = [m for m in sitemap.media if self.scope.allows_page(m.page_url)]
            return offers, media
        if kind == "feed":
            feed = parse_feed(page.body, url)
            media = [
                m if self.scope.allows_page(m.page_url) else replace(m, page_url=url)
                for m in feed.media
            ]
            return [QueuedUrl(u, depth + 1, "page", url, "feed") for u in feed.pages], media
        if _is_media_type(page.content_type):
            return [], [MediaLink(url, queued.referrer or url, "direct")]
        return [], []

    def _offer(self, queued: QueuedUrl, *, seed: bool = False) -> list[LimitReached]:
        """Queue ``queued`` unless seen, out of scope (seeds never are) or caught by a trap
        defence."""
        state, limits, url = self.state, self.limits, queued.url
        if url in state.seen or len(url) > limits.max_url_length:
            return []
        if queued.depth > limits.max_depth:
            return self._limit("max_depth")
        allowed = self.scope.allows_page if queued.role == "page" else self.scope.allows_index
        if not seed and not allowed(url):
            return []
        parts = urlsplit(url)
        segments = [s for s in parts.path.split("/") if s]
        if len(segments) > limits.max_path_segments:
            return self._limit("max_path_segments")
        if segments and max(Counter(segments).values()) > _MAX_SEGMENT_REPEATS:
            return self._limit("repeating_path")
        if state.queued >= limits.max_pages:
            # BFS would never reach it in this run; not queuing it keeps memory bounded. The
            # crawl reports max_pages when it ends.
            state.limits_reported.add(_FRONTIER_FULL)
            return []
        path_key = parts.netloc + parts.path
        variants = state.query_variants.get(path_key, 0)
        if parts.query and variants >= limits.max_query_variants_per_path:
            return self._limit("max_query_variants_per_path", path_key)
        directory = parts.path.rsplit("/", 1)[0].split("/")
        prefix = f"{parts.netloc}/{directory[1] if len(directory) > 1 else ''}"
        if state.prefix_pages.get(prefix, 0) >= limits.max_pages_per_prefix:
            return self._limit("max_pages_per_prefix", prefix)
        if parts.query:
            state.query_variants[path_key] = variants + 1
        state.prefix_pages[prefix] = state.prefix_pages.get(prefix, 0) + 1
        state.seen.add(url)
        state.frontier.append(queued)
        state.queued += 1
        return []

    def _limit(self, which: str, detail: str = "") -> list[LimitReached]:
        key = f"{which}|{detail}"
        if key in self.state.limits_reported:
            return []
        self.state.limits_reported.add(key)
        return [LimitReached(which, detail)]

    def _media(self, link: MediaLink, depth: int) -> MediaFound | None:
        state = self.state
        if link.url in state.media_seen or len(link.url) > self.limits.max_url_length:
            return None
        if not self.scope.allows_media(link.url):
            return None
        if state.media_found >= self.limits.max_media:
            self.stopped = "max_media"
            return None
        state.media_seen.add(link.url)
        state.media_found += 1
        return MediaFound(link, depth)


def _is_media_type(content_type: str | None) -> bool:
    return (content_type or "").strip().lower().startswith(("image/", "video/"))
