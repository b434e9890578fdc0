"""Direct upload: files and URLs handed in by staff (the CLI now, the web workbench later)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from safeeye.db.models import Source
from safeeye.ingest.sources.base import Candidate, SourceKind, VisitContext
from safeeye.ingest.sources.folder import file_fingerprint


class UploadSource(SourceKind):
    """``config["files"]`` are local paths, ``config["urls"]`` URLs, both visited once."""

    name: ClassVar[str] = "upload"

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        for name in source.config.get("files", []):
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
        for url in source.config.get("urls", []):
            yield Candidate(location=url, url=url, how="upload", evidence={"uploaded_url": url})

    def describe(self, source: Source) -> str:
        files, urls = source.config.get("files", []), source.config.get("urls", [])
        return f"{len(files)} files, {len(urls)} URLs"
