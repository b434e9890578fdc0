"""Regression tests for what attackers and the fuzz targets found in safeeye's own parsers.

Each hostile input is either built here (the files of issue 11) or kept, as found, under
``tests/fixtures/fuzz/<target>/``; every file there is also replayed through its fuzz target.
"""

from __future__ import annotations

import gzip
import importlib
import io
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from PIL import Image

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import FetchError, MediaError
from safeeye.ingest.addresses import parse_target
from safeeye.ingest.feeds import parse_feed
from safeeye.ingest.robots import RobotsRules
from safeeye.ingest.sitemaps import parse_sitemap, xml_root_name
from safeeye.ingest.telegram import read_export
from safeeye.media import images, video
from safeeye.media.decode import open_media
from safeeye.media.images import _frame_durations
from safeeye.media.video import _declares_more_than_present, _ebml_vint, probe_duration

REPO = Path(__file__).resolve().parent.parent
FINDINGS = Path(__file__).parent / "fixtures" / "fuzz"
LIMITS = MediaLimits()
SAMPLING = SamplingPlan()
# A loose upper bound: each of these returns in milliseconds; the bugs they pin never returned.
PROMPTLY = 30.0

T = TypeVar("T")


def promptly(call: Callable[[], T]) -> T:
    """``call()``'s result or exception, failing the test if it does not end within PROMPTLY."""
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test below
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)  # a daemon: a hang cannot block exit
    worker.start()
    worker.join(PROMPTLY)
    assert not worker.is_alive(), f"still running after {PROMPTLY} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def decode_all(path: Path) -> tuple[object, int]:
    """Open ``path`` and decode every frame: (info, number of frames)."""
    with open_media(path, LIMITS, SAMPLING) as media:
        return media.info, sum(1 for _ in media.frames())


def frames(count: int) -> list[Image.Image]:
    colours = ("red", "green", "blue", "yellow")
    return [Image.new("RGB", (16, 16), colours[i % len(colours)]) for i in range(count)]


def animated_webp() -> bytes:
    """A real 3-frame animated WebP showing its frames for 100, 200 and 300 ms."""
    buffer = io.BytesIO()
    first, *rest = frames(3)
    first.save(buffer, "WEBP", save_all=True, append_images=rest, duration=[100, 200, 300])
    return buffer.getvalue()


def animated_gif() -> bytes:
    """A real 3-frame GIF, each frame with its Graphic Control Extension (100/200/300 ms)."""
    buffer = io.BytesIO()
    first, *rest = frames(3)
    first.save(buffer, "GIF", save_all=True, append_images=rest, duration=[100, 200, 300])
    return buffer.getvalue()


def with_empty_anmf_chunks(webp: bytes, *, fix_riff_size: bool) -> bytes:
    """``webp`` followed by two ANMF chunk headers that declare a length of 0."""
    data = webp + b"ANMF\x00\x00\x00\x00" * 2
    if fix_riff_size:
        data = data[:4] + struct.pack("<I", len(data) - 8) + data[8:]
    return data


def graphic_control_extensions(gif: bytes) -> list[int]:
    """Offsets of the GIF's Graphic Control Extensions (after the header and palette)."""
    return [i for i in range(13, len(gif) - 1) if gif[i : i + 2] == b"!\xf9"]


# -- issue 11: the animated WebP whose duration reader seeked backwards forever -------------


def test_webp_with_two_empty_anmf_chunks_inside_the_riff_ends_the_duration_scan() -> None:
    hostile = with_empty_anmf_chunks(animated_webp(), fix_riff_size=True)

    durations = promptly(lambda: _frame_durations(io.BytesIO(hostile), "webp", 2000))

    assert durations == pytest.approx([0.1, 0.2, 0.3])


