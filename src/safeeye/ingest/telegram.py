"""Telegram Desktop JSON chat exports: every photo and video in them, with its evidence.

A counselor imports the folder Telegram Desktop wrote (``result.json`` plus ``photos/``,
``video_files/``, ...). :func:`read_export` turns it into :class:`TelegramMedia` records (one per
file to scan, each knowing its chat, message, author, UTC date and message link), the URLs found
in message texts (so discovery can follow them), and a list of problems (files the export left
out, files missing on disk, hostile paths), without ever raising for those.

Format notes (Telegram Desktop ``export/output/export_output_json.cpp``,
``export/data/export_data_types.cpp``):

* A single-chat export is one chat object: ``name`` (absent for Saved Messages), ``type``, ``id``,
  ``messages``. A full-account export wraps chats in ``chats.list`` and ``left_chats.list`` next
  to ``personal_information``, ``contacts``, ``sessions``...
* A chat ``id`` is the *bare* peer id: a channel or supergroup id without the Bot API's ``-100``
  prefix, which is exactly the number ``https://t.me/c/<id>/<message id>`` links use.
* ``date`` is the exporting computer's local time with no zone; ``date_unixtime`` (newer
  versions) is the same instant as a string of seconds, so it is preferred.
* Media paths are relative to the export root (``chats/chat_01/photos/...`` in full exports), or
  a placeholder such as ``(File not included. Change data exporting settings to download.)``.
* Strings with control characters other than tab/CR/LF are written as ``\\xHH``, which is not
  JSON; the reader repairs those escapes instead of rejecting the export.
* Messages of a group that was later migrated to a supergroup keep ids shifted by -1e9
  (negative): they belong to the old basic group and have no link.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TextIO
from urllib.parse import parse_qs, urlsplit

from safeeye.errors import SafeEyeError

#: ``result.json`` larger than this is refused (a real export of a busy channel is far smaller).
MAX_RESULT_JSON_BYTES = 1024**3
#: One message (or one skipped section such as ``contacts``) larger than this is refused.
MAX_ENTRY_CHARS = 64 * 1024**2
_CHUNK_CHARS = 1 << 20
_MAX_INT_DIGITS = 64

MediaKind = Literal["photo", "video", "animation", "video_message", "file", "sticker", "thumbnail"]
#: ``private``: ``https://t.me/c/<chat id>/<message id>``, opens for members of the chat;
#: ``public``: ``https://t.me/<username>/<message id>`` (username given by the caller);
#: ``none``: personal chats, basic groups, Saved Messages and migrated history have no link.
LinkForm = Literal["private", "public", "none"]
Layout = Literal["single_chat", "full_account"]

#: Chat types whose messages have t.me links (channels and supergroups).
LINKABLE_CHAT_TYPES = frozenset(
    {"private_supergroup", "public_supergroup", "private_channel", "public_channel"}
)
_DOCUMENT_KINDS: dict[str, MediaKind] = {
    "video_file": "video",
    "animation": "animation",
    "video_message": "video_message",
    "sticker": "sticker",
}
_NOT_VISUAL_MEDIA_TYPES = frozenset({"voice_message", "audio_file"})
_PLACEHOLDER = re.compile(
    r"\((?:File|Photo) (?:not included|exceeds maximum size|unavailable)[^)]*\)", re.IGNORECASE
)
_X_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\x([0-9A-Fa-f]{2})")
_WHITESPACE = re.compile(r"[ \t\r\n]*")
_URL_IN_TEXT = re.compile(
    r"(?:\b(?:https?|tg)://|(?<![\w.@/-])(?:t\.me|telegram\.me|telegram\.dog)/)[^\s<>\"'«»]+",
    re.IGNORECASE,
)
_TRAILING_PUNCTUATION = ".,;:!?)]}'\"»…"
_USERNAME = re.compile(r"^@?([A-Za-z][A-Za-z0-9_]{3,31})$")


class TelegramExportError(SafeEyeError):
    """A folder that is not a Telegram Desktop JSON export, or whose result.json cannot be read."""

    code = "telegram_export"


@dataclass(frozen=True)
class TelegramChat:
    """One chat in the export and what was found in it."""

    name: str | None
    type: str
    id: int | None
    left: bool = False
    username: str | None = None
    link_form: LinkForm = "none"
    message_count: int = 0
    media_count: int = 0


@dataclass(frozen=True)
class TelegramMedia:
    """One file in the export to scan, with the facts a sighting records about where it was seen.

    ``path`` is inside the export folder (checked); ``relative_path`` is the path as the export
    wrote it. ``date`` is aware UTC (``None`` only when the message had no date).
    """

    path: Path
    relative_path: str
    kind: MediaKind
    mime_type: str | None
    chat_name: str | None
    chat_type: str
    chat_id: int | None
    message_id: int | None
    date: datetime | None
    author: str | None
    author_id: str | None
    forwarded_from: str | None
    link: str | None
    link_form: LinkForm
    caption: str
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    file_size: int | None = None
    edited: datetime | None = None
    signature: str | None = None


@dataclass(frozen=True)
class TelegramLink:
    """A URL found in a message text (``kind``: link, text_link, mention or text)."""

    url: str
    kind: str
    chat: str | None
    chat_id: int | None
    message_id: int | None
    date: datetime | None
    message_link: str | None = None


@dataclass(frozen=True)
class TelegramExport:
    """Everything :func:`read_export` found in one export folder."""

    root: Path
    layout: Layout
    chats: tuple[TelegramChat, ...]
    media: tuple[TelegramMedia, ...]
    links: tuple[TelegramLink, ...]
    problems: tuple[str, ...]


def message_link(
    chat_type: str, chat_id: int | None, message_id: int | None, username: str | None = None
) -> tuple[str | None, LinkForm]:
    """The best t.me link to one message, and which form it is."""
    if chat_type not in LINKABLE_CHAT_TYPES or chat_id is None or not message_id:
        return None, "none"
    if message_id <= 0:  # history of a basic group migrated to this supergroup
        return None, "none"
    if username:
        return f"https://t.me/{username}/{message_id}", "public"
    bare = _bare_channel_id(chat_id)
    return f"https://t.me/c/{bare}/{message_id}", "private"


def read_export(
    export_dir: Path,
    *,
    usernames: Mapping[int, str] | None = None,
    max_bytes: int = MAX_RESULT_JSON_BYTES,
) -> TelegramExport:
    """Read a Telegram Desktop JSON export folder.

    ``usernames`` maps chat ids to public usernames a counselor knows (the export does not
    record them) so public chats get ``https://t.me/<username>/<id>`` links. Raises
    :class:`TelegramExportError` only when the folder is not an export or result.json is
    malformed or larger than ``max_bytes``; everything else becomes a problem.
    """
    root = _find_root(Path(export_dir))
    result_json = root / "result.json"
    size = result_json.stat().st_size
    if size > max_bytes:
        raise TelegramExportError(
            f"result.json is {size:,} bytes, over the {max_bytes:,}-byte limit; export fewer "
            "chats or a shorter date range"
        )
    reader = _Reader(root, _clean_usernames(usernames or {}))
    try:
        with result_json.open(encoding="utf-8-sig") as handle:
            reader.read(_JsonStream(handle))
    except UnicodeDecodeError as exc:
        raise TelegramExportError(
            f"result.json is not UTF-8 text (byte {exc.start}); it is not a Telegram Desktop "
            "export or it is damaged"
        ) from exc
    except OSError as exc:
        raise TelegramExportError(f"result.json cannot be read: {exc.strerror}") from exc
    return reader.result()


def evidence(media: TelegramMedia) -> dict[str, Any]:
    """The JSON-safe evidence a sighting stores for one file from a Telegram export."""
    return {
        "source": "telegram_export",
        "chat": media.chat_name,
        "chat_type": media.chat_type,
        "chat_id": media.chat_id,
        "message_id": media.message_id,
        "date": media.date.isoformat() if media.date else None,
        "edited": media.edited.isoformat() if media.edited else None,
        "author": media.author,
        "author_id": media.author_id,
        "signature": media.signature,
        "forwarded_from": media.forwarded_from,
        "link": media.link,
        "link_form": media.link_form,
        "file": media.relative_path,
        "kind": media.kind,
        "mime_type": media.mime_type,
    }


# --- finding the export --------------------------------------------------------------------


def _find_root(path: Path) -> Path:
    if path.is_file() and path.name == "result.json":
        return path.parent
    if not path.exists():
        raise TelegramExportError(f"{path} does not exist")
    if not path.is_dir():
        hint = " (unzip it first)" if path.suffix.lower() == ".zip" else ""
        raise TelegramExportError(f"{path} is not a folder{hint}")
    if (path / "result.json").is_file():
        return path
    if (path / "messages.html").is_file() or (path / "export_results.html").is_file():
        raise TelegramExportError(
            f"{path} is an HTML export; export again with the format "
            "'Machine-readable JSON' in Telegram Desktop"
        )
    inner = [child for child in path.iterdir() if (child / "result.json").is_file()]
    if len(inner) == 1:  # the folder that holds the unzipped ChatExport_... folder
        return inner[0]
    raise TelegramExportError(
        f"{path} is not a Telegram Desktop export: it has no result.json "
        "(Telegram Desktop → Export chat history → Machine-readable JSON)"
    )


# --- streaming JSON ------------------------------------------------------------------------


class _JsonStream:
    """Reads one JSON document piece by piece so only one message is in memory at a time."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._buffer = ""
        self._pos = 0
        self._offset = 0  # characters dropped from the front of the buffer
        self._eof = False
        self._decoder = json.JSONDecoder(parse_int=_json_int)

    def _fill(self) -> bool:
        if self._eof:
            return False
        pending = len(self._buffer) - self._pos
        chunk = self._handle.read(max(_CHUNK_CHARS, pending))  # grows for long values
        if not chunk:
            self._eof = True
            return False
        self._offset += self._pos
        self._buffer = self._buffer[self._pos :] + chunk
        self._pos = 0
        return True

    def peek(self) -> str:
        """The next non-blank character ('' at the end)."""
        while True:
            self._pos = _WHITESPACE.match(self._buffer, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buffer):
                return self._buffer[self._pos]
            if not self._fill():
                return ""

    def expect(self, char: str) -> None:
        found = self.peek()
        if found != char:
            raise self.error(f"expected '{char}' but found {found!r}" if found else "it ends early")
        self._pos += 1

    def take(self, char: str) -> bool:
        if self.peek() == char:
            self._pos += 1
            return True
        return False

    def value(self) -> Any:
        """Decode the next complete JSON value."""
        self.peek()
        repaired = False
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buffer, self._pos)
            except RecursionError:
                raise self.error("values nested too deeply") from None
            except json.JSONDecodeError as exc:
                if "Invalid \\escape" in exc.msg and not repaired:
                    # Telegram Desktop writes control characters as \xHH; make them \u00HH.
                    head, tail = self._buffer[: self._pos], self._buffer[self._pos :]
                    fixed = _X_ESCAPE.sub(r"\1\\u00\2", tail)
                    if fixed != tail:
                        self._buffer = head + fixed
                        repaired = True
                        continue
                if len(self._buffer) - self._pos > MAX_ENTRY_CHARS:
                    raise self.error(
                        f"one entry is over {MAX_ENTRY_CHARS:,} characters", exc.pos
                    ) from None
                if not self._fill():
                    raise self.error(exc.msg, exc.pos) from None
                repaired = False
                continue
            if end == len(self._buffer) and self._fill():
                continue  # a number may continue in the next chunk
            self._pos = end
            return value

    def object_keys(self) -> Iterator[str]:
        """Each key of the object that starts here; the caller reads each value."""
        self.expect("{")
        if self.take("}"):
            return
        while True:
            key = self.value()
            if not isinstance(key, str):
                raise self.error("an object key is not a string")
            self.expect(":")
            yield key
            if self.take("}"):
                return
            self.expect(",")

    def array_items(self) -> Iterator[None]:
        """Once per item of the array that starts here; the caller reads each item."""
        self.expect("[")
        if self.take("]"):
            return
        while True:
            yield None
            if self.take("]"):
                return
            self.expect(",")

    def error(self, what: str, pos: int | None = None) -> TelegramExportError:
        where = self._offset + (self._pos if pos is None else pos)
        return TelegramExportError(
            f"result.json is malformed near character {where:,} ({what}); the export may be "
            "incomplete: export it again"
        )


