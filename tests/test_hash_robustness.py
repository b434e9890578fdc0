"""Known images are found again after what uploaders do to them; other photos are not."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from safeeye.matching.variants import VariantHash, known_hashes, query_hashes, trim_borders
from safeeye.signals.pdq import distance_matrix

THRESHOLD = 31
FACES = sorted((Path(__file__).parent / "fixtures" / "faces").iterdir())


def _load(path: Path) -> np.ndarray:
    return np.ascontiguousarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def _jpeg(image: np.ndarray, quality: int = 30) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def _resize(image: np.ndarray, scale: float = 0.5) -> np.ndarray:
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _crop(image: np.ndarray, left=0.0, top=0.0, right=0.0, bottom=0.0) -> np.ndarray:
    h, w = image.shape[:2]
    return np.ascontiguousarray(
        image[round(h * top) : h - round(h * bottom), round(w * left) : w - round(w * right)]
    )


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


def test_hashing_is_fast_enough_for_a_one_megapixel_photo() -> None:
    image = _load(FACES[[p.name for p in FACES].index("obama.jpg")])
    start = time.perf_counter()
    known_hashes(image)
    known_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    for _ in range(5):
        query_hashes(_caption(image, True, 0.13, (255, 255, 255), (0, 0, 0)))
    query_ms = (time.perf_counter() - start) / 5 * 1000
    print(f"known_hashes {known_ms:.0f} ms, query_hashes {query_ms:.0f} ms (1 MP)")
    assert known_ms < 3000 and query_ms < 300  # generous: CI machines are shared
