"""Direct upload: files and URLs handed in by staff (the CLI now, the web workbench later)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from safeeye.db.models import Source
from safeeye.ingest.sources.base import Candidate, FetchConfig, SourceKind, VisitContext, WebUrl
from safeeye.ingest.sources.folder import file_fingerprint

MAX_ITEMS = 100_000


def _absolute(text: str) -> str:
    if not text or not Path(text).is_absolute():
        raise ValueError("an uploaded file is named by its absolute path")
    return text


class UploadConfig(FetchConfig):
    """``files`` (absolute local paths) and ``urls`` handed in by staff, visited once."""

    files: tuple[Annotated[str, AfterValidator(_absolute)], ...] = Field(
        default=(), max_length=MAX_ITEMS
    )
    urls: tuple[WebUrl, ...] = Field(default=(), max_length=MAX_ITEMS)


class UploadSource(SourceKind[UploadConfig]):
    name: ClassVar[str] = "upload"
    Config = UploadConfig

    def locator(self, text: str) -> str:
        return "upload"

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        config = self.config(source)
        for name in config.files:
            path = Path(name)
            try:
                fingerprint = file_fingerprint(path) if path.is_file() else None
            except OSError:
                fingerprint = None
            if fingerprint is None:
                ctx.page_failed(name, "not_found: the uploaded file is gone")
                continue
            yield Candidate(
                location=str(path.resolve()),
                path=path,
                how="upload",
                fingerprint=fingerprint,
                evidence={"uploaded": path.name},
            )
        for url in config.urls:
            yield Candidate(location=url, url=url, how="upload", evidence={"uploaded_url": url})

    def describe(self, source: Source) -> str:
        config = self.config(source)
        return f"{len(config.files)} files, {len(config.urls)} URLs"
