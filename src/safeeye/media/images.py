"""Still and animated images (JPEG, PNG/APNG, WebP, GIF, BMP, TIFF, HEIC, AVIF) as RGB frames."""

from __future__ import annotations

import contextlib
import itertools
import math
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, UnidentifiedImageError

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import MediaError
from safeeye.media.base import DecodedMedia, MediaInfo
from safeeye.media.frames import Frame
from safeeye.media.sniff import Sniffed

pillow_heif.register_heif_opener()

# Pillow's plugin for each sniffed format: Image.open tries only that one, so a file is never
# decoded by a plugin its bytes did not ask for.
_PILLOW_FORMATS = {
    "jpeg": "JPEG",
    "png": "PNG",
    "webp": "WEBP",
    "gif": "GIF",
    "bmp": "BMP",
    "tiff": "TIFF",
    "heic": "HEIF",
    "heif": "HEIF",
    "avif": "AVIF",
}
_ANIMATED_FORMATS = frozenset({"gif", "png", "webp"})

# Browsers show frames that ask for 10 ms or less for 100 ms; timestamps follow what a viewer saw.
_MIN_FRAME_SECONDS = 0.011
_SHORT_FRAME_SECONDS = 0.1

# What Pillow raises for undecodable data (its plugins use SyntaxError for "not this format";
# pillow-heif raises RuntimeError for libheif's errors, e.g. a frame larger than its header).
_PILLOW_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
    TypeError,
    RuntimeError,
)


class ImageMedia(DecodedMedia):
    """An opened image; a still yields one frame, an animation one frame per sampling interval."""

    def __init__(
        self,
        image: Image.Image,
        info: MediaInfo,
        frame_times: list[float],
        sampling: SamplingPlan,
    ) -> None:
        self._image: Image.Image | None = image
        self.info = info
        self._frame_times = frame_times
        self._sampling = sampling

    def frames(self) -> Iterator[Frame]:
        """One ``still`` frame, or an animation's ``sample`` frames at 0, 1, 2... intervals."""
        if self._image is None:
            raise ValueError("frames() called on a closed ImageMedia")
        image = self._image
        if not self.info.animated:
            still = _decode_current(image)
            self.close()  # the decoded picture is not needed again: free it before analysis
            yield Frame(index=0, time=0.0, image=still, reason="still")
            return
        for index in _sample_indices(self._frame_times, self._sampling.interval_seconds):
            try:
                image.seek(index)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise MediaError(
                    "an animation frame declares more pixels than allowed (possible "
                    "decompression bomb); refused without decoding it",
                    code="too_many_pixels",
                ) from exc
            except _PILLOW_ERRORS as exc:
                raise _decode_error(exc, self.info.format) from exc
            yield Frame(
                index=index,
                time=self._frame_times[index],
                image=_decode_current(image),
                reason="sample",
            )

    def close(self) -> None:
        if self._image is not None:
            self._image.close()
            self._image = None


def open_image(
    path: Path, found: Sniffed, limits: MediaLimits, sampling: SamplingPlan
) -> ImageMedia:
    """Open an image whose bytes were sniffed as ``found``, checking its declared size first.

    Raises ``MediaError`` (``corrupt``, ``too_many_pixels``, ``too_many_frames``) before any
    pixel is decoded.
    """
    pillow_format = _PILLOW_FORMATS.get(found.format)
    if pillow_format is None:
        raise MediaError(
            f"the file is {found.description}, which safeeye cannot decode", code="unsupported"
        )
    _keep_pillow_guard_at_least(limits.max_image_pixels)
    try:
        image = Image.open(path, formats=[pillow_format])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _bomb_error(None, limits) from exc
    except UnidentifiedImageError as exc:
        raise MediaError(
            f"the file starts like {found.description} but its header cannot be read",
            code="corrupt",
        ) from exc
    except _PILLOW_ERRORS as exc:
        raise _decode_error(exc, found.format) from exc
    try:
        info, frame_times = _inspect(image, path, found, limits)
    except BaseException:
        image.close()
        raise
    return ImageMedia(image, info, frame_times, sampling)


