"""A site crawl: seed URLs, a scope of hosts and path patterns, depth and page limits,
sitemaps and RSS/Atom feeds; every image and video found in scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from safeeye.db.models import Source
from safeeye.errors import FetchError
from safeeye.ingest.crawl import CrawlLimits, FetchedPage, MediaFound, PageFailed, crawl, page_kind
from safeeye.ingest.scope import CrawlScope
from safeeye.ingest.sources.base import Candidate, SourceKind, VisitContext
from safeeye.ingest.urls import normalize_url

MIME_OF_SNIFFED = {"image": "image/", "video": "video/"}
SITEMAP_PROBE = "/sitemap.xml"


class CrawlSource(SourceKind):
    """``config``: ``seeds`` (more start URLs), ``include`` / ``exclude`` (path globs),
    ``depth``, ``max_pages``, ``max_pages_per_prefix`` (a link-maze defence), ``max_seconds``,
    ``sitemaps``, ``feeds``, ``obey_robots``."""

    name: ClassVar[str] = "crawl"

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        config = source.config
        seeds = [source.locator, *config.get("seeds", [])]
        scope = CrawlScope.for_seeds(
            seeds,
            include=tuple(config.get("include", ())),
            exclude=tuple(config.get("exclude", ())),
        )
        limits = CrawlLimits(
            max_depth=int(config.get("depth", 3)),
            max_pages=int(config.get("max_pages", 500)),
            max_seconds=config.get("max_seconds"),
            max_pages_per_prefix=int(config.get("max_pages_per_prefix", 250)),
        )
        obey = bool(config.get("obey_robots", True))
        page_ids: dict[str, int] = {}

        def fetch_page(url: str) -> FetchedPage | None:
            try:
                result, body, page_id, content_type = ctx.fetch_page(
                    url, obey_robots=obey, max_bytes=ctx.fetcher.policy.max_page_bytes
                )
            except FetchError as exc:
                if not (url.endswith(SITEMAP_PROBE) and exc.code == "http_status"):
                    ctx.page_failed(url, exc)  # a site without /sitemap.xml is no failure
                return None
            with result:
                if page_id is None:  # media behind a page-looking link
                    sniffed = result.sniffed
                    mime = MIME_OF_SNIFFED[sniffed.kind] + sniffed.format if sniffed else None
                    return FetchedPage(url, result.final_url, result.status, mime, b"", "other")
                page_ids[normalize_url(result.final_url) or result.final_url] = page_id
                kind = page_kind(content_type, body)
                status = 200 if result.not_modified else result.status
                return FetchedPage(url, result.final_url, status, content_type, body, kind)

        for event in crawl(
            seeds,
            scope,
            limits,
            fetch_page,
            sitemaps=bool(config.get("sitemaps", True)),
            feeds=bool(config.get("feeds", True)),
        ):
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
        config = source.config
        scope = ",".join(config.get("include", ())) or "whole site"
        return f"{source.locator} (depth {config.get('depth', 3)}, {scope})"
