"""Builds Telegram Desktop JSON exports in a folder, the way Telegram Desktop writes them.

Shapes follow Telegram Desktop's writer (``export/output/export_output_json.cpp``): one space of
indentation per level, UTF-8 without ASCII escaping, keys in the writer's order, ``date`` in the
exporting computer's local time (here Seoul, UTC+9) next to ``date_unixtime``, bare chat ids,
``from_id`` as ``user<id>``/``channel<id>``, ``text`` as a string or a list of strings and
entity objects next to ``text_entities``, media under ``photos/``, ``video_files/``,
``stickers/``, ``voice_messages/`` and ``files/`` (under ``chats/chat_<n>/`` in a full-account
export), and the placeholder texts Telegram Desktop writes for files it left out.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from PIL import Image

FIXTURES = Path(__file__).parent / "fixtures"
FACES = FIXTURES / "faces"
VIDEO = FIXTURES / "video" / "short_hamilton_clip.mp4"

NOT_INCLUDED = "(File not included. Change data exporting settings to download.)"
TOO_BIG = "(File exceeds maximum size. Change data exporting settings to download.)"
SEOUL = timezone(timedelta(hours=9))

#: The single-chat export: a private channel that spreads a victim's images.
CHANNEL_NAME = "유출 채널 Leaks"
CHANNEL_ID = 1876543210  # bare id: the Bot API calls it -1001876543210
POSTER = "Spreader"
POSTER_ID = "user5551234"
T0 = datetime(2024, 3, 14, 21, 15, 3, tzinfo=UTC)


@dataclass(frozen=True)
class Expected:
    """What a test should find for one media file of a generated export."""

    relative_path: str
    kind: str
    message_id: int
    date: datetime
    author: str | None
    author_id: str | None
    forwarded_from: str | None = None


@dataclass(frozen=True)
class BuiltExport:
    root: Path
    chat_id: int
    chat_name: str | None
    media: tuple[Expected, ...]
    missing: tuple[str, ...]  # relative paths listed in result.json but not on disk
    not_included: tuple[int, ...]  # message ids whose file Telegram Desktop left out


def text_fields(*parts: str | dict[str, str]) -> dict[str, Any]:
    """``text`` and ``text_entities`` as Telegram Desktop writes them for these parts."""
    entities = [
        {"type": "plain", "text": part} if isinstance(part, str) else dict(part) for part in parts
    ]
    if not parts:
        return {"text": "", "text_entities": []}
    if len(parts) == 1 and isinstance(parts[0], str):
        return {"text": parts[0], "text_entities": entities}
    return {"text": list(parts), "text_entities": entities}


def dates(when: datetime, key: str = "date") -> dict[str, str]:
    """``date`` (local, no zone) and ``date_unixtime`` (string of seconds) for one instant."""
    local = when.astimezone(SEOUL).replace(tzinfo=None).isoformat(timespec="seconds")
    return {key: local, f"{key}_unixtime": str(int(when.timestamp()))}


def file_date(when: datetime) -> str:
    """The ``@DD-MM-YYYY_HH-MM-SS`` part Telegram Desktop puts in generated file names."""
    return when.astimezone(SEOUL).strftime("@%d-%m-%Y_%H-%M-%S")


def message(
    entry_id: int, when: datetime, sender: str | None, sender_id: str, **fields: Any
) -> dict[str, Any]:
    """A ``"type": "message"`` entry with the writer's key order (text last)."""
    text = fields.pop("text_parts", ())
    entry: dict[str, Any] = {"id": entry_id, "type": "message", **dates(when)}
    if "edited" in fields:
        entry.update(dates(fields.pop("edited"), "edited"))
    entry.update({"from": sender, "from_id": sender_id})
    entry.update(fields)
    entry.update(text_fields(*text))
    return entry


def service(entry_id: int, when: datetime, actor: str, actor_id: str, **fields: Any) -> dict:
    """A ``"type": "service"`` entry (channel created, message pinned...)."""
    entry: dict[str, Any] = {"id": entry_id, "type": "service", **dates(when)}
    entry.update({"actor": actor, "actor_id": actor_id, **fields})
    entry.update(text_fields())
    return entry


def write_result(root: Path, document: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, ensure_ascii=False, indent=1)
    (root / "result.json").write_text(text, encoding="utf-8")


def _copy(source: Path, root: Path, relative: str) -> None:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _webp(source: Path, root: Path, relative: str) -> None:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        image.convert("RGB").resize((256, 256)).save(target, "WEBP")


def _thumb(source: Path, root: Path, relative: str) -> None:
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        image.convert("RGB").resize((320, 180)).save(target, "JPEG")