def _inspect(
    image: Image.Image, path: Path, found: Sniffed, limits: MediaLimits
) -> tuple[MediaInfo, list[float]]:
    """Header facts and per-frame start times; raises if the header breaks a limit."""
    width, height = image.size
    if width <= 0 or height <= 0:
        raise MediaError("the image header declares a zero width or height", code="corrupt")
    if width * height > limits.max_image_pixels:
        raise _bomb_error((width, height), limits)
    if _orientation(image) in (5, 6, 7, 8):
        width, height = height, width
    try:
        # Pillow counts frames by walking every frame header; a damaged one can raise.
        frame_count = int(getattr(image, "n_frames", 1))
    except _PILLOW_ERRORS as exc:
        raise _decode_error(exc, found.format) from exc
    animated = found.format in _ANIMATED_FORMATS and frame_count > 1
    if not animated:
        info = MediaInfo("image", found.format, width, height, None, 1, False)
        return info, [0.0]
    if frame_count > limits.max_animation_frames:
        raise MediaError(
            f"the animation has {frame_count:,} frames, over the limit of "
            f"{limits.max_animation_frames:,}",
            code="too_many_frames",
        )
    with path.open("rb") as fh:
        durations = _frame_durations(fh, found.format, frame_count)
    durations = _fit(durations, frame_count)
    starts = [0.0, *np.cumsum(durations[:-1]).tolist()]
    info = MediaInfo("image", found.format, width, height, float(sum(durations)), frame_count, True)
    return info, starts


