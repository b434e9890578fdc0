"""PDQ hashing that survives what uploaders do: crops, mirroring, caption bars, letterboxing.

A plain PDQ hash survives re-encoding and resizing but not cropping (each 1 % cut off one side
moves it by about 15 bits, so a 10 % crop lands near 120) nor an added caption bar. So the two
sides are hashed differently, and a match is any (known, query) pair within the PDQ threshold:

* a known (reference) image gets ``known_hashes``: the 8 rotations/flips of the whole image
  plus 9 crops (centre, each side, each corner) at 10 % and 20 %, each also mirrored, at
  most 44 hashes; crops whose quality is below ``MIN_QUALITY`` are left out;
* a scanned image gets ``query_hashes``: the whole image, plus the image with near-uniform
  bars (caption bars with text, black letterbox or pillarbox borders) trimmed off when any
  are found, at most 2 hashes.

Cropping is handled on the known side because reference media are few and scanned media are
many; bars are handled on the query side because their size is unknown in advance. The
``pdq`` signal of every analysed frame is its ``query_hashes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from safeeye.media.frames import Frame
from safeeye.signals.base import FrameSignal, SignalContext
from safeeye.signals.pdq import DIHEDRAL_NAMES, PdqHash, pdq_dihedral, pdq_hash
from safeeye.signals.registry import register

#: Known crop variants whose quality is below this are dropped (flat crops match anything).
MIN_QUALITY = 50
#: The fractions of the width/height cut away by the known crop variants.
CROP_FRACTIONS: tuple[float, ...] = (0.1, 0.2)
# Which edges each crop cuts: (left, top, right, bottom) weights of the fraction.
_CROP_SHAPES: dict[str, tuple[float, float, float, float]] = {
    "centre": (0.5, 0.5, 0.5, 0.5),
    "left": (1, 0, 0, 0),
    "top": (0, 1, 0, 0),
    "right": (0, 0, 1, 0),
    "bottom": (0, 0, 0, 1),
    "top-left": (1, 1, 0, 0),
    "top-right": (0, 1, 1, 0),
    "bottom-left": (1, 0, 0, 1),
    "bottom-right": (0, 0, 1, 1),
}
_MIRROR = DIHEDRAL_NAMES.index("mirror")

# Border trimming: a bar is a run of lines from an edge that are mostly one colour.
_TRIM_MAX_FRACTION = 0.4  # bars never cover more than this share of a dimension
_TRIM_TOLERANCE = 24  # per-channel distance from the bar colour that still counts as the bar
_TRIM_SOLID = 0.97  # share of a line in the bar colour that makes it a solid line
_TRIM_TEXT = 0.35  # a text line inside a bar still shows at least this share of bar colour
_TRIM_MAX_GAP = 0.12  # longest run of text lines between solid lines, as a share of the side
_TRIM_SAMPLES = 192  # pixels sampled along each line
_TRIM_PASSES = 4
_TRIM_BLOCK = 32  # lines measured at a time


@dataclass(frozen=True)
class VariantHash:
    """One PDQ hash of one variant of an image; ``variant`` names the transformation."""

    variant: str
    hash: PdqHash


def known_hashes(image: np.ndarray) -> list[VariantHash]:
    """The hashes registered for a known (reference) image: dihedral plus mirrored crops."""
    out = [
        VariantHash(name, h) for name, h in zip(DIHEDRAL_NAMES, pdq_dihedral(image), strict=True)
    ]
    height, width = image.shape[:2]
    for fraction in CROP_FRACTIONS:
        pct = round(fraction * 100)
        for shape, (left, top, right, bottom) in _CROP_SHAPES.items():
            crop = image[
                round(height * top * fraction) : height - round(height * bottom * fraction),
                round(width * left * fraction) : width - round(width * right * fraction),
            ]
            hashes = pdq_dihedral(crop)
            if hashes[0].quality < MIN_QUALITY:
                continue
            out.append(VariantHash(f"crop-{shape}-{pct}", hashes[0]))
            out.append(VariantHash(f"crop-{shape}-{pct}-mirror", hashes[_MIRROR]))
    trimmed = trim_borders(image)
    if trimmed.shape != image.shape:
        hashes = pdq_dihedral(trimmed)
        out.append(VariantHash("trimmed", hashes[0]))
        out.append(VariantHash("trimmed-mirror", hashes[_MIRROR]))
    return out


def query_hashes(image: np.ndarray) -> list[VariantHash]:
    """The hashes searched for a scanned image: the whole image first, then it trimmed of bars."""
    out = [VariantHash("original", pdq_hash(image))]
    trimmed = trim_borders(image)
    if trimmed.shape != image.shape:
        out.append(VariantHash("trimmed", pdq_hash(trimmed)))
    return out


@register
class PdqSignal(FrameSignal[list[VariantHash]]):
    """The PDQ signal of a frame: ``query_hashes`` (its plain PDQ hash first)."""

    name: ClassVar[str] = "pdq"
    stage: ClassVar[str] = "hashes"

    def compute(self, frame: Frame, context: SignalContext) -> list[VariantHash]:
        return query_hashes(frame.image)

    def encode(self, value: list[VariantHash]) -> Any:
        """``[[variant, hex, quality], ...]``."""
        return [[v.variant, v.hash.hex, v.hash.quality] for v in value]

    def decode(self, data: Any) -> list[VariantHash]:
        return [VariantHash(v, PdqHash.from_hex(h, q)) for v, h, q in data]

    def summary(self, values: Sequence[list[VariantHash]]) -> Any:
        """The first frame's plain hash (a still's hash), and how many frames were hashed."""
        first = values[0][0].hash
        return {"hash": first.hex, "quality": first.quality, "frames": len(values)}


def trim_borders(image: np.ndarray) -> np.ndarray:
    """``image`` without near-uniform bars on its edges (a view, not a copy).

    A bar starts with a solid line of one colour at the edge and runs through further solid
    lines; lines with text on the bar (still mostly the bar colour) may sit between them.
    Trimming repeats until nothing changes, so a caption bar added to a picture that has its
    own plain margin trims to the same core as the picture alone. The image comes back
    unchanged when no edge has a bar.
    """
    core = image
    for _ in range(_TRIM_PASSES):
        trimmed = _trim_once(core)
        if trimmed.shape == core.shape:
            break
        if min(trimmed.shape[0] / image.shape[0], trimmed.shape[1] / image.shape[1]) < 0.3:
            break  # that would leave too little of the picture to hash
        core = trimmed
    return core


def _trim_once(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    rgb = image[:, :, :3] if image.ndim == 3 else image[:, :, None]
    col_step = max(1, width // _TRIM_SAMPLES)
    row_step = max(1, height // _TRIM_SAMPLES)
    top = _bar_depth(rgb[: int(height * _TRIM_MAX_FRACTION), ::col_step])
    bottom = _bar_depth(rgb[::-1][: int(height * _TRIM_MAX_FRACTION), ::col_step])
    left = _bar_depth(rgb[::row_step, : int(width * _TRIM_MAX_FRACTION)].transpose(1, 0, 2))
    right = _bar_depth(
        rgb[::row_step, ::-1][:, : int(width * _TRIM_MAX_FRACTION)].transpose(1, 0, 2)
    )
    if top + bottom + left + right == 0:
        return image
    return image[top : height - bottom, left : width - right]


def _bar_depth(strip: np.ndarray) -> int:
    """How many lines from the edge (line 0 of ``strip``, shape lines x samples x channels)
    belong to a bar; 0 when there is none or it fills the whole strip (no edge to it)."""
    lines = strip.shape[0]
    if lines < 4:
        return 0
    colour = np.median(strip[:2].reshape(-1, strip.shape[2]), axis=0).astype(np.int16)
    if _share_near(strip[:1], colour)[0] < _TRIM_SOLID:
        return 0  # the common case, decided without reading the rest of the strip
    max_gap = max(2, int(lines / _TRIM_MAX_FRACTION * _TRIM_MAX_GAP))
    depth = 1
    share = np.ones(1)
    for i in range(1, lines):
        if i >= len(share):  # measured in blocks: a bar usually ends long before the strip
            block = _share_near(strip[len(share) : len(share) + _TRIM_BLOCK], colour)
            share = np.concatenate([share, block])
        if share[i] >= _TRIM_SOLID:
            depth = i + 1
        elif share[i] < _TRIM_TEXT or i - depth >= max_gap:
            break
    else:
        return 0  # solid (or text) to the limit: a plain image region, not a bar
    return depth if depth >= 2 else 0


def _share_near(lines: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Per line, the share of pixels within the tolerance of ``colour`` in every channel."""
    diff = np.abs(lines.astype(np.int16) - colour) <= _TRIM_TOLERANCE
    # Channel by channel: numpy reduces a length-3 last axis slowly.
    near = diff[..., 0]
    for channel in range(1, diff.shape[2]):
        near = near & diff[..., channel]
    return near.mean(axis=1)
