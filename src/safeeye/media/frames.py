"""The frame: what every frame-level signal receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

FrameReason = Literal["still", "keyframe", "sample", "scene"]


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture: a still image, an animation frame, or a sampled video frame.

    ``image`` is RGB ``uint8`` of shape (height, width, 3), already upright (EXIF applied).
    ``time`` is seconds from the start (0.0 for a still image); ``index`` the frame number in
    the source; ``reason`` why it was chosen for analysis.
    """

    index: int
    time: float
    image: np.ndarray
    reason: FrameReason = "still"

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