# --- reading the export --------------------------------------------------------------------


@dataclass
class _Chat:
    name: str | None = None
    type: str = ""
    id: int | None = None
    left: bool = False
    messages: int = 0
    media: int = 0
    pending: list[Any] = field(default_factory=list)

    def known(self, seen: set[str]) -> bool:
        return "type" in seen and "id" in seen


class _Reader:
    def __init__(self, root: Path, usernames: dict[int, str]) -> None:
        self.root = root
        self.resolved_root = root.resolve()
        self.usernames = usernames
        self.layout: Layout = "single_chat"
        self.chats: list[TelegramChat] = []
        self.media: list[TelegramMedia] = []
        self.links: list[TelegramLink] = []
        self.problems: list[str] = []
        self.naive_dates = False

    def read(self, stream: _JsonStream) -> None:
        if stream.peek() != "{":
            raise TelegramExportError(
                "result.json does not hold a JSON object: it is not a Telegram Desktop export"
            )
        chat = _Chat()
        seen: set[str] = set()
        for key in stream.object_keys():
            if key in ("chats", "left_chats"):
                self.layout = "full_account"
                seen.add(key)
                self._read_chat_list(stream, left=key == "left_chats")
            elif key in ("name", "type", "id"):
                self._set_chat_field(chat, key, stream.value())
                seen.add(key)
            elif key == "messages":
                seen.add(key)
                self._read_messages(stream, chat, seen)
            else:
                seen.add(key)
                stream.value()
        if stream.peek():
            raise stream.error("there is more after the end of the export")
        if "messages" in seen:
            self._finish_chat(chat)
        elif not seen & {"chats", "left_chats", "personal_information", "about"}:
            raise TelegramExportError(
                "result.json has no 'messages' or 'chats': it is not a Telegram Desktop export"
            )
        elif not self.chats:
            self.problems.append("the export holds no chats (chat history was not selected)")
        if self.naive_dates:
            self.problems.append(
                "some messages have no date_unixtime (older Telegram Desktop): their dates are "
                "the exporting computer's local time and were read as UTC"
            )

    def result(self) -> TelegramExport:
        return TelegramExport(
            root=self.root,
            layout=self.layout,
            chats=tuple(self.chats),
            media=tuple(self.media),
            links=tuple(self.links),
            problems=tuple(self.problems),
        )

    def _read_chat_list(self, stream: _JsonStream, *, left: bool) -> None:
        if stream.peek() != "{":
            stream.value()
            self.problems.append("the chat list is not an object and was skipped")
            return
        for key in stream.object_keys():
            if key != "list" or stream.peek() != "[":
                stream.value()
                continue
            for _ in stream.array_items():
                if stream.peek() != "{":
                    stream.value()
                    self.problems.append("an entry of the chat list is not an object")
                    continue
                chat, seen = _Chat(left=left), set()
                for chat_key in stream.object_keys():
                    if chat_key in ("name", "type", "id"):
                        self._set_chat_field(chat, chat_key, stream.value())
                        seen.add(chat_key)
                    elif chat_key == "messages":
                        self._read_messages(stream, chat, seen)
                    else:
                        stream.value()
                self._finish_chat(chat)

    @staticmethod
    def _set_chat_field(chat: _Chat, key: str, value: Any) -> None:
        if key == "name":
            chat.name = value if isinstance(value, str) else None
        elif key == "type":
            chat.type = value if isinstance(value, str) else ""
        else:
            chat.id = _as_int(value)

    def _read_messages(self, stream: _JsonStream, chat: _Chat, seen: set[str]) -> None:
        if stream.peek() != "[":
            stream.value()
            self.problems.append(f"{_chat_label(chat)}: 'messages' is not a list")
            return
        for _ in stream.array_items():
            message = stream.value()
            if chat.known(seen):
                self._read_message(chat, message)
            else:  # a writer that put messages before the chat's type and id
                chat.pending.append(message)

    def _finish_chat(self, chat: _Chat) -> None:
        pending, chat.pending = chat.pending, []
        for message in pending:
            self._read_message(chat, message)
        username = self.usernames.get(chat.id) if chat.id is not None else None
        _, form = message_link(chat.type, chat.id, 1, username)
        self.chats.append(
            TelegramChat(
                name=chat.name,
                type=chat.type,
                id=chat.id,
                left=chat.left,
                username=username if form == "public" else None,
                link_form=form,
                message_count=chat.messages,
                media_count=chat.media,
            )
        )

    def _read_message(self, chat: _Chat, message: Any) -> None:
        chat.messages += 1
        if not isinstance(message, dict):
            self.problems.append(f"{_chat_label(chat)}: an entry of 'messages' is not an object")
            return
        message_id = _as_int(message.get("id"))
        where = f"{_chat_label(chat)} message {message_id}"
        if message.get("type") == "unsupported":
            return
        date = self._date(message.get("date_unixtime"), message.get("date"))
        username = self.usernames.get(chat.id) if chat.id is not None else None
        link, form = message_link(chat.type, chat.id, message_id, username)
        caption = _plain_text(message.get("text"))
        self._collect_links(message, chat, message_id, date, link, caption)

        service = message.get("type") == "service"
        found: list[tuple[str, MediaKind, str | None]] = []  # (relative path, kind, mime)
        photo = message.get("photo")
        if isinstance(photo, str):
            found.append((photo, "photo", _photo_mime(photo)))
        document = message.get("file")
        if isinstance(document, str) and not service:
            media_type = message.get("media_type")
            mime = _text_or_none(message.get("mime_type"))
            kind = self._document_kind(media_type, mime, document)
            if kind is not None:
                found.append((document, kind, mime))
        if not found:
            return

        base = {
            "chat_name": chat.name,
            "chat_type": chat.type,
            "chat_id": chat.id,
            "message_id": message_id,
            "date": date,
            "edited": self._date(message.get("edited_unixtime"), message.get("edited"), True),
            "author": _text_or_none(message.get("from") or message.get("actor")),
            "author_id": _peer_id(message.get("from_id") or message.get("actor_id")),
            "signature": _text_or_none(message.get("author")),
            "forwarded_from": _text_or_none(
                message.get("forwarded_from") or message.get("saved_from")
            ),
            "link": link,
            "link_form": form,
            "caption": caption,
            "width": _as_int(message.get("width")),
            "height": _as_int(message.get("height")),
            "duration": _as_int(message.get("duration_seconds")),
        }
        for relative, kind, mime in found:
            path, problem = self._resolve(relative)
            if path is not None:
                size_key = "photo_file_size" if kind == "photo" else "file_size"
                self._add(chat, relative, path, kind, mime, base, message.get(size_key))
                continue
            self.problems.append(f"{where}: {kind} {problem}")
            thumbnail = message.get("thumbnail") if kind != "photo" else None
            if isinstance(thumbnail, str) and not _PLACEHOLDER.search(thumbnail):
                thumb_path, thumb_problem = self._resolve(thumbnail)
                if thumb_path is not None:  # the preview is still evidence of the video
                    self._add(chat, thumbnail, thumb_path, "thumbnail", "image/jpeg", base, None)
                else:
                    self.problems.append(f"{where}: thumbnail {thumb_problem}")

    def _add(
        self,
        chat: _Chat,
        relative: str,
        path: Path,
        kind: MediaKind,
        mime: str | None,
        base: dict[str, Any],
        size: Any,
    ) -> None:
        fields = dict(base)
        if kind == "thumbnail":
            fields.update(width=None, height=None, duration=None)
        chat.media += 1
        self.media.append(
            TelegramMedia(
                path=path,
                relative_path=relative,
                kind=kind,
                mime_type=mime,
                file_size=_as_int(size),
                **fields,
            )
        )

    @staticmethod
    def _document_kind(media_type: Any, mime: str | None, relative: str) -> MediaKind | None:
        if media_type in _NOT_VISUAL_MEDIA_TYPES:
            return None
        if media_type == "sticker" and relative.lower().endswith(".tgs"):
            return None  # animated stickers are vector drawings, never photos
        if isinstance(media_type, str):
            return _DOCUMENT_KINDS.get(media_type, "file")
        if mime and mime.split("/", 1)[0] in ("audio", "text"):
            return None
        return "file"  # anything else sent as a file: the scanner sniffs what it really is

    def _resolve(self, relative: str) -> tuple[Path | None, str]:
        """The file inside the export, or why there is none."""
        placeholder = _PLACEHOLDER.search(relative)
        if placeholder:
            return None, f"not included in the export: {placeholder.group(0)}"
        text = relative.replace("\\", "/")
        pure = PurePosixPath(text)
        if (
            not text.strip()
            or "\x00" in text
            or pure.is_absolute()
            or re.match(r"^[A-Za-z]:", text)
            or ".." in pure.parts
        ):
            return None, f"refused: path {relative!r} points outside the export"
        try:
            resolved = (self.root / pure).resolve()
        except (OSError, RuntimeError):
            return None, f"refused: path {relative!r} cannot be resolved"
        if not resolved.is_relative_to(self.resolved_root):
            return None, f"refused: path {relative!r} leads outside the export (a link)"
        if not resolved.is_file():
            return None, f"listed as {relative!r} but the file is missing from the export"
        return resolved, ""

    def _date(self, unixtime: Any, local: Any, edited: bool = False) -> datetime | None:
        seconds = _as_int(unixtime)
        if seconds is not None:
            if edited and seconds <= 0:
                return None
            try:
                return datetime.fromtimestamp(seconds, tz=UTC)
            except (OverflowError, OSError, ValueError):
                return None
        if not isinstance(local, str):
            return None
        try:
            parsed = datetime.fromisoformat(local)
        except ValueError:
            return None
        if edited and parsed.year <= 1970:  # older exports wrote 1970-01-01 for "never edited"
            return None
        if parsed.tzinfo is None:
            self.naive_dates = True
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, before the first UTC instant
            return None

    def _collect_links(
        self,
        message: dict[str, Any],
        chat: _Chat,
        message_id: int | None,
        date: datetime | None,
        message_link_: str | None,
        plain: str,
    ) -> None:
        entities = message.get("text_entities")
        if not isinstance(entities, list):
            text = message.get("text")
            entities = text if isinstance(text, list) else []
        seen: set[str] = set()

        def add(url: str | None, kind: str) -> None:
            if url and url not in seen:
                seen.add(url)
                self.links.append(
                    TelegramLink(url, kind, chat.name, chat.id, message_id, date, message_link_)
                )

        for entity in entities:
            if not isinstance(entity, dict):
                continue
            kind, text = entity.get("type"), entity.get("text")
            if kind == "link" and isinstance(text, str):
                add(_normalise_url(text), "link")
            elif kind == "text_link" and isinstance(entity.get("href"), str):
                add(_normalise_url(entity["href"]), "text_link")
            elif kind == "mention" and isinstance(text, str):
                match = _USERNAME.match(text.strip())
                add(f"https://t.me/{match.group(1)}" if match else None, "mention")
        for match in _URL_IN_TEXT.finditer(plain):
            add(_normalise_url(match.group(0)), "text")