def _keep_pillow_guard_at_least(max_pixels: int) -> None:
    # Pillow's MAX_IMAGE_PIXELS is process-wide and is our backstop; our own header check above
    # is the rule. Raise the guard when our limit is larger (so Pillow does not refuse what we
    # allow) but never lower it per call: a lowered limit in one caller would leak into every
    # other Image.open in the process.
    current = Image.MAX_IMAGE_PIXELS
    if current is None or current < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except _PILLOW_ERRORS:
        return 1  # unreadable EXIF: show the picture as stored
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _decode_current(image: Image.Image) -> np.ndarray:
    """The current frame decoded, turned upright, as RGB uint8 (alpha composited on white).

    A still over ``MAX_ANALYSIS_PIXELS`` comes back shrunk by a whole factor (JPEG decodes at
    the smaller scale directly); the pixels of smaller images are exactly those of a full
    conversion. No full-size intermediate copy is made besides the decoded image itself.
    """
    factor = _shrink_factor(*image.size)
    if factor > 1 and image.format == "JPEG":
        with contextlib.suppress(*_PILLOW_ERRORS):  # else decoded at full size, shrunk below
            image.draft(None, (image.width // factor, image.height // factor))
        factor = _shrink_factor(*image.size)
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(
            "the image declares more pixels than allowed (possible decompression bomb)",
            code="too_many_pixels",
        ) from exc
    except _PILLOW_ERRORS as exc:
        raise _decode_error(exc, (image.format or "image").lower()) from exc
    rgb = _to_rgb(image, factor)
    upright = _UPRIGHT.get(_orientation(image))
    return np.ascontiguousarray(upright(rgb)) if upright else rgb


#: The most pixels a still is analysed at; larger ones (beyond what cameras commonly make) are
#: shrunk while decoding. Every signal works on far fewer pixels (faces at 1280 px, PDQ at 512).
MAX_ANALYSIS_PIXELS = 24_000_000
#: About how many pixels are converted at a time (bounds the temporary copies).
_STRIP_PIXELS = 1 << 21

# What ImageOps.exif_transpose does for each EXIF orientation, on an (rows, columns, 3) array.
_UPRIGHT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _shrink_factor(width: int, height: int) -> int:
    """The smallest whole factor that brings ``width`` x ``height`` within MAX_ANALYSIS_PIXELS."""
    factor = 1
    while math.ceil(width / factor) * math.ceil(height / factor) > MAX_ANALYSIS_PIXELS:
        factor += 1
    return factor


def _to_rgb(image: Image.Image, factor: int = 1) -> np.ndarray:
    """A loaded image as RGB uint8 (alpha composited on white), shrunk ``factor`` times by
    averaging; converted a strip of rows at a time into one preallocated array."""
    width, height = image.size
    rows = max(factor, _STRIP_PIXELS // width // factor * factor)
    strips = [(top, min(top + rows, height)) for top in range(0, height, rows)]
    convert = _strip_converter(image, strips)
    out = np.empty((math.ceil(height / factor), math.ceil(width / factor), 3), np.uint8)
    for top, bottom in strips:
        whole = top == 0 and bottom == height
        strip = convert(image if whole else image.crop((0, top, width, bottom)))
        if factor > 1:
            strip = np.asarray(Image.fromarray(strip).reduce(factor))
        out[top // factor : top // factor + strip.shape[0]] = strip
    return out


def _strip_converter(
    image: Image.Image, strips: list[tuple[int, int]]
) -> Callable[[Image.Image], np.ndarray]:
    """How to turn one strip of ``image`` into RGB uint8, as a whole-image conversion would."""
    mode = image.mode
    if mode == "RGB":
        return np.asarray
    if mode.startswith("I") or mode == "F":
        # Grey levels are scaled by the brightest value of the whole image, found first.
        width = image.width
        peaks = [_peak(np.asarray(image.crop((0, top, width, bottom)))) for top, bottom in strips]
        peak = float(np.fmax.reduce(peaks)) if peaks else 0.0

        def grey(strip: Image.Image) -> np.ndarray:
            levels = _to_8bit(np.asarray(strip), peak)
            return np.repeat(levels[:, :, None], 3, axis=2)

        return grey
    if "A" in mode or "a" in mode or "transparency" in image.info:

        def on_white(strip: Image.Image) -> np.ndarray:
            rgba = strip.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))

        return on_white
    return lambda strip: np.asarray(strip.convert("RGB"))


def _peak(values: np.ndarray) -> float:
    """The largest value, ignoring NaN (NaN only when every value is NaN); 0 when empty."""
    if not values.size:
        return 0.0
    return float(np.fmax.reduce(values, axis=None))


def _to_8bit(values: np.ndarray, peak: float) -> np.ndarray:
    """16-bit or float grayscale scaled into 0..255, given the whole image's brightest value."""
    if values.dtype.kind == "f":
        scale = 255.0 if peak <= 1.0 else 1.0
        return np.clip(np.nan_to_num(values) * scale, 0, 255).astype(np.uint8)
    wide = values.astype(np.int64)
    if peak > 255:
        wide = np.clip(wide, 0, 65535) // 257
    return np.clip(wide, 0, 255).astype(np.uint8)


def _sample_indices(starts: list[float], interval: float) -> list[int]:
    """Frame 0, then the first frame starting at or after each multiple of ``interval``."""
    chosen = [0]
    next_due = interval
    for index in range(1, len(starts)):
        if starts[index] >= next_due:
            chosen.append(index)
            next_due = (math.floor(starts[index] / interval) + 1) * interval
    return chosen


def _fit(durations: list[float], frame_count: int) -> list[float]:
    """Durations matched to Pillow's frame count (a damaged file may disagree)."""
    durations = durations[:frame_count]
    return durations + [_SHORT_FRAME_SECONDS] * (frame_count - len(durations))


def _shown_for(seconds: float) -> float:
    return _SHORT_FRAME_SECONDS if seconds < _MIN_FRAME_SECONDS else seconds


def _frame_durations(fh: BinaryIO, fmt: str, limit: int) -> list[float]:
    """Per-frame display time in seconds of at most ``limit`` frames, read from the container
    without decoding pixels. Never raises for damaged data: a reader stops where the container
    stops making sense, and ``_fit`` fills in the frames it could not read."""
    reader = _DURATION_READERS.get(fmt)
    return list(itertools.islice(reader(fh), max(limit, 0))) if reader else []


# Each reader below moves strictly forward through the file and stops at the end of the data
# (or of the RIFF chunk), so hostile length fields can neither loop nor rewind it. It also stops
# after _MAX_BLOCKS blocks or chunks: a file of millions of empty chunks would otherwise cost
# seconds per 50 MB (real animations have a few per frame); _fit covers the frames left unread.
_MAX_BLOCKS = 100_000


def _skip_sub_blocks(fh: BinaryIO) -> None:
    """Skip GIF data sub-blocks up to their terminator (or the end of the data)."""
    while True:
        size = fh.read(1)
        if not size or size[0] == 0:
            return
        fh.seek(size[0], 1)


def _gif_durations(fh: BinaryIO) -> Iterator[float]:
    fh.seek(0)
    header = fh.read(13)  # signature, logical screen descriptor
    if len(header) < 13:
        return
    if header[10] & 0x80:
        fh.seek(3 << ((header[10] & 7) + 1), 1)  # global colour table
    delay = 0.0
    for _ in range(_MAX_BLOCKS):
        introducer = fh.read(1)
        if introducer == b"!":
            if fh.read(1) == b"\xf9":  # graphic control extension: the next frame's delay
                size = fh.read(1)
                block = fh.read(size[0]) if size else b""
                if len(block) >= 3:
                    delay = int.from_bytes(block[1:3], "little") / 100.0
            _skip_sub_blocks(fh)
        elif introducer == b",":
            descriptor = fh.read(9)
            if len(descriptor) < 9:
                return
            if descriptor[8] & 0x80:
                fh.seek(3 << ((descriptor[8] & 7) + 1), 1)  # local colour table
            fh.seek(1, 1)  # LZW minimum code size
            _skip_sub_blocks(fh)
            yield _shown_for(delay)
            delay = 0.0
        else:  # trailer, end of data or garbage
            return


def _apng_durations(fh: BinaryIO) -> Iterator[float]:
    fh.seek(8)
    animation_seen = False
    frames = 0
    for _ in range(_MAX_BLOCKS):
        header = fh.read(8)
        if len(header) < 8:
            return
        length, chunk_type = struct.unpack(">I4s", header)
        if chunk_type == b"acTL":
            animation_seen = True
        elif chunk_type == b"IDAT" and animation_seen and not frames:
            frames += 1
            yield 0.0  # a default image that is not part of the animation
            animation_seen = False
        elif chunk_type == b"fcTL":
            control = fh.read(min(length, 26))
            if length < 24 or len(control) < 24:
                return  # a frame control chunk too short to hold its delay: damaged
            numerator, denominator = struct.unpack(">HH", control[20:24])
            frames += 1
            yield _shown_for(numerator / (denominator or 100))
            fh.seek(length - len(control) + 4, 1)
            continue
        elif chunk_type == b"IEND":
            return
        fh.seek(length + 4, 1)


def _webp_durations(fh: BinaryIO) -> Iterator[float]:
    fh.seek(0)
    riff = fh.read(12)
    if len(riff) < 12:
        return
    end = 8 + int.from_bytes(riff[4:8], "little")  # data after the RIFF chunk is not WebP
    position = 12
    for _ in range(_MAX_BLOCKS):
        if position + 8 > end:
            return
        fh.seek(position)
        header = fh.read(8)
        if len(header) < 8:
            return
        fourcc, length = struct.unpack("<4sI", header)
        if fourcc == b"ANMF":
            frame_header = fh.read(16)
            if length < 16 or len(frame_header) < 16:
                return  # an ANMF chunk holds at least its 16-byte frame header: damaged
            yield _shown_for(int.from_bytes(frame_header[12:15], "little") / 1000.0)
        position += 8 + length + (length & 1)


_DURATION_READERS: dict[str, Callable[[BinaryIO], Iterator[float]]] = {
    "gif": _gif_durations,
    "png": _apng_durations,
    "webp": _webp_durations,
}


def _bomb_error(size: tuple[int, int] | None, limits: MediaLimits) -> MediaError:
    declared = f"{size[0]:,}x{size[1]:,} pixels, " if size else "more pixels than allowed: "
    return MediaError(
        f"the image declares {declared}over the limit of {limits.max_image_pixels:,} pixels "
        "(possible decompression bomb); refused without decoding it",
        code="too_many_pixels",
    )


def _decode_error(exc: BaseException, fmt: str) -> MediaError:
    """``truncated`` when Pillow says the data ends early, else ``corrupt``."""
    text = str(exc).lower()
    name = fmt.upper()
    if isinstance(exc, EOFError) or "truncated" in text or "end of file" in text:
        return MediaError(f"the {name} data ends early (the file is truncated)", code="truncated")
    return MediaError(f"the {name} data is damaged and cannot be decoded", code="corrupt")


def decode_still(data: bytes) -> np.ndarray:
    """A stored still image (already checked when it was registered) as upright RGB uint8,
    decoded in memory the same way ``open_media`` decodes it, so nothing is written out."""
    import io

    with Image.open(io.BytesIO(data)) as image:
        return _decode_current(image)
