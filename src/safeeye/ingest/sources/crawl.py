"""A site crawl: seed URLs, a scope of hosts and path patterns, depth and page limits,
sitemaps and RSS/Atom feeds; every image and video found in scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from safeeye.db.models import Source
from safeeye.errors import FetchError
from safeeye.ingest.crawl import (
    CrawlEvent,
    CrawlLimits,
    CrawlState,
    FetchedPage,
    FetchPage,
    MediaFound,
    PageFailed,
    crawl,
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
from safeeye.ingest.urls import normalize_url

MIME_OF_SNIFFED = {"image": "image/", "video": "video/"}
SITEMAP_PROBE = "/sitemap.xml"

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
        config = self.config(source)
        seeds = [source.locator, *config.seeds]
        scope = CrawlScope.for_seeds(seeds, include=config.include, exclude=config.exclude)
        limits = CrawlLimits(
            max_depth=config.depth,
            max_pages=config.max_pages,
            max_seconds=config.max_seconds,
            max_pages_per_prefix=config.max_pages_per_prefix,
        )
        obey = config.obey_robots
        page_ids: dict[str, int] = {}

        def fetch_page(url: str) -> FetchedPage | None:
            try:
                return read_page(url)
            except FetchError as exc:
                if not (url.endswith(SITEMAP_PROBE) and exc.code == "http_status"):
                    ctx.page_failed(url, exc)  # a site without /sitemap.xml is no failure
            except Exception as exc:  # one page's failure, whatever it is, is that page's
                ctx.page_failed(url, exc)
            return None

        def read_page(url: str) -> FetchedPage:
            result, body, page_id, content_type = ctx.fetch_page(
                url, obey_robots=obey, max_bytes=ctx.fetcher.policy.max_page_bytes
            )
            with result:
                if page_id is None:  # media behind a page-looking link
                    sniffed = result.sniffed
                    mime = MIME_OF_SNIFFED[sniffed.kind] + sniffed.format if sniffed else None
                    return FetchedPage(url, result.final_url, result.status, mime, b"", "other")
                page_ids[normalize_url(result.final_url) or result.final_url] = page_id
                kind = page_kind(content_type, body)
                status = 200 if result.not_modified else result.status
                return FetchedPage(url, result.final_url, status, content_type, body, kind)

        for event in _resilient_crawl(ctx, seeds, scope, limits, fetch_page, config):
            if isinstance(event, MediaFound):
                link = event.link
                yield Candidate(
                    location=link.url,
                    url=link.url,
                    page_url=link.page_url,
                    page_id=page_ids.get(link.page_url),
                    how=link.how,
                    evidence={"depth": event.depth},
                )
            elif isinstance(event, PageFailed) and not event.reason.startswith(
                ("fetch", "bad_url")
            ):
                ctx.page_failed(event.url, event.reason)

    def describe(self, source: Source) -> str:
        config = self.config(source)
        scope = ",".join(config.include) or "whole site"
        return f"{source.locator} (depth {config.depth}, {scope})"


def _resilient_crawl(
    ctx: VisitContext,
    seeds: list[str],
    scope: CrawlScope,
    limits: CrawlLimits,
    fetch_page: FetchPage,
    config: CrawlConfig,
) -> Iterator[CrawlEvent]:
    """The crawl's events; a page whose reading raises (a parser's bug on a crafted page) is
    that page's failure, and the crawl resumes after it from its saved state."""
    state = CrawlState()
    for _ in range(limits.max_pages + 1):
        try:
            yield from crawl(
                seeds,
                scope,
                limits,
                fetch_page,
                sitemaps=config.sitemaps,
                feeds=config.feeds,
                state=state,
            )
            return
        except Exception as exc:
            if not state.frontier:
                raise
            # The page at the head of the frontier leaves it only once read: it is the culprit.
            broken = state.frontier.popleft()
            ctx.page_failed(broken.url, exc)
