"""A site crawl: seed URLs, a scope of hosts and path patterns, depth and page limits,
sitemaps and RSS/Atom feeds; every image and video found in scope.

A crawl is not discovered in one go: a visit starts it and ``fetch_page`` tasks read it page by
page over a frontier kept in the database (``tasks/crawling.py``). This kind gives them the
crawl's rules (``crawler``), its start URLs, and how one of its pages is fetched (``fetch``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from safeeye.db.models import Source
from safeeye.errors import ConflictError, FetchError
from safeeye.ingest.crawl import (
    Crawler,
    CrawlLimits,
    CrawlState,
    FetchedPage,
    MediaFound,
    QueuedUrl,
    page_kind,
)
from safeeye.ingest.scope import CrawlScope, check_glob
from safeeye.ingest.sources.base import (
    Candidate,
    FetchConfig,
    SourceKind,
    VisitContext,
    WebUrl,
)
from safeeye.ingest.sources.url import web_locator

MIME_OF_SNIFFED = {"image": "image/", "video": "video/"}

Glob = Annotated[str, AfterValidator(check_glob)]


class CrawlConfig(FetchConfig):
    """A site crawl from the source's URL (and ``seeds``): every start URL is visited; links
    are followed while ``include`` (path globs; none: the whole site) and not ``exclude``
    allow them (``ingest.scope``), up to ``depth`` links away and ``max_pages`` fetches."""

    seeds: tuple[WebUrl, ...] = Field(default=(), max_length=100)
    include: tuple[Glob, ...] = Field(default=(), max_length=100)
    exclude: tuple[Glob, ...] = Field(default=(), max_length=100)
    depth: int = Field(default=3, ge=0, le=1000)
    max_pages: int = Field(default=500, ge=1, le=1_000_000)
    max_pages_per_prefix: int = Field(default=250, ge=1, le=1_000_000)  # a link-maze defence
    max_seconds: float | None = Field(default=None, gt=0)
    sitemaps: bool = True
    feeds: bool = True


class CrawlSource(SourceKind[CrawlConfig]):
    name: ClassVar[str] = "crawl"
    Config = CrawlConfig

    def locator(self, text: str) -> str:
        return web_locator(text)

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        """Not used: a crawl's media are found page by page by ``fetch_page`` tasks over its
        frontier, which a visit starts (``tasks.crawling.start_crawl``)."""
        raise ConflictError("a crawl runs as page tasks; a visit starts it", code="crawl_is_tasks")

    def seeds(self, source: Source) -> list[str]:
        """The crawl's start URLs: the source's URL and its ``seeds``."""
        return [source.locator, *self.config(source).seeds]

    def crawler(self, source: Source, state: CrawlState | None = None) -> Crawler:
        """The crawl's rules (scope, limits, feeds) from the source's config, over ``state``."""
        config = self.config(source)
        scope = CrawlScope.for_seeds(
            self.seeds(source), include=config.include, exclude=config.exclude
        )
        limits = CrawlLimits(
            max_depth=config.depth,
            max_pages=config.max_pages,
            max_seconds=config.max_seconds,
            max_pages_per_prefix=config.max_pages_per_prefix,
        )
        return Crawler(scope, limits, state, feeds=config.feeds)

    def fetch(self, ctx: VisitContext, url: str, source: Source) -> tuple[FetchedPage, int | None]:
        """Fetch one page of the crawl with the source's politeness and robots rules, keeping it
        as evidence: the page and its kept page's id (None for media behind a page-looking
        link, which is not kept as a page). Raises what the fetch raised (``FetchError``)."""
        result, body, page_id, content_type = ctx.fetch_page(
            url,
            obey_robots=self.config(source).obey_robots,
            max_bytes=ctx.fetcher.policy.max_page_bytes,
        )
        with result:
            if page_id is None:  # media behind a page-looking link
                sniffed = result.sniffed
                mime = MIME_OF_SNIFFED[sniffed.kind] + sniffed.format if sniffed else None
                page = FetchedPage(url, result.final_url, result.status, mime, b"", "other")
                return page, None
            kind = page_kind(content_type, body)
            status = 200 if result.not_modified else result.status
            return FetchedPage(url, result.final_url, status, content_type, body, kind), page_id

    def describe(self, source: Source) -> str:
        config = self.config(source)
        scope = ",".join(config.include) or "whole site"
        return f"{source.locator} (depth {config.depth}, {scope})"


def missing_sitemap(queued: QueuedUrl, failure: BaseException) -> bool:
    """Whether ``failure`` only says that a host has no ``/sitemap.xml``: no failure at all."""
    probe = queued.found == "seed" and queued.role == "sitemap"
    return probe and isinstance(failure, FetchError) and failure.code == "http_status"


def media_candidate(found: MediaFound, page_id: int | None) -> Candidate:
    """A media file the crawl found, as the monitor and ``fetch_media`` take it."""
    link = found.link
    return Candidate(
        location=link.url,
        url=link.url,
        page_url=link.page_url,
        page_id=page_id,
        how=link.how,
        evidence={"depth": found.depth},
    )
