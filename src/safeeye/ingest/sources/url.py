"""A single URL: a direct link to an image or video, a page whose media are taken, or a feed
(RSS/Atom) or sitemap whose listed media are taken."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from safeeye.db.models import Source
from safeeye.errors import ValidationError
from safeeye.ingest.crawl import page_kind
from safeeye.ingest.feeds import parse_feed
from safeeye.ingest.links import MediaLink, charset_of, extract_links
from safeeye.ingest.sitemaps import parse_sitemap
from safeeye.ingest.sources.base import Candidate, FetchConfig, SourceKind, VisitContext, http_url


class UrlConfig(FetchConfig):
    """A single URL has no settings but whether robots.txt is obeyed."""


def web_locator(text: str) -> str:
    """``text`` as a normalised http(s) URL (``ValidationError`` "bad_url" when it is not one)."""
    try:
        return http_url(text)
    except ValueError:
        raise ValidationError(f"not a usable http(s) URL: {text[:200]}", code="bad_url") from None


class UrlSource(SourceKind[UrlConfig]):
    name: ClassVar[str] = "url"
    Config = UrlConfig

    def locator(self, text: str) -> str:
        return web_locator(text)

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        """The URL itself when it serves media, else the media its page, feed or sitemap lists;
        whatever breaks while reading the page is that page's failure, not the visit's."""
        try:
            result = ctx.fetcher.fetch(source.locator, obey_robots=self.config(source).obey_robots)
        except Exception as exc:
            ctx.page_failed(source.locator, exc)
            return
        kind = result.sniffed.kind if result.sniffed else "other"
        if kind in ("image", "video"):
            yield Candidate(
                location=source.locator, url=source.locator, how="direct", prefetched=result
            )
            return
        with result:
            try:
                body = result.read_bytes()
                page_id = ctx.record_page(result)
                media = _media_in(body, result.final_url, result.content_type)
            except Exception as exc:  # an XML bomb, a broken feed, a parser's bug
                ctx.page_failed(source.locator, exc)
                return
        for link in media:
            yield Candidate(
                location=link.url,
                url=link.url,
                page_url=link.page_url or result.final_url,
                page_id=page_id,
                how=link.how,
            )


def _media_in(body: bytes, url: str, content_type: str | None) -> tuple[MediaLink, ...]:
    """The media a page, feed or sitemap body links to."""
    kind = page_kind(content_type, body)
    if kind == "feed":
        return parse_feed(body, url).media
    if kind == "sitemap":
        return parse_sitemap(body, url).media
    return extract_links(body, url, charset_of(content_type)).media
