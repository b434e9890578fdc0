"""The GIF, APNG and animated WebP frame-duration readers of ``media.images``.

They read container headers without decoding pixels and must stop on any bytes: never raise,
never loop, never return more frames than asked for.
"""

from __future__ import annotations

import io
import math

from safeeye.media.images import _frame_durations

_LIMIT = 2000  # MediaLimits.max_animation_frames


def test_one_input(data: bytes) -> None:
    for fmt in ("gif", "png", "webp"):
        durations = _frame_durations(io.BytesIO(data), fmt, _LIMIT)
        assert len(durations) <= _LIMIT, (fmt, len(durations))
        assert all(math.isfinite(d) and d >= 0 for d in durations), (fmt, durations)
