"""Source kinds: each finds the media of one kind of source; registered by name."""

from __future__ import annotations

from safeeye.ingest.sources.base import Candidate, SourceKind, VisitContext
from safeeye.ingest.sources.crawl import CrawlSource
from safeeye.ingest.sources.folder import FolderSource
from safeeye.ingest.sources.telegram import TelegramSource
from safeeye.ingest.sources.upload import UploadSource
from safeeye.ingest.sources.url import UrlSource

KINDS: dict[str, type[SourceKind]] = {
    kind.name: kind for kind in (UrlSource, CrawlSource, TelegramSource, FolderSource, UploadSource)
}

__all__ = ["KINDS", "Candidate", "SourceKind", "VisitContext"]
