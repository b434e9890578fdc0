"""``media.decode.open_media`` on any file, then every frame it yields.

The one entry point for untrusted media: whatever the bytes, it returns frames or raises
``MediaError``. Small limits keep hostile headers from asking for real memory.
"""

from __future__ import annotations

from fuzz.targets._support import scratch_file
from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import MediaError
from safeeye.media.decode import open_media

_LIMITS = MediaLimits(
    max_bytes=1024 * 1024,
    max_image_pixels=256 * 256,
    max_video_pixels=256 * 256,
    max_video_seconds=60.0,
    max_frames=50,
    max_animation_frames=50,
    decode_timeout_seconds=5.0,
)
_SAMPLING = SamplingPlan()


def test_one_input(data: bytes) -> None:
    path = scratch_file(data)
    try:
        with open_media(path, _LIMITS, _SAMPLING, threads=1) as media:
            for frame in media.frames():
                assert frame.image.ndim == 3 and frame.image.shape[2] == 3, frame.image.shape
    except MediaError:
        pass
