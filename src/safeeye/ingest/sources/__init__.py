"""Source kinds: each finds the media of one kind of source; registered by name."""

from __future__ import annotations

from typing import Any

from safeeye.db.models import Source
from safeeye.errors import ValidationError
from safeeye.ingest.sources.base import (
    Candidate,
    FetchConfig,
    SourceConfig,
    SourceKind,
    VisitContext,
)
from safeeye.ingest.sources.crawl import CrawlSource
from safeeye.ingest.sources.detect import detect_kind
from safeeye.ingest.sources.folder import FolderSource
from safeeye.ingest.sources.telegram import TelegramSource
from safeeye.ingest.sources.upload import UploadSource
from safeeye.ingest.sources.url import UrlSource

KINDS: dict[str, type[SourceKind[Any]]] = {
    kind.name: kind for kind in (UrlSource, CrawlSource, TelegramSource, FolderSource, UploadSource)
}


def kind_named(name: str) -> SourceKind[Any]:
    """The source kind called ``name`` (``ValidationError`` when there is none)."""
    if name not in KINDS:
        raise ValidationError(f"unknown source kind {name!r} (one of {', '.join(KINDS)})")
    return KINDS[name]()


def obeys_robots(source: Source) -> bool:
    """Whether fetches for ``source`` obey robots.txt (kinds that fetch nothing say yes)."""
    config = kind_named(source.kind).config(source)
    return not isinstance(config, FetchConfig) or config.obey_robots


__all__ = [
    "KINDS",
    "Candidate",
    "FetchConfig",
    "SourceConfig",
    "SourceKind",
    "VisitContext",
    "detect_kind",
    "kind_named",
    "obeys_robots",
]
