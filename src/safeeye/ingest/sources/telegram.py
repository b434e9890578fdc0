"""A Telegram Desktop chat export: every photo and video in it, with chat, message and link."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from safeeye.db.models import Source
from safeeye.ingest.sources.base import Candidate, SourceKind, VisitContext
from safeeye.ingest.sources.folder import file_fingerprint
from safeeye.ingest.telegram import TelegramMedia, evidence, read_export

SKIPPED_KINDS = frozenset({"sticker"})


def location_of(media: TelegramMedia) -> str:
    """The sighting's location: the message's t.me link, else a stable export reference."""
    if media.link:
        return media.link
    chat = media.chat_id if media.chat_id is not None else (media.chat_name or "chat")
    return f"telegram-export:{chat}/{media.message_id}/{media.relative_path}"


class TelegramSource(SourceKind):
    """``locator`` is the export folder; ``config["usernames"]`` maps chat ids to public
    usernames a counselor knows (the export does not record them)."""

    name: ClassVar[str] = "telegram"

    def discover(self, ctx: VisitContext, source: Source) -> Iterator[Candidate]:
        usernames = {int(k): v for k, v in source.config.get("usernames", {}).items()}
        export = read_export(Path(source.locator), usernames=usernames)
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
