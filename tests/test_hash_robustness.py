"""Known images are found again after what uploaders do to them; other photos are not."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from media_edits import FACES, jpeg
from media_edits import crop as _crop
from media_edits import load as _load
from media_edits import resize as _resize
from safeeye.signals.pdq import distance_matrix
from safeeye.signals.variants import VariantHash, known_hashes, query_hashes, trim_borders


def _jpeg(image: np.ndarray, quality: int = 30) -> np.ndarray:
    return jpeg(image, quality)


THRESHOLD = 31


def _caption(
    image: np.ndarray, at_top: bool, share: float, bar: tuple[int, ...], ink: tuple[int, ...]
) -> np.ndarray:
    """A solid bar with a line of text added above or below the picture."""
    height, width = image.shape[:2]
    bar_height = round(height * share)
    strip = np.full((bar_height, width, 3), bar, np.uint8)
    scale = bar_height / 40 * 0.9 * min(1.0, width / (bar_height * 9))
    thickness = max(1, round(bar_height / 27))
    origin = (round(width * 0.03), round(bar_height * 0.68))
    cv2.putText(strip, "OMG look at this lol", origin, cv2.FONT_HERSHEY_DUPLEX, scale, ink,
                thickness, cv2.LINE_AA)  # fmt: skip
    return np.ascontiguousarray(np.vstack([strip, image] if at_top else [image, strip]))


def _letterbox(image: np.ndarray, share: float = 0.12) -> np.ndarray:
    pad = round(image.shape[0] * share)
    return cv2.copyMakeBorder(image, pad, pad, 0, 0, cv2.BORDER_CONSTANT, value=(0, 0, 0))


TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda a: a,
    "jpeg-q30": _jpeg,
    "resize-50": _resize,
    "crop-centre-10": lambda a: _crop(a, 0.05, 0.05, 0.05, 0.05),
    "crop-left-10": lambda a: _crop(a, left=0.1),
    "crop-bottom-10": lambda a: _crop(a, bottom=0.1),
    "crop-corner-10": lambda a: _crop(a, right=0.1, bottom=0.1),
    "mirror": lambda a: np.ascontiguousarray(a[:, ::-1]),
    "caption-top": lambda a: _caption(a, True, 0.13, (255, 255, 255), (0, 0, 0)),
    "caption-bottom": lambda a: _caption(a, False, 0.15, (0, 0, 0), (255, 255, 255)),
    "letterbox": _letterbox,
    "crop-left-10+jpeg": lambda a: _jpeg(_crop(a, left=0.1)),
    "mirror+crop-centre-10": lambda a: np.ascontiguousarray(
        _crop(a, 0.05, 0.05, 0.05, 0.05)[:, ::-1]
    ),
    "caption+resize+jpeg": lambda a: _jpeg(
        _caption(_resize(a), False, 0.12, (20, 20, 20), (255, 255, 0)), 60
    ),
}
# Combinations beyond the acceptance list: reported, and only required to stay clear of
# false matches (the last one fails on a dark-background photo whose edge merges with the bar).
REQUIRED = [name for name in TRANSFORMS if name != "caption+resize+jpeg"]


def _min_distance(known: list[VariantHash], query: list[VariantHash]) -> int:
    return int(distance_matrix([k.hash for k in known], [q.hash for q in query]).min())


@pytest.fixture(scope="module")
def hashed() -> tuple[dict[str, list[VariantHash]], dict[tuple[str, str], list[VariantHash]]]:
    images = {path.stem: _load(path) for path in FACES}
    known = {name: known_hashes(image) for name, image in images.items()}
    queries = {
        (name, transform): query_hashes(apply(image))
        for name, image in images.items()
        for transform, apply in TRANSFORMS.items()
    }
    return known, queries


def test_every_transformation_of_a_known_image_matches_and_no_other_photo_does(
    hashed: tuple[dict[str, list[VariantHash]], dict[tuple[str, str], list[VariantHash]]],
) -> None:
    known, queries = hashed
    names = list(known)
    print("\nmin distance, known image (columns) vs its transformation (rows)")
    print(f"{'':24}" + "".join(f"{n[:9]:>10}" for n in names))
    worst_true: dict[str, int] = {}
    for transform in TRANSFORMS:
        row = [_min_distance(known[n], queries[n, transform]) for n in names]
        worst_true[transform] = max(row)
        print(f"{transform:24}" + "".join(f"{d:>10}" for d in row))
    false = {
        (k, q, t): _min_distance(known[k], queries[q, t])
        for k in names
        for q in names
        if q != k
        for t in TRANSFORMS
    }
    best_false = min(false, key=false.__getitem__)
    required_worst = max(worst_true[t] for t in REQUIRED)
    print(f"worst true pair (required transforms): {required_worst}; best false pair: "
          f"{false[best_false]} {best_false}; threshold {THRESHOLD}")  # fmt: skip
    print("hashes per known image:", sorted({len(v) for v in known.values()}))
    for transform in REQUIRED:
        assert worst_true[transform] <= THRESHOLD, transform
    assert false[best_false] > THRESHOLD + 20  # a wide margin, not just a pass
    assert all(len(v) <= 46 for v in known.values())
    assert all(len(v) <= 2 for v in queries.values())


def test_trim_borders_removes_caption_bars_and_letterboxing_only() -> None:
    image = _load(FACES[2])
    for transform in ("caption-top", "caption-bottom", "letterbox"):
        assert trim_borders(TRANSFORMS[transform](image)).shape == trim_borders(image).shape
    noise = np.random.default_rng(1).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    assert trim_borders(noise) is noise
    flat = np.full((300, 400, 3), 128, np.uint8)
    assert trim_borders(flat).shape == flat.shape


def test_a_known_photo_gets_a_modest_number_of_hashes_and_a_query_at_most_two() -> None:
    image = _load(FACES[[p.name for p in FACES].index("obama.jpg")])
    assert 8 < len(known_hashes(image)) <= 46
    assert len(query_hashes(_caption(image, True, 0.13, (255, 255, 255), (0, 0, 0)))) <= 2
