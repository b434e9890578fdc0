"""A local folder: every image or video file in it (recursively); new files are picked up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from safeeye.db.models import Source
from safeeye.errors import NotFoundError
from safeeye.ingest.sources.base import Candidate, SourceConfig, SourceKind, VisitContext

SKIPPED_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


def file_fingerprint(path: Path) -> str:
    """Size and modification time: enough to tell that a file may have changed."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def folder_locator(text: str) -> str:
    """The absolute path of an existing folder (``NotFoundError`` when there is none)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise NotFoundError(f"no such folder: {text}")
    return str(path.resolve())


class FolderConfig(SourceConfig):
    """A watched folder: its subfolders too unless ``recursive`` is false."""

    recursive: bool = True


class FolderSource(SourceKind[FolderConfig]):
    name: ClassVar[str] = "folder"
    Config = FolderConfig

    def locator(self, text: str) -> str:
        return folder_locator(text)

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        root = Path(source.locator)
        if not root.is_dir():
            ctx.page_failed(source.locator, "not_found: the folder does not exist")
            return
        files = root.rglob("*") if self.config(source).recursive else root.glob("*")
        for path in sorted(files):
            try:
                if path.is_symlink() or not path.is_file() or path.name in SKIPPED_NAMES:
                    continue  # a link could point outside the folder the center named
                if path.name.startswith("."):
                    continue
                fingerprint = file_fingerprint(path)
            except OSError as exc:  # gone or unreadable since the listing: that file's failure
                ctx.page_failed(str(path), f"io: {exc.strerror or type(exc).__name__}")
                continue
            yield Candidate(
                location=str(path.resolve()),
                path=path,
                how="folder",
                fingerprint=fingerprint,
                evidence={"folder": str(root), "relative_path": str(path.relative_to(root))},
            )
