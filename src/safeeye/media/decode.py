"""Open a media file safely: cheap checks up front, then frames streamed one at a time.

``open_media`` is the one entry point. It refuses hostile or broken files with a ``MediaError``
whose ``code`` is stable (``empty``, ``too_large``, ``unsupported``, ``corrupt``, ``truncated``,
``too_many_pixels``, ``too_long``, ``too_many_frames``, ``timeout``) and whose message says what
is wrong without quoting the file. Images are decoded by ``images``, video by ``video``.
"""

from __future__ import annotations

from pathlib import Path

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import MediaError
from safeeye.media.base import DecodedMedia, MediaInfo
from safeeye.media.images import open_image
from safeeye.media.sniff import SNIFF_BYTES, Sniffed, sniff
from safeeye.media.video import open_video

__all__ = ["MEDIA_EXTENSIONS", "DecodedMedia", "MediaInfo", "open_media", "unsupported_message"]

MEDIA_EXTENSIONS = frozenset(
    {
        *("jpg", "jpeg", "jpe", "jfif", "png", "apng", "gif", "webp", "bmp", "dib"),
        *("tif", "tiff", "heic", "heif", "avif"),
        *("mp4", "m4v", "mov", "qt", "webm", "mkv", "avi", "flv", "ts", "3gp", "wmv", "mpg"),
    }
)


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
    if found.kind == "image":
        return open_image(path, found, limits, sampling)
    if found.kind == "video":
        return open_video(path, found, limits, sampling, threads=threads)
    raise MediaError(unsupported_message(found, path), code="unsupported")


def unsupported_message(found: Sniffed, path: Path) -> str:
    """Say what the file is instead, and that it is mislabelled when its name claims media."""
    message = f"the file is {found.description}, not an image or video"
    suffix = path.suffix.lower().lstrip(".")
    if suffix in MEDIA_EXTENSIONS:
        message += f"; its name ends in .{suffix}, so it is mislabelled"
    return message
