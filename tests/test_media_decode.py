"""Specification of the media decoding layer: sniffing, images, video sampling, hostile files.

Every file other than the committed fixtures is generated here, in tmp_path, at test time.
"""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import MediaError
from safeeye.media.decode import DecodedMedia, MediaInfo, open_media
from safeeye.media.frames import Frame
from safeeye.media.sniff import sniff
from safeeye.media.video import FramePicker, ShotCover, VideoMedia

FIXTURES = Path(__file__).parent / "fixtures"
CLIP = FIXTURES / "video" / "short_hamilton_clip.mp4"
FACE_JPEG = FIXTURES / "faces" / "obama.jpg"
FACE_PNG = FIXTURES / "faces" / "lin-manuel-miranda.png"
LIMITS = MediaLimits()
SAMPLING = SamplingPlan()
RED, BLUE = (255, 0, 0), (0, 0, 255)


def decode_all(
    path: Path, limits: MediaLimits = LIMITS, sampling: SamplingPlan = SAMPLING
) -> tuple[MediaInfo, list[Frame]]:
    with open_media(path, limits, sampling) as media:
        return media.info, list(media.frames())


def refusal(path: Path, limits: MediaLimits = LIMITS) -> MediaError:
    """The MediaError that opening and fully decoding ``path`` raises."""
    with pytest.raises(MediaError) as caught:
        decode_all(path, limits)
    return caught.value


def assert_clear(error: MediaError, code: str, *words: str) -> None:
    assert error.code == code, error.as_text()
    text = str(error).lower()
    for word in words:
        assert word.lower() in text, f"{word!r} not in {text!r}"