def test_webp_with_two_empty_anmf_chunks_inside_the_riff_opens_or_is_refused_promptly(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hostile.webp"
    path.write_bytes(with_empty_anmf_chunks(animated_webp(), fix_riff_size=True))

    try:
        info, count = promptly(lambda: decode_all(path))
    except MediaError as exc:
        assert exc.code in ("corrupt", "truncated"), exc.as_text()
    else:
        assert count >= 1 and info.animated  # type: ignore[attr-defined]


def test_webp_with_two_empty_anmf_chunks_after_the_riff_plays_its_three_frames(
    tmp_path: Path,
) -> None:
    # Pillow (libwebp) ignores what follows the RIFF chunk and opens this file.
    path = tmp_path / "hostile.webp"
    path.write_bytes(with_empty_anmf_chunks(animated_webp(), fix_riff_size=False))

    info, count = promptly(lambda: decode_all(path))

    assert info.frame_count == 3 and info.duration == pytest.approx(0.6)  # type: ignore[attr-defined]
    assert count == 1  # one sample per second of a 0.6 s animation


# -- issue 11: the GIF cut inside a Graphic Control Extension -------------------------------


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 6])
def test_gif_cut_inside_a_later_graphic_control_extension_is_a_media_error_or_its_frames(
    tmp_path: Path, cut: int
) -> None:
    gif = animated_gif()
    for extension in graphic_control_extensions(gif)[1:]:
        path = tmp_path / f"cut_{extension}_{cut}.gif"
        path.write_bytes(gif[: extension + cut])
        try:
            info, count = promptly(lambda p=path: decode_all(p))
        except MediaError as exc:
            assert exc.code in ("corrupt", "truncated"), exc.as_text()
        else:
            assert count >= 1 and info.media_type == "image"  # type: ignore[attr-defined]


def test_gif_cut_right_after_a_graphic_control_label_keeps_the_frames_before_it() -> None:
    gif = animated_gif()
    second = graphic_control_extensions(gif)[1]
    hostile = gif[: second + 2]  # "!" and the 0xF9 label, then nothing

    durations = _frame_durations(io.BytesIO(hostile), "gif", 2000)

    assert durations == pytest.approx([0.1])


def test_gif_cut_inside_its_first_graphic_control_extension_is_refused(tmp_path: Path) -> None:
    gif = animated_gif()
    path = tmp_path / "cut.gif"
    path.write_bytes(gif[: graphic_control_extensions(gif)[0] + 3])

    with pytest.raises(MediaError) as caught:
        promptly(lambda: decode_all(path))

    assert caught.value.code in ("corrupt", "truncated")


@pytest.mark.parametrize("fmt", ["gif", "png", "webp"])
def test_duration_readers_stop_at_the_frame_limit(fmt: str) -> None:
    buffer = io.BytesIO()
    first, *rest = frames(12)
    pillow_format = {"gif": "GIF", "png": "PNG", "webp": "WEBP"}[fmt]
    first.save(buffer, pillow_format, save_all=True, append_images=rest, duration=50)

    durations = _frame_durations(io.BytesIO(buffer.getvalue()), fmt, 5)

    assert durations == pytest.approx([0.05] * 5)


def test_webp_reader_stops_after_its_chunk_budget() -> None:
    # Millions of empty chunks cost seconds per 50 MB; real animations have a few per frame.
    webp = animated_webp()
    padded = webp[:12] + b"JUNK\x00\x00\x00\x00" * images._MAX_BLOCKS + webp[12:]
    padded = padded[:4] + struct.pack("<I", len(padded) - 8) + padded[8:]

    assert _frame_durations(io.BytesIO(webp), "webp", 2000) == pytest.approx([0.1, 0.2, 0.3])
    assert _frame_durations(io.BytesIO(padded), "webp", 2000) == []


def test_mp4_box_walk_stops_after_its_box_budget(tmp_path: Path) -> None:
    ftyp = b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00"
    past_the_end = b"\x00\x01\x00\x00mdat"
    short, long = tmp_path / "short.mp4", tmp_path / "long.mp4"
    short.write_bytes(ftyp + b"\x00\x00\x00\x08free" * 10 + past_the_end)
    long.write_bytes(ftyp + b"\x00\x00\x00\x08free" * video._MAX_TOP_LEVEL_BOXES + past_the_end)

    assert _declares_more_than_present(short, "mp4") is True
    assert _declares_more_than_present(long, "mp4") is False  # FFmpeg judges that one


# -- XML with an encoding declaration expat cannot read (fuzz: sitemaps, feeds) --------------


def sitemap_in(encoding: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{body}</urlset>'
    ).encode(encoding)


