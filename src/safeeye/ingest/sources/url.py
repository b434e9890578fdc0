"""A single URL: a direct link to an image or video, or a page whose media are taken."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

from safeeye.db.models import Source
from safeeye.errors import FetchError
from safeeye.ingest.links import extract_links
from safeeye.ingest.sources.base import Candidate, SourceKind, VisitContext


class UrlSource(SourceKind):
    name: ClassVar[str] = "url"

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        obey = bool(source.config.get("obey_robots", True))
        try:
            result = ctx.fetcher.fetch(source.locator, obey_robots=obey)
        except FetchError as exc:
            ctx.page_failed(source.locator, exc)
            return
        kind = result.sniffed.kind if result.sniffed else "other"
        if kind in ("image", "video"):
            yield Candidate(
                location=source.locator, url=source.locator, how="direct", prefetched=result
            )
            return
        try:
            page_id = ctx.record_page(result)
            links = extract_links(result.read_bytes(), result.final_url)
        finally:
            result.unlink()
        for link in links.media:
            yield Candidate(
                location=link.url,
                url=link.url,
                page_url=result.final_url,
                page_id=page_id,
                how=link.how,
            )