def two_colour_image(width: int = 40, height: int = 20) -> Image.Image:
    """Left half red, right half blue, so orientation is visible."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = RED
    pixels[:, width // 2 :] = BLUE
    return Image.fromarray(pixels)


def near(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    return bool(np.all(np.abs(pixel.astype(int) - np.array(colour)) <= tolerance))


def encode_clip(
    dest: Path,
    codec: str,
    *,
    container_format: str | None = None,
    seconds: float = 1.5,
    size: tuple[int, int] = (160, 90),
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    rotation: int | None = None,
) -> Path:
    """Re-encode the start of the fixture clip into ``dest`` with PyAV (small and fast)."""
    rate = 30
    with (
        av.open(str(CLIP)) as source,
        av.open(str(dest), "w", format=container_format, options=container_options or {}) as out,
    ):
        stream = out.add_stream(codec, rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = options or {}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for index, frame in enumerate(source.decode(video=0)):
            if index >= seconds * rate:
                break
            small = frame.reformat(width=size[0], height=size[1], format="yuv420p")
            small.pts, small.time_base = index, Fraction(1, rate)
            small.pict_type = av.video.frame.PictureType.NONE
            out.mux(stream.encode(small))
        out.mux(stream.encode(None))
    return dest


# --- sniffing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind", "fmt"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image", "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image", "webp"),
        (b"GIF89a\x01\x00\x01\x00", "image", "gif"),
        (b"BM" + b"\x00" * 8 + b"\x36\x00\x00\x00" + b"\x28\x00\x00\x00", "image", "bmp"),
        (b"II*\x00\x08\x00\x00\x00", "image", "tiff"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "image", "heic"),
        (b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic", "image", "heic"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "image", "avif"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41", "video", "mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video", "mov"),
        (b"\x1aE\xdf\xa3\x9fB\x86\x81\x01B\x82\x84webm", "video", "webm"),
        (b"\x1aE\xdf\xa3\xa3B\x86\x81\x01B\x82\x88matroska", "video", "mkv"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video", "avi"),
        (b"<!DOCTYPE html><html><body>", "other", "html"),
        (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>", "other", "svg"),
        (b"%PDF-1.7\n", "other", "pdf"),
        (b"PK\x03\x04\x14\x00", "other", "zip"),
        (b"\x1f\x8b\x08\x00", "other", "gzip"),
        (b"just some words\n", "other", "text"),
        (b"", "other", "empty"),
        (bytes(range(256)) * 4, "other", "unknown"),
    ],
)
def test_sniff_names_format_from_magic_bytes(head: bytes, kind: str, fmt: str) -> None:
    found = sniff(head)
    assert (found.kind, found.format) == (kind, fmt)
    assert found.description


def test_sniff_tells_animated_png_apart(tmp_path: Path) -> None:
    path = tmp_path / "anim.png"
    frames = [two_colour_image(), two_colour_image().transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert "APNG" in sniff(path.read_bytes()[:4096]).description


# --- still images ---------------------------------------------------------------------------


def test_jpeg_with_exif_orientation_6_comes_out_rotated_upright(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    two_colour_image(40, 20).save(path, exif=exif.tobytes(), quality=95)

    info, frames = decode_all(path)

    assert (info.width, info.height) == (20, 40)
    (frame,) = frames
    assert (frame.index, frame.time, frame.reason) == (0, 0.0, "still")
    assert frame.image.shape == (40, 20, 3) and frame.image.dtype == np.uint8
    # Clockwise rotation brings the stored left (red) half to the top.
    assert near(frame.image[5, 10], RED) and near(frame.image[35, 10], BLUE)


def test_png_alpha_is_composited_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "alpha.png"
    pixels = np.zeros((10, 20, 4), np.uint8)
    pixels[:, :10] = (255, 0, 0, 255)  # opaque red
    pixels[:, 10:] = (0, 0, 255, 0)  # fully transparent
    Image.fromarray(pixels, "RGBA").save(path)

    _, (frame,) = decode_all(path)

    assert frame.image.shape == (10, 20, 3)
    assert tuple(frame.image[5, 2]) == RED
    assert tuple(frame.image[5, 15]) == (255, 255, 255)


@pytest.mark.parametrize(
    ("pillow_format", "suffix", "fmt"),
    [
        ("WEBP", "webp", "webp"),
        ("BMP", "bmp", "bmp"),
        ("TIFF", "tif", "tiff"),
        ("GIF", "gif", "gif"),
        ("PNG", "png", "png"),
    ],
)
def test_still_image_formats_round_trip(
    tmp_path: Path, pillow_format: str, suffix: str, fmt: str
) -> None:
    path = tmp_path / f"still.{suffix}"
    two_colour_image().save(
        path, format=pillow_format, **({"lossless": True} if fmt == "webp" else {})
    )

    info, (frame,) = decode_all(path)

    assert info == MediaInfo("image", fmt, 40, 20, None, 1, False)
    assert near(frame.image[10, 5], RED) and near(frame.image[10, 35], BLUE)


def test_heic_decodes_when_pillow_heif_can_write_it(tmp_path: Path) -> None:
    path = tmp_path / "photo.heic"
    try:
        two_colour_image(64, 32).save(path, format="HEIF", quality=90)
    except (KeyError, OSError, ValueError) as exc:
        pytest.skip(f"pillow_heif cannot encode HEIC here: {exc}")

    info, (frame,) = decode_all(path)

    assert (info.format, info.width, info.height) == ("heic", 64, 32)
    assert near(frame.image[16, 8], RED, 60) and near(frame.image[16, 56], BLUE, 60)


def test_fixture_photos_decode_to_one_rgb_still() -> None:
    for path in sorted((FIXTURES / "faces").iterdir()):
        info, frames = decode_all(path)
        assert info.media_type == "image" and not info.animated, path.name
        assert [f.reason for f in frames] == ["still"]
        assert frames[0].image.shape == (info.height, info.width, 3)


# --- animated images ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pillow_format", "fmt"), [("GIF", "gif"), ("WEBP", "webp"), ("PNG", "png")]
)
def test_animation_yields_first_frame_and_one_per_second_with_timestamps(
    tmp_path: Path, pillow_format: str, fmt: str
) -> None:
    path = tmp_path / f"anim.{fmt}"
    frames = [Image.new("RGB", (32, 16), (i * 20, 0, 255 - i * 20)) for i in range(10)]
    frames[0].save(
        path, format=pillow_format, save_all=True, append_images=frames[1:], duration=250
    )

    info, sampled = decode_all(path)

    assert info == MediaInfo("image", fmt, 32, 16, 2.5, 10, True)
    assert [(f.index, f.time, f.reason) for f in sampled] == [
        (0, 0.0, "sample"),
        (4, 1.0, "sample"),
        (8, 2.0, "sample"),
    ]
    assert near(sampled[1].image[8, 16], (80, 0, 175), 10)


def test_animation_with_more_frames_than_allowed_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.gif"
    frames = [Image.new("RGB", (8, 8), (i * 50, 0, 0)) for i in range(5)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)

    error = refusal(path, MediaLimits(max_animation_frames=3))

    assert_clear(error, "too_many_frames", "5 frames", "limit of 3")


# --- video ----------------------------------------------------------------------------------


VIDEO_KINDS = {
    "mp4-h264": ("clip.mp4", "libx264", None, "mp4", {"preset": "ultrafast"}),
    "mov-h264": ("clip.mov", "libx264", "mov", "mov", {"preset": "ultrafast"}),
    "mkv-h264": ("clip.mkv", "libx264", "matroska", "mkv", {"preset": "ultrafast"}),
    "webm-vp8": ("clip.webm", "libvpx", "webm", "webm", {"deadline": "realtime"}),
    "webm-vp9": (
        "clip.webm",
        "libvpx-vp9",
        "webm",
        "webm",
        {"deadline": "realtime", "cpu-used": "8"},
    ),
    "avi-mpeg4": ("clip.avi", "mpeg4", "avi", "avi", {}),
}


@pytest.mark.parametrize("kind", sorted(VIDEO_KINDS))
def test_video_formats_decode_with_samples_at_each_second(tmp_path: Path, kind: str) -> None:
    name, codec, container_format, fmt, options = VIDEO_KINDS[kind]
    path = encode_clip(tmp_path / name, codec, container_format=container_format, options=options)

    info, frames = decode_all(path)

    assert (info.media_type, info.format, info.width, info.height) == ("video", fmt, 160, 90)
    assert info.duration == pytest.approx(1.5, abs=0.1)
    assert frames[0].time == pytest.approx(0.0, abs=0.05)
    assert any(0.99 <= f.time < 1.1 for f in frames), [f.time for f in frames]
    assert all(f.image.shape == (90, 160, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.time for f in frames] == sorted(f.time for f in frames)


def test_fixture_clip_yields_vpdq_samples_keyframes_and_cuts_in_order() -> None:
    info, frames = decode_all(CLIP)

    assert (info.format, info.width, info.height, info.frame_count) == ("mp4", 640, 360, 275)
    assert info.duration == pytest.approx(10.02, abs=0.01)
    times = [f.time for f in frames]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(0.0 <= t <= info.duration for t in times)
    # vPDQ's frames: every int(29.97 fps x 1 s) = 29th frame from the first picture.
    samples = [f.index for f in frames if f.reason == "sample"]
    assert samples == list(range(0, 275, 29))
    # Each of the three shots that start at cuts (1.52, 3.59 and 7.89 s) is analysed: at the
    # cut itself, or by a sample less than half a second later (the same shot).
    for cut in (1.52, 3.59, 7.89):
        assert any(
            (f.reason != "sample" and abs(cut - f.time) < 0.05)
            or (f.reason == "sample" and 0 <= f.time - cut <= 0.5)
            for f in frames
        ), cut
    assert all(f.image.shape == (360, 640, 3) for f in frames)


def test_parts_of_a_video_join_up_to_the_whole() -> None:
    whole = [(f.index, f.reason) for f in decode_all(CLIP)[1]]
    parts = []
    for start, end in ((0.0, 4.0), (4.0, 7.5), (7.5, None)):
        with open_media(CLIP, LIMITS, SAMPLING) as media:
            assert isinstance(media, VideoMedia)
            parts.extend((f.index, f.reason) for f in media.frames_between(start, end))
    samples = [i for i, reason in whole if reason == "sample"]
    assert [i for i, reason in parts if reason == "sample"] == samples
    assert {i for i, _ in whole} <= {i for i, _ in parts} | {i for i, r in whole if r != "sample"}


def test_video_filmed_sideways_comes_out_upright(tmp_path: Path) -> None:
    path = encode_clip(
        tmp_path / "phone.mp4", "libx264", seconds=0.2, options={"preset": "ultrafast"}, rotation=90
    )

    info, frames = decode_all(path)

    assert (info.width, info.height) == (90, 160)
    assert frames[0].image.shape == (160, 90, 3)


def test_frame_picker_samples_every_step_frames_and_drops_repeats_but_not_cuts() -> None:
    picker = FramePicker(SamplingPlan(interval_seconds=1.0, min_gap_seconds=0.4), step=30)

    assert picker.choose(0.0, keyframe=True, scene_change=False, number=0) == "sample"
    assert picker.choose(0.2, keyframe=True, scene_change=False, number=6) is None  # repeat
    assert picker.choose(0.3, keyframe=False, scene_change=True, number=9) == "scene"  # a cut
    assert picker.choose(0.5, keyframe=False, scene_change=False, number=15) is None
    assert picker.choose(1.0, keyframe=False, scene_change=False, number=30) == "sample"
    assert picker.choose(1.6, keyframe=True, scene_change=False, number=48) == "keyframe"


def test_a_cut_shortly_before_a_sample_is_covered_by_the_sample() -> None:
    shots = ShotCover(lookahead=0.5)
    image = np.zeros((2, 2, 3), np.uint8)

    def frame(t: float, reason: str) -> Frame:
        return Frame(index=round(t * 10), time=t, image=image, reason=reason)  # type: ignore[arg-type]

    assert shots.push(frame(0.0, "sample"))[0].time == 0.0
    assert shots.push(frame(0.7, "scene")) == []  # held back
    assert [f.time for f in shots.push(frame(1.0, "sample"))] == [1.0]  # the cut is covered
    assert shots.push(frame(1.2, "keyframe")) == []
    assert [f.time for f in shots.passed(1.8)] == [1.2]  # no sample came in time
    assert shots.push(frame(2.1, "scene")) == []
    assert [f.time for f in shots.push(frame(2.3, "scene"))] == [2.1]  # a short shot is kept
    assert [f.time for f in shots.flush()] == [2.3]


def test_frame_picker_without_a_frame_rate_samples_by_time() -> None:
    picker = FramePicker(SamplingPlan(interval_seconds=1.0, min_gap_seconds=0.4))

    assert picker.choose(0.0, keyframe=True, scene_change=False) == "sample"
    assert picker.choose(0.5, keyframe=False, scene_change=False) is None  # no sample due
    assert picker.choose(1.0, keyframe=False, scene_change=False) == "sample"
    assert picker.choose(1.1, keyframe=False, scene_change=True) == "scene"
    assert picker.choose(2.05, keyframe=False, scene_change=False) == "sample"
    assert picker.choose(3.5, keyframe=False, scene_change=False) == "sample"  # 3 s slot, late
    assert picker.choose(3.6, keyframe=False, scene_change=False) is None  # 4 s not yet due


def test_frames_are_streamed_lazily_and_close_releases_the_container() -> None:
    media: DecodedMedia = open_media(CLIP, LIMITS, SAMPLING)
    with media:
        first = next(iter(media.frames()))
        assert first.reason == "sample" and first.index == 0
    with pytest.raises(ValueError):
        next(iter(media.frames()))


# --- hostile and broken files ---------------------------------------------------------------


def test_zero_byte_file_is_refused_as_empty(tmp_path: Path) -> None:
    path = tmp_path / "nothing.jpg"
    path.write_bytes(b"")
    assert_clear(refusal(path), "empty", "empty")


def test_file_over_the_byte_limit_is_refused_before_reading_it(tmp_path: Path) -> None:
    error = refusal(FACE_JPEG, MediaLimits(max_bytes=1000))
    assert_clear(error, "too_large", "limit of 1,000 bytes")


def test_random_bytes_behind_a_jpeg_header_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    noise = np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    jfif_header = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    path.write_bytes(jfif_header + noise)
    assert_clear(refusal(path), "corrupt", "JPEG")


def test_video_with_garbage_in_the_middle_is_corrupt_after_yielding_readable_frames(
    tmp_path: Path,
) -> None:
    data = bytearray(CLIP.read_bytes())
    start = len(data) // 2
    data[start : start + 20_000] = np.random.default_rng(3).bytes(20_000)
    path = tmp_path / "damaged.mp4"
    path.write_bytes(bytes(data))

    yielded: list[Frame] = []
    with pytest.raises(MediaError) as caught, open_media(path, LIMITS, SAMPLING) as media:
        yielded.extend(media.frames())

    assert_clear(caught.value, "corrupt", "damaged")
    assert len(yielded) >= 5 and all(f.image.shape == (360, 640, 3) for f in yielded)


@pytest.mark.parametrize("source", [FACE_JPEG, FACE_PNG], ids=["jpeg", "png"])
def test_truncated_image_is_refused_as_truncated(tmp_path: Path, source: Path) -> None:
    data = source.read_bytes()
    path = tmp_path / f"cut{source.suffix}"
    path.write_bytes(data[: len(data) // 2])
    assert_clear(refusal(path), "truncated", "ends early")


def test_truncated_gif_is_refused_as_truncated(tmp_path: Path) -> None:
    pixels = np.random.default_rng(5).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    full = tmp_path / "full.gif"
    Image.fromarray(pixels).save(full)
    path = tmp_path / "cut.gif"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    assert_clear(refusal(path), "truncated", "ends early")


def test_truncated_mp4_with_index_at_the_end_is_refused_at_open(tmp_path: Path) -> None:
    data = CLIP.read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert_clear(refusal(path), "truncated", "ends early")


@pytest.mark.parametrize(
    ("name", "codec", "container_format", "options", "container_options"),
    [
        ("cut.mp4", "libx264", None, {"preset": "ultrafast"}, {"movflags": "faststart"}),
        ("cut.webm", "libvpx", "webm", {"deadline": "realtime"}, {}),
        ("cut.mkv", "libx264", "matroska", {"preset": "ultrafast"}, {}),
        ("cut.avi", "mpeg4", "avi", {}, {}),
    ],
    ids=["mp4-faststart", "webm", "mkv", "avi"],
)
def test_truncated_streamable_video_yields_what_it_has_then_says_truncated(
    tmp_path: Path,
    name: str,
    codec: str,
    container_format: str | None,
    options: dict[str, str],
    container_options: dict[str, str],
) -> None:
    full = encode_clip(
        tmp_path / f"full-{name}",
        codec,
        container_format=container_format,
        seconds=3.0,
        options=options,
        container_options=container_options,
    )
    path = tmp_path / name
    path.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])

    yielded: list[Frame] = []
    with pytest.raises(MediaError) as caught, open_media(path, LIMITS, SAMPLING) as media:
        yielded.extend(media.frames())

    assert_clear(caught.value, "truncated", "ends early")
    assert yielded and yielded[-1].time < 2.5
    assert all(f.image.shape == (90, 160, 3) for f in yielded)


def test_html_saved_as_jpg_is_unsupported_and_called_mislabelled(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_text("<!DOCTYPE html><html><head><title>Not found</title></head></html>")
    assert_clear(
        refusal(path), "unsupported", "HTML document", "not an image or video", "mislabelled"
    )


def test_png_saved_as_jpg_decodes_by_its_real_format(tmp_path: Path) -> None:
    path = tmp_path / "really_a_png.jpg"
    path.write_bytes(FACE_PNG.read_bytes())
    info, (frame,) = decode_all(path)
    assert info.format == "png" and frame.image.shape == (info.height, info.width, 3)


def test_audio_only_file_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        for index in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, index * 1024
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert_clear(refusal(path), "unsupported", "audio-only")


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (no pixel data to match)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def test_png_declaring_100000_by_100000_pixels_is_refused_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(100_000, 100_000))
    assert path.stat().st_size < 200
    assert_clear(refusal(path), "too_many_pixels", "decompression bomb")


def test_gif_with_huge_logical_screen_is_refused_without_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.gif"
    image = b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00"
    path.write_bytes(b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0) + image + b";")
    assert_clear(refusal(path), "too_many_pixels", "decompression bomb")


def test_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    error = refusal(FACE_PNG, MediaLimits(max_image_pixels=100_000))
    assert_clear(error, "too_many_pixels", "704x612", "limit of 100,000")


def test_video_longer_than_the_limit_is_refused_before_decoding() -> None:
    error = refusal(CLIP, MediaLimits(max_video_seconds=5.0))
    assert_clear(error, "too_long", "10 s", "limit of 5 s")


def test_video_whose_samples_alone_exceed_the_frame_limit_is_refused_at_open() -> None:
    error = refusal(CLIP, MediaLimits(max_frames=3))
    assert_clear(error, "too_many_frames", "more than 3")


def test_video_yielding_more_frames_than_allowed_stops_midway_with_too_many_frames() -> None:
    every_change = SamplingPlan(scene_threshold=0.0, min_gap_seconds=0.0)
    yielded: list[Frame] = []
    with (
        pytest.raises(MediaError) as caught,
        open_media(CLIP, MediaLimits(max_frames=20), every_change) as media,
    ):
        yielded.extend(media.frames())

    assert_clear(caught.value, "too_many_frames", "more than 20")
    assert 15 <= len(yielded) <= 20  # a cut held back for its shot may not come out


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("doc.png", b"%PDF-1.4\n%...", ("PDF",)),
        ("clip.mp4", b"PK\x03\x04" + b"\x00" * 40, ("ZIP", "mislabelled")),
        ("notes.txt", b"hello, this is text", ("text",)),
    ],
)
def test_non_media_files_are_unsupported_and_say_what_they_are(
    tmp_path: Path, name: str, content: bytes, words: tuple[str, ...]
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert_clear(refusal(path), "unsupported", *words)


def test_error_messages_never_quote_the_file(tmp_path: Path) -> None:
    secret = "victim-name-1234"
    path = tmp_path / "x.jpg"
    path.write_text(f"<html><body>{secret}</body></html>")
    assert secret not in str(refusal(path))