def build_single_chat_export(root: Path) -> BuiltExport:
    """A private channel export with photos, videos, a GIF, a sticker, a forward, left-out files."""
    t = [T0 + timedelta(minutes=i) for i in range(12)]
    chan = f"channel{CHANNEL_ID}"
    photo1 = f"photos/photo_1{file_date(t[1])}.jpg"
    photo2 = f"photos/photo_2{file_date(t[3])}.jpg"
    photo_missing = f"photos/photo_3{file_date(t[5])}.jpg"
    video = "video_files/clip_0314.mp4"
    gif = "video_files/IMG_0042.gif.mp4"
    sticker = "stickers/sticker.webp"
    voice = f"voice_messages/audio_1{file_date(t[8])}.ogg"
    document = "files/IMG_2024.JPG"
    big_thumb = f"video_files/video_2{file_date(t[10])}.mp4_thumb.jpg"

    _copy(FACES / "biden.jpg", root, photo1)
    _copy(FACES / "obama.jpg", root, photo2)
    _copy(VIDEO, root, video)
    _thumb(FACES / "obama2.jpg", root, f"{video}_thumb.jpg")
    _copy(VIDEO, root, gif)
    _webp(FACES / "rose_leslie1.jpg", root, sticker)
    (root / voice).parent.mkdir(parents=True, exist_ok=True)
    (root / voice).write_bytes(b"OggS\x00\x02" + bytes(64))
    _copy(FACES / "kit_with_rose.jpg", root, document)
    _thumb(FACES / "biden2.jpg", root, big_thumb)

    messages = [
        service(1, t[0], CHANNEL_NAME, chan, action="create_channel", title=CHANNEL_NAME),
        message(
            2,
            t[1],
            CHANNEL_NAME,
            chan,
            photo=photo1,
            photo_file_size=353723,
            width=1280,
            height=853,
        ),
        message(
            3,
            t[2],
            CHANNEL_NAME,
            chan,
            author=POSTER,
            file=video,
            file_name="clip_0314.mp4",
            file_size=613928,
            thumbnail=f"{video}_thumb.jpg",
            media_type="video_file",
            mime_type="video/mp4",
            duration_seconds=2,
            width=640,
            height=360,
            text_parts=(
                "새 영상 ",
                {"type": "bold", "text": "full"},
                " mirror: ",
                {"type": "link", "text": "https://t.me/leakmirror/77"},
                " backup ",
                {"type": "text_link", "text": "here", "href": "https://files.example.org/v/9"},
                " ask ",
                {"type": "mention", "text": "@leak_admin_bot"},
            ),
        ),
        message(
            4,
            t[3],
            CHANNEL_NAME,
            chan,
            forwarded_from="Original Uploader",
            photo=photo2,
            photo_file_size=279922,
            width=1000,
            height=667,
            text_parts=("forwarded, more at t.me/+AbCdEfGh123 now",),
        ),
        message(
            5,
            t[4],
            CHANNEL_NAME,
            chan,
            file=NOT_INCLUDED,
            media_type="video_file",
            mime_type="video/mp4",
            duration_seconds=95,
            width=1280,
            height=720,
        ),
        message(6, t[5], CHANNEL_NAME, chan, photo=photo_missing, width=800, height=600),
        message(
            7,
            t[6],
            CHANNEL_NAME,
            chan,
            edited=t[11],
            file=gif,
            file_name="IMG_0042.gif.mp4",
            file_size=613928,
            media_type="animation",
            mime_type="video/mp4",
            width=640,
            height=360,
        ),
        message(
            8,
            t[7],
            CHANNEL_NAME,
            chan,
            file=sticker,
            file_size=9000,
            media_type="sticker",
            sticker_emoji="😈",
            width=256,
            height=256,
        ),
        message(
            9,
            t[8],
            CHANNEL_NAME,
            chan,
            file=voice,
            file_size=70,
            media_type="voice_message",
            mime_type="audio/ogg",
            duration_seconds=3,
        ),
        message(
            10,
            t[9],
            CHANNEL_NAME,
            chan,
            file=document,
            file_name="IMG_2024.JPG",
            file_size=132993,
            mime_type="image/jpeg",
        ),
        message(
            11,
            t[10],
            CHANNEL_NAME,
            chan,
            file=TOO_BIG,
            thumbnail=big_thumb,
            media_type="video_file",
            mime_type="video/mp4",
            duration_seconds=600,
            width=1920,
            height=1080,
        ),
        service(12, t[11], CHANNEL_NAME, chan, action="pin_message", message_id=3),
    ]
    write_result(
        root,
        {"name": CHANNEL_NAME, "type": "private_channel", "id": CHANNEL_ID, "messages": messages},
    )
    by = (CHANNEL_NAME, chan)
    return BuiltExport(
        root=root,
        chat_id=CHANNEL_ID,
        chat_name=CHANNEL_NAME,
        media=(
            Expected(photo1, "photo", 2, t[1], *by),
            Expected(video, "video", 3, t[2], *by),
            Expected(photo2, "photo", 4, t[3], *by, forwarded_from="Original Uploader"),
            Expected(gif, "animation", 7, t[6], *by),
            Expected(sticker, "sticker", 8, t[7], *by),
            Expected(document, "file", 10, t[9], *by),
            Expected(big_thumb, "thumbnail", 11, t[10], *by),
        ),
        missing=(photo_missing,),
        not_included=(5, 11),
    )


