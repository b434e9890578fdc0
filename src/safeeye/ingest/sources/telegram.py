"""A Telegram Desktop chat export: every photo and video in it, with chat, message and link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field

from safeeye.db.models import Source
from safeeye.ingest.sources.base import Candidate, SourceConfig, SourceKind, VisitContext
from safeeye.ingest.sources.detect import TELEGRAM_EXPORT_FILE
from safeeye.ingest.sources.folder import file_fingerprint, folder_locator
from safeeye.ingest.telegram import TelegramMedia, evidence, public_username, read_export

SKIPPED_KINDS = frozenset({"sticker"})


def location_of(media: TelegramMedia) -> str:
    """The sighting's location: the message's t.me link, else a stable export reference."""
    if media.link:
        return media.link
    chat = media.chat_id if media.chat_id is not None else (media.chat_name or "chat")
    return f"telegram-export:{chat}/{media.message_id}/{media.relative_path}"


def _username(text: str) -> str:
    name = public_username(text)
    if name is None:
        raise ValueError("not a Telegram username (5-32 letters, digits or _, from a letter)")
    return name


class TelegramConfig(SourceConfig):
    """``usernames`` maps chat ids to the public usernames a counselor knows (the export does
    not record them), so that public chats get their ``t.me`` links."""

    usernames: dict[int, Annotated[str, AfterValidator(_username)]] = Field(
        default_factory=dict, max_length=10_000
    )


class TelegramSource(SourceKind[TelegramConfig]):
    """``locator`` is the export folder."""

    name: ClassVar[str] = "telegram"
    Config = TelegramConfig

    def locator(self, text: str) -> str:
        path = Path(text).expanduser()
        return folder_locator(str(path.parent if path.name == TELEGRAM_EXPORT_FILE else path))

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        export = read_export(Path(source.locator), usernames=self.config(source).usernames)
        for problem in export.problems:
            ctx.page_failed(source.locator, f"telegram: {problem}")
        for media in export.media:
            if media.kind in SKIPPED_KINDS:
                continue
            try:
                fingerprint = file_fingerprint(media.path)
            except OSError as exc:  # gone since the export was read: that file's failure
                ctx.page_failed(location_of(media), f"io: {exc.strerror or type(exc).__name__}")
                continue
            yield Candidate(
                location=location_of(media),
                path=media.path,
                page_url=media.link,
                how=f"telegram:{media.kind}",
                evidence=evidence(media),
                fingerprint=fingerprint,
            )
