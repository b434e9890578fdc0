"""Reading Telegram Desktop JSON exports: each photo and video with its chat, message and link."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

import safeeye.ingest.telegram as telegram
from safeeye.ingest.telegram import (
    TelegramExportError,
    TelegramMedia,
    evidence,
    message_link,
    read_export,
)
from telegram_export import (
    CHANNEL_ID,
    CHANNEL_NAME,
    LEFT_CHANNEL,
    PERSONAL,
    SUPERGROUP,
    T0,
    build_full_account_export,
    build_single_chat_export,
    build_text_only_export,
    message,
    write_result,
)


@pytest.fixture(scope="module")
def channel_export(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    built = build_single_chat_export(tmp_path_factory.mktemp("ChatExport_2024-03-15"))
    return built, read_export(built.root)


def _by_path(media: tuple[TelegramMedia, ...]) -> dict[str, TelegramMedia]:
    return {item.relative_path: item for item in media}


def test_each_photo_and_video_becomes_media_with_chat_message_utc_date_and_author(
    channel_export,  # type: ignore[no-untyped-def]
) -> None:
    built, export = channel_export
    found = _by_path(export.media)
    assert set(found) == {expected.relative_path for expected in built.media}
    for expected in built.media:
        media = found[expected.relative_path]
        assert media.kind == expected.kind
        assert media.path == (built.root / expected.relative_path).resolve()
        assert media.path.is_file()
        assert (media.chat_name, media.chat_type, media.chat_id) == (
            CHANNEL_NAME,
            "private_channel",
            CHANNEL_ID,
        )
        assert media.message_id == expected.message_id
        assert media.date == expected.date and media.date.tzinfo is not None
        assert (media.author, media.author_id) == (expected.author, expected.author_id)
        assert media.forwarded_from == expected.forwarded_from
    assert export.layout == "single_chat"
    (chat,) = export.chats
    assert (chat.name, chat.type, chat.id, chat.message_count) == (
        CHANNEL_NAME,
        "private_channel",
        CHANNEL_ID,
        12,
    )
    assert chat.media_count == len(built.media)


def test_date_comes_from_unixtime_not_the_exporting_computers_local_time(
    channel_export,  # type: ignore[no-untyped-def]
) -> None:
    built, export = channel_export
    photo = _by_path(export.media)[built.media[0].relative_path]
    raw = json.loads((built.root / "result.json").read_text(encoding="utf-8"))["messages"][1]
    assert raw["date"] == "2024-03-15T06:16:03"  # Seoul wall clock, no zone
    assert photo.date == datetime(2024, 3, 14, 21, 16, 3, tzinfo=UTC)
    assert not any("date_unixtime" in problem for problem in export.problems)


def test_channel_message_link_is_the_private_c_form_without_minus_100(
    channel_export,  # type: ignore[no-untyped-def]
) -> None:
    _, export = channel_export
    video = next(item for item in export.media if item.kind == "video")
    assert video.link == f"https://t.me/c/{CHANNEL_ID}/3"
    assert video.link_form == "private"
    assert export.chats[0].link_form == "private"
    assert message_link("private_supergroup", -1001234567890, 5) == (
        "https://t.me/c/1234567890/5",
        "private",
    )


def test_public_username_known_to_the_counselor_gives_a_public_link(tmp_path: Path) -> None:
    built = build_single_chat_export(tmp_path)
    export = read_export(built.root, usernames={CHANNEL_ID: "@leak_channel"})
    video = next(item for item in export.media if item.kind == "video")
    assert (video.link, video.link_form) == ("https://t.me/leak_channel/3", "public")
    assert export.chats[0].username == "leak_channel"


def test_personal_chats_basic_groups_and_migrated_history_have_no_message_link() -> None:
    assert message_link("personal_chat", 5550001, 41) == (None, "none")
    assert message_link("private_group", 4000001, 41) == (None, "none")
    assert message_link("saved_messages", 5550000, 41) == (None, "none")
    assert message_link("public_supergroup", 1698765432, 12 - 1_000_000_000) == (None, "none")


def test_left_out_and_missing_files_are_problems_not_errors(
    channel_export,  # type: ignore[no-untyped-def]
) -> None:
    built, export = channel_export
    problems = "\n".join(export.problems)
    for relative in built.missing:
        assert f"'{relative}' but the file is missing" in problems
    for message_id in built.not_included:
        assert f"message {message_id}: video not included in the export" in problems
    assert "(File not included. Change data exporting settings to download.)" in problems
    assert "(File exceeds maximum size." in problems


def test_thumbnail_stands_in_for_a_video_too_big_to_export(
    channel_export,  # type: ignore[no-untyped-def]
) -> None:
    _, export = channel_export
    (thumbnail,) = [item for item in export.media if item.kind == "thumbnail"]
    assert thumbnail.message_id == 11
    assert thumbnail.mime_type == "image/jpeg"
    assert thumbnail.link == f"https://t.me/c/{CHANNEL_ID}/11"


def test_voice_messages_are_not_scanned_and_captions_are_plain_text(
    channel_export,  # type: ignore[no-untyped-def]
) -> None:
    _, export = channel_export
    assert not any("voice_messages/" in item.relative_path for item in export.media)
    video = next(item for item in export.media if item.kind == "video")
    assert video.caption.startswith("새 영상 full mirror: https://t.me/leakmirror/77 backup here")
    assert (video.width, video.height, video.duration, video.mime_type) == (
        640,
        360,
        2,
        "video/mp4",
    )
    assert video.signature == "Spreader"
    gif = next(item for item in export.media if item.kind == "animation")
    assert gif.edited == datetime(2024, 3, 14, 21, 26, 3, tzinfo=UTC)


def test_links_in_message_texts_are_collected_for_discovery(
    channel_export,  # type: ignore[no-untyped-def]
) -> None:
    _, export = channel_export
    links = {(link.url, link.kind, link.message_id) for link in export.links}
    assert ("https://t.me/leakmirror/77", "link", 3) in links
    assert ("https://files.example.org/v/9", "text_link", 3) in links
    assert ("https://t.me/leak_admin_bot", "mention", 3) in links
    assert ("https://t.me/+AbCdEfGh123", "text", 4) in links
    assert len([link for link in export.links if link.message_id == 3]) == 3  # no duplicates
    first = next(link for link in export.links if link.url == "https://t.me/leakmirror/77")
    assert first.chat == CHANNEL_NAME and first.chat_id == CHANNEL_ID
    assert first.date == datetime(2024, 3, 14, 21, 17, 3, tzinfo=UTC)
    assert first.message_link == f"https://t.me/c/{CHANNEL_ID}/3"


def test_full_account_export_reads_chats_and_left_chats(tmp_path: Path) -> None:
    built = build_full_account_export(tmp_path)
    export = read_export(tmp_path)
    assert export.layout == "full_account"
    chats = {chat.id: chat for chat in export.chats}
    assert chats[PERSONAL[3]].type == "personal_chat"
    assert chats[LEFT_CHANNEL[3]].left and not chats[SUPERGROUP[3]].left
    assert chats[built["saved"].chat_id].name is None
    found = _by_path(export.media)
    assert len(found) == 4
    for label, part in built.items():
        (expected,) = part.media
        media = found[expected.relative_path]
        assert expected.relative_path.startswith("chats/chat_")
        assert (media.chat_id, media.chat_name, media.message_id) == (
            part.chat_id,
            part.chat_name,
            41,
        )
        assert (media.author, media.author_id, media.date) == (
            expected.author,
            expected.author_id,
            expected.date,
        )
        assert media.forwarded_from == expected.forwarded_from, label
    assert found[built["supergroup"].media[0].relative_path].link == (
        f"https://t.me/c/{SUPERGROUP[3]}/41"
    )
    assert found[built["personal"].media[0].relative_path].link is None
    assert export.problems == ()


def test_paths_leading_outside_the_export_are_refused_not_read(tmp_path: Path) -> None:
    root = tmp_path / "export"
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"\xff\xd8\xff\xe0 not for reading")
    (root / "photos").mkdir(parents=True)
    os.symlink(outside, root / "photos" / "link.jpg")
    hostile = ["../../etc/passwd", "/etc/passwd", "..\\secret.jpg", "photos/link.jpg", "C:/x.jpg"]
    messages = [message(i, T0, "x", "user1", photo=path) for i, path in enumerate(hostile, start=1)]
    write_result(root, {"name": "n", "type": "private_supergroup", "id": 7, "messages": messages})
    export = read_export(root)
    assert export.media == ()
    assert len(export.problems) == len(hostile)
    assert all("refused" in problem for problem in export.problems)


def test_a_folder_without_result_json_is_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(TelegramExportError, match=r"no result\.json"):
        read_export(tmp_path)
    (tmp_path / "messages.html").write_text("<html></html>")
    with pytest.raises(TelegramExportError, match="HTML export"):
        read_export(tmp_path)
    with pytest.raises(TelegramExportError, match="does not exist"):
        read_export(tmp_path / "nowhere")
    (tmp_path / "result.json").write_text('{"kind": "something else"}')
    with pytest.raises(TelegramExportError, match="not a Telegram Desktop export"):
        read_export(tmp_path)


def test_the_folder_above_an_unzipped_export_is_accepted(tmp_path: Path) -> None:
    build_single_chat_export(tmp_path / "ChatExport_2024-03-15")
    assert read_export(tmp_path).root == tmp_path / "ChatExport_2024-03-15"


@pytest.mark.parametrize(
    "content",
    [
        '{"name": "x", "type": "personal_chat", "id": 1, "messages": [{"id": 1, ',
        '{"name": "x", "type": "personal_chat", "id": 1, "messages": [}',
        "",
        "\xff\xfe not json",
        '{"name": "x", "type": "personal_chat", "id": 1, "messages": ['
        + "[" * 100_000
        + "]" * 100_000
        + "]}",
    ],
)
def test_malformed_result_json_gives_a_clear_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "result.json").write_text(content, encoding="latin-1")
    with pytest.raises(TelegramExportError) as caught:
        read_export(tmp_path)
    assert caught.value.code == "telegram_export"
    assert "result.json" in str(caught.value)


def test_result_json_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    build_single_chat_export(tmp_path)
    with pytest.raises(TelegramExportError, match="over the 1,000-byte limit"):
        read_export(tmp_path, max_bytes=1000)


def test_control_characters_written_as_x_escapes_are_read(tmp_path: Path) -> None:
    # Telegram Desktop writes control characters as \xHH, which strict JSON rejects.
    raw = (
        '{"name": "g", "type": "private_group", "id": 3, "messages": [\n'
        ' {"id": 1, "type": "message", "date": "2024-03-15T06:15:03", "date_unixtime": '
        '"1710450903", "from": "a\\x0Bb", "from_id": "user1", "text": "tab\\\\x41 \\x01"}\n]}'
    )
    (tmp_path / "result.json").write_text(raw, encoding="utf-8")
    export = read_export(tmp_path)
    assert export.chats[0].message_count == 1


def test_streaming_across_tiny_chunks_reads_the_same(
    tmp_path: Path,
    channel_export,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built, export = channel_export
    monkeypatch.setattr(telegram, "_CHUNK_CHARS", 7)
    again = read_export(built.root)
    assert again.media == export.media
    assert again.links == export.links
    assert again.problems == export.problems


def test_old_export_without_unixtime_reads_local_dates_as_utc_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "photo_1.jpg").write_bytes(b"\xff\xd8\xff")
    old = {
        "id": 9,
        "type": "message",
        "date": "2019-05-01T10:00:00",
        "edited": "1970-01-01T09:00:00",
        "from": "a",
        "from_id": 123456,
        "photo": "photos/photo_1.jpg",
        "width": 10,
        "height": 10,
        "text": "",
    }
    write_result(tmp_path, {"name": "c", "type": "personal_chat", "id": 1, "messages": [old]})
    export = read_export(tmp_path)
    (media,) = export.media
    assert media.date == datetime(2019, 5, 1, 10, 0, tzinfo=UTC)
    assert media.edited is None
    assert media.author_id == "123456"
    assert any("date_unixtime" in problem for problem in export.problems)


def test_evidence_is_json_safe_and_names_the_file_in_the_export(
    channel_export,  # type: ignore[no-untyped-def]
) -> None:
    _, export = channel_export
    video = next(item for item in export.media if item.kind == "video")
    record = json.loads(json.dumps(evidence(video)))
    assert record == {
        "source": "telegram_export",
        "chat": CHANNEL_NAME,
        "chat_type": "private_channel",
        "chat_id": CHANNEL_ID,
        "message_id": 3,
        "date": "2024-03-14T21:17:03+00:00",
        "edited": None,
        "author": CHANNEL_NAME,
        "author_id": f"channel{CHANNEL_ID}",
        "signature": "Spreader",
        "forwarded_from": None,
        "link": f"https://t.me/c/{CHANNEL_ID}/3",
        "link_form": "private",
        "file": "video_files/clip_0314.mp4",
        "kind": "video",
        "mime_type": "video/mp4",
    }


def test_twenty_thousand_text_messages_parse(tmp_path: Path) -> None:
    build_text_only_export(tmp_path, 20_000)
    export = read_export(tmp_path)
    assert export.chats[0].message_count == 20_000
    assert export.media == ()