#: Chats of the full-account export: (folder number, name, type, bare id).
PERSONAL = (1, "Kim Minji", "personal_chat", 5550001)
SUPERGROUP = (2, "공유방 Share Room", "public_supergroup", 1698765432)
SAVED = (3, None, "saved_messages", 5550000)
LEFT_CHANNEL = (4, "Old Leak Channel", "private_channel", 1500000001)


def build_full_account_export(root: Path) -> dict[str, BuiltExport]:
    """A full-account export (personal info, contacts, chats and left chats) with one photo each."""
    when = T0 + timedelta(days=1)
    built: dict[str, BuiltExport] = {}
    chats: list[dict[str, Any]] = []
    left: list[dict[str, Any]] = []
    sources = {
        "personal": (PERSONAL, FACES / "rose_leslie2.jpg", "Kim Minji", "user5550001"),
        "supergroup": (SUPERGROUP, FACES / "two_people.jpg", "Lee", "user5559999"),
        "saved": (SAVED, FACES / "johnsnow_test1.jpg", "Me Myself", "user5550000"),
        "left": (LEFT_CHANNEL, FACES / "obama3.jpg", "Old Leak Channel", "channel1500000001"),
    }
    for label, ((number, name, chat_type, chat_id), face, sender, sender_id) in sources.items():
        folder = f"chats/chat_{number}/"
        photo = f"{folder}photos/photo_1{file_date(when)}.jpg"
        _copy(face, root, photo)
        extra: dict[str, Any] = {}
        if label == "supergroup":
            extra["forwarded_from"] = "Leak Channel"
        if label == "saved":
            extra["saved_from"] = "Leak Channel"
        entry: dict[str, Any] = {}
        if name is not None:
            entry["name"] = name
        entry.update({"type": chat_type, "id": chat_id})
        entry["messages"] = [
            message(40, when, sender, sender_id, text_parts=("안녕",)),
            message(
                41,
                when,
                sender,
                sender_id,
                photo=photo,
                photo_file_size=1000,
                width=640,
                height=480,
                **extra,
            ),
        ]
        (left if label == "left" else chats).append(entry)
        forwarded = extra.get("forwarded_from") or extra.get("saved_from")
        built[label] = BuiltExport(
            root=root,
            chat_id=chat_id,
            chat_name=name,
            media=(Expected(photo, "photo", 41, when, sender, sender_id, forwarded),),
            missing=(),
            not_included=(),
        )
    write_result(
        root,
        {
            "about": "Here is the data you requested. Remember: Telegram is ad free, ...",
            "personal_information": {
                "user_id": 5550000,
                "first_name": "Me",
                "last_name": "Myself",
                "phone_number": "+82 10 0000 0000",
                "bio": "",
            },
            "profile_pictures": [],
            "contacts": {"about": "If you allow access, ...", "list": []},
            "frequent_contacts": {"about": "This is a rating of people ...", "list": []},
            "chats": {"about": "This page lists all chats from this export.", "list": chats},
            "left_chats": {
                "about": "This page lists all supergroups and channels you've left.",
                "list": left,
            },
        },
    )
    return built


def build_text_only_export(root: Path, count: int) -> None:
    """A busy group export of ``count`` text messages (for timing the reader)."""
    messages = [
        message(
            i,
            T0 + timedelta(seconds=i),
            f"Member {i % 50}",
            f"user{7000 + i % 50}",
            text_parts=("message number ", {"type": "bold", "text": str(i)}, " ok"),
        )
        for i in range(1, count + 1)
    ]
    write_result(
        root,
        {"name": "Big Group", "type": "private_supergroup", "id": 1700000000, "messages": messages},
    )