def test_sitemap_declared_in_euc_kr_is_read() -> None:
    body = sitemap_in("euc-kr", "<url><loc>https://pages.example/사진/1</loc></url>")

    sitemap = parse_sitemap(body, "https://pages.example/sitemap.xml")

    assert sitemap.pages == ("https://pages.example/%EC%82%AC%EC%A7%84/1",)
    assert xml_root_name(body) == "urlset"


@pytest.mark.parametrize("encoding", ["no-such-encoding", "rot13", "hex", "idna", "utf-16"])
def test_sitemap_declaring_no_usable_text_encoding_is_read_as_utf8(encoding: str) -> None:
    body = sitemap_in("utf-8", "<url><loc>https://pages.example/a</loc></url>").replace(
        b'encoding="utf-8"', f'encoding="{encoding}"'.encode()
    )

    assert xml_root_name(body) == "urlset"
    assert parse_sitemap(body, "https://pages.example/").pages == ("https://pages.example/a",)


@pytest.mark.parametrize(
    "name", ["U" + "Y" * 90 + "TF-8", "x" * 5000], ids=["long", "thousands of letters"]
)
def test_sitemap_declaring_an_encoding_with_a_long_unknown_name_is_read_as_utf8(name: str) -> None:
    body = f'<?xml version="1.0" encoding="{name}"?><urlset><url><loc>/a</loc></url></urlset>'

    assert xml_root_name(body.encode()) == "urlset"
    assert parse_sitemap(body.encode(), "https://p.example/").pages == ("https://p.example/a",)


def test_utf16_sitemap_with_a_byte_order_mark_is_read_whatever_it_declares() -> None:
    body = '<?xml version="1.0" encoding="no-such"?><urlset><url><loc>/사진</loc></url></urlset>'

    assert xml_root_name(body.encode("utf-16")) == "urlset"


def test_feed_enclosure_without_url_is_skipped() -> None:
    rss = (
        '<rss version="2.0"><channel><item><link>https://p.example/1</link>'
        '<enclosure type="image/jpeg" length="1"/>'
        '<enclosure url="https://cdn.example/2.jpg" type="image/jpeg"/></item></channel></rss>'
    )

    feed = parse_feed(rss.encode(), "https://p.example/feed")

    assert [m.url for m in feed.media] == ["https://cdn.example/2.jpg"]


def test_gzipped_feed_declared_in_shift_jis_is_read() -> None:
    rss = (
        '<?xml version="1.0" encoding="Shift_JIS"?><rss version="2.0"><channel>'
        "<item><link>https://pages.example/記事/1</link>"
        '<enclosure url="https://cdn.example/画像.jpg" type="image/jpeg"/></item>'
        "</channel></rss>"
    ).encode("shift_jis")

    feed = parse_feed(gzip.compress(rss), "https://pages.example/feed")

    assert feed.pages == ("https://pages.example/%E8%A8%98%E4%BA%8B/1",)
    assert [m.url for m in feed.media] == ["https://cdn.example/%E7%94%BB%E5%83%8F.jpg"]


# -- media found by the fuzz targets ---------------------------------------------------------


def test_video_track_whose_codec_ffmpeg_lacks_is_unsupported() -> None:
    path = FINDINGS / "open_media" / "mp4_track_without_codec"

    with pytest.raises(MediaError) as caught:
        decode_all(path)

    assert caught.value.code == "unsupported"
    assert probe_duration(path) is None or probe_duration(path) > 0


def test_heic_whose_frame_is_larger_than_its_header_is_a_media_error() -> None:
    path = FINDINGS / "open_media" / "heic_frame_larger_than_header"

    with pytest.raises(MediaError) as caught:
        decode_all(path)

    assert caught.value.code == "corrupt"


@pytest.mark.parametrize(("data", "at"), [(b"", 0), (b"\x1a\x45", 2), (b"\x00\x81", 0)])
def test_ebml_size_outside_the_data_is_a_value_error(data: bytes, at: int) -> None:
    with pytest.raises(ValueError):
        _ebml_vint(data, at)