# --- small helpers -------------------------------------------------------------------------


def _plain_text(text: Any) -> str:
    """The text of a message (a string, or a list of strings and entity objects) as plain text."""
    if isinstance(text, str):
        return text
    if not isinstance(text, list):
        return ""
    parts = []
    for part in text:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return "".join(parts)


def _normalise_url(url: str) -> str | None:
    url = url.strip().rstrip(_TRAILING_PUNCTUATION)
    if not url:
        return None
    lowered = url.lower()
    if lowered.startswith("tg://"):
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unbalanced "[" where the host goes: no link to follow
            return None
        query = parse_qs(parts.query)
        domain = (query.get("domain") or [None])[0]
        if parts.netloc.lower() != "resolve" or not domain:
            return url
        post = (query.get("post") or [None])[0]
        return f"https://t.me/{domain}" + (f"/{post}" if post else "")
    if "://" not in url:
        if lowered.startswith(("mailto:", "tel:")):
            return None
        return "https://" + url
    return url


def _json_int(text: str) -> int | str:
    """A JSON integer as an int; one too long to be any Telegram number stays text (Python
    refuses to convert thousands of digits, and no id or size needs more than 20)."""
    return int(text) if len(text) <= _MAX_INT_DIGITS else text


def _peer_id(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # older exports wrote a bare number
    return None


def _bare_channel_id(chat_id: int) -> int:
    text = str(chat_id)
    if text.startswith("-100"):  # a Bot API id passed in by hand
        return int(text[4:])
    return abs(chat_id)


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
        return int(value)
    return None


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _photo_mime(relative: str) -> str | None:
    suffix = PurePosixPath(relative).suffix.lower()
    return {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}.get(suffix)


def _chat_label(chat: _Chat) -> str:
    name = chat.name if chat.name is not None else chat.type or "chat"
    return f"chat {name!r} (id {chat.id})"


def public_username(text: str) -> str | None:
    """A public chat's username without its ``@``; None when ``text`` cannot be one."""
    match = _USERNAME.match(text.strip())
    return match.group(1) if match else None


def _clean_usernames(usernames: Mapping[int, str]) -> dict[int, str]:
    cleaned = {}
    for chat_id, username in usernames.items():
        name = public_username(username)
        if name:
            cleaned[_bare_channel_id(chat_id)] = name
    return cleaned
