"""Open a media file safely: cheap checks up front, then frames streamed one at a time.

``open_media`` is the one entry point. It refuses hostile or broken files with a ``MediaError``
whose ``code`` is stable (``empty``, ``too_large``, ``unsupported``, ``corrupt``, ``truncated``,
``too_many_pixels``, ``too_long``, ``too_many_frames``, ``timeout``) and whose message says what
is wrong without quoting the file. Images are decoded by ``images``, video by ``video``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import MediaError
from safeeye.media.frames import Frame
from safeeye.media.sniff import SNIFF_BYTES, Sniffed, sniff

MEDIA_EXTENSIONS = frozenset(
    {
        *("jpg", "jpeg", "jpe", "jfif", "png", "apng", "gif", "webp", "bmp", "dib"),
        *("tif", "tiff", "heic", "heif", "avif"),
        *("mp4", "m4v", "mov", "qt", "webm", "mkv", "avi", "flv", "ts", "3gp", "wmv", "mpg"),
    }
)


@dataclass(frozen=True)
class MediaInfo:
    """What a media file is, known before any pixel is decoded.

    ``width``/``height`` are of the upright picture (EXIF orientation applied). ``duration`` is
    in seconds (None for a still image or a video that does not declare it); ``frame_count``
    is the number of frames in the file when known.
    """

    media_type: Literal["image", "video"]
    format: str
    width: int
    height: int
    duration: float | None
    frame_count: int | None
    animated: bool


class DecodedMedia(ABC):
    """An opened media file: ``info`` at once, ``frames()`` lazily; close it (or use ``with``)."""

    info: MediaInfo

    @abstractmethod
    def frames(self) -> Iterator[Frame]:
        """The frames chosen for analysis, in time order, decoded one at a time.

        Raises ``MediaError`` if the file turns out broken partway; frames already yielded
        remain valid.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the file and decoder; safe to call twice."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_media(
    path: Path, limits: MediaLimits, sampling: SamplingPlan, *, threads: int = 0
) -> DecodedMedia:
    """Open ``path`` as an image or video after checking size, real format and declared size.

    The format comes from the file's bytes, never its name. Raises ``MediaError`` before any
    pixel is decoded when the file is empty, too large, not media, unreadable, or declares
    more pixels, seconds or frames than ``limits`` allow. ``threads`` caps the video decoder's
    threads (0: FFmpeg's choice; 1 in a worker pool, where other workers use the other cores).
    """
    path = Path(path)
    # A missing or unreadable file is the caller's problem, not the media's: OSError propagates.
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if size == 0:
        raise MediaError("the file is empty (0 bytes)", code="empty")
    if size > limits.max_bytes:
        raise MediaError(
            f"the file is {size:,} bytes, over the limit of {limits.max_bytes:,} bytes",
            code="too_large",
        )
    found = sniff(head)
    # Imported here because both modules import MediaInfo and DecodedMedia from this one.
    if found.kind == "image":
        from safeeye.media.images import open_image

        return open_image(path, found, limits, sampling)
    if found.kind == "video":
        from safeeye.media.video import open_video

        return open_video(path, found, limits, sampling, threads=threads)
    raise MediaError(unsupported_message(found, path), code="unsupported")


def unsupported_message(found: Sniffed, path: Path) -> str:
    """Say what the file is instead, and that it is mislabelled when its name claims media."""
    message = f"the file is {found.description}, not an image or video"
    suffix = path.suffix.lower().lstrip(".")
    if suffix in MEDIA_EXTENSIONS:
        message += f"; its name ends in .{suffix}, so it is mislabelled"
    return message