def test_empty_file_declares_nothing_in_any_video_format(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")

    for fmt in ("mp4", "mov", "avi", "webm", "mkv"):
        assert _declares_more_than_present(path, fmt) is False


# -- every kept finding, replayed through its fuzz target ------------------------------------


def kept_findings() -> list[Path]:
    return sorted(p for p in FINDINGS.glob("*/*") if p.is_file())


@pytest.mark.parametrize("path", kept_findings(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_kept_finding_passes_its_fuzz_target(path: Path) -> None:
    sys.path.insert(0, str(REPO))
    try:
        target = importlib.import_module(f"fuzz.targets.{path.parent.name}")
    finally:
        sys.path.remove(str(REPO))

    promptly(lambda: target.test_one_input(path.read_bytes()))


# -- robots.txt values the standard library's parser cannot convert -------------------------


@pytest.mark.parametrize(
    "value", ["²", "%C2%B2", "٣", "9" * 5000], ids=["superscript", "escaped", "arabic", "huge"]
)
def test_robots_crawl_delay_that_is_no_number_is_ignored_and_keeps_its_group(value: str) -> None:
    text = f"User-agent: a\nCrawl-delay: {value}\nUser-agent: b\nDisallow: /private\n"

    rules = RobotsRules.parse(text, expires=60.0)

    plain = RobotsRules.parse(text.replace(value, "soon"), expires=60.0)
    assert rules.crawl_delay("a") is None and rules.crawl_delay("b") is None
    for agent in ("a", "b", "c"):
        url = "https://pages.example/private/1.jpg"
        assert rules.allows(url, agent) == plain.allows(url, agent)
    assert not rules.allows("https://pages.example/private/1.jpg", "b")


def test_robots_request_rate_that_is_no_number_is_ignored() -> None:
    rules = RobotsRules.parse("User-agent: *\nRequest-rate: 1/²\nCrawl-delay: 4\n", 60.0)

    assert rules.parser is not None and rules.parser.request_rate("x") is None
    assert rules.crawl_delay("x") == 4.0


# -- Telegram exports with values Python refuses to convert ----------------------------------


def test_telegram_export_with_a_number_of_thousands_of_digits_is_read(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "p.jpg").write_bytes(b"\xff\xd8\xff")
    huge = "7" * 5000
    (tmp_path / "result.json").write_text(
        '{"name": "c", "type": "private_channel", "id": 5, "messages": ['
        f'{{"id": {huge}, "type": "message", "date_unixtime": "1710450963", "photo": '
        '"photos/p.jpg", "width": 1e999, "text": ""},'
        '{"id": 2, "type": "message", "date_unixtime": "1710450964", "photo": "photos/p.jpg",'
        ' "text": ""}]}'
    )

    export = read_export(tmp_path)

    assert [m.message_id for m in export.media] == [None, 2]
    assert export.media[0].link is None and export.media[1].link == "https://t.me/c/5/2"


def test_telegram_date_before_the_first_utc_instant_is_no_date(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text(
        '{"name": "c", "type": "private_channel", "id": 5, "messages": ['
        '{"id": 1, "type": "message", "date": "0001-01-01T00:00:00+01:00", "edited": '
        '"9999-12-31T23:59:59-01:00", "photo": "p.jpg", "text": "https://x.example/"}]}'
    )
    (tmp_path / "p.jpg").write_bytes(b"\xff\xd8\xff")

    export = read_export(tmp_path)

    assert [(m.date, m.edited) for m in export.media] == [(None, None)]
    assert [link.url for link in export.links] == ["https://x.example/"]


@pytest.mark.parametrize("url", ["tg://[esolve?domain=leaks&post=7", "tg://resolve]?domain=x"])
def test_telegram_tg_link_that_cannot_be_split_is_dropped(tmp_path: Path, url: str) -> None:
    (tmp_path / "result.json").write_text(
        '{"name": "c", "type": "private_channel", "id": 5, "messages": [{"id": 1, "type": '
        '"message", "text": [{"type": "text_link", "text": "here", "href": "' + url + '"}, '
        '" https://x.example/"], "text_entities": [{"type": "text_link", "text": "here", '
        '"href": "' + url + '"}, {"type": "plain", "text": " https://x.example/"}]}]}'
    )

    export = read_export(tmp_path)

    assert [link.url for link in export.links] == ["https://x.example/"]


# -- the fetcher's URL gate -------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://[::%é]/", "https://[fe80::1%eth0사진]:8443/a"])
def test_url_with_a_non_ascii_ipv6_zone_is_a_bad_url(url: str) -> None:
    with pytest.raises(FetchError) as caught:
        parse_target(url)

    assert caught.value.code == "bad_url"
