"""PDQ hashes: the exchange format, the dihedral order, the large-image policy, and the fast path.

``pdq_hash`` / ``pdq_dihedral`` compute PDQ without the reference C++; every test below that
names ``*_reference`` checks them against it (``pdqhash.compute``). Rounding differs (float32
running sums there, short dot products here), so a DCT coefficient within ~1e-5 of the median
may flip: the tests allow ``MAX_BITS`` flipped bits and a quality off by one.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageOps
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

from safeeye.media.frames import Frame
from safeeye.signals.base import SignalContext
from safeeye.signals.pdq import (
    DIHEDRAL_NAMES,
    PdqHash,
    distance_matrix,
    hamming,
    pdq_dihedral,
    pdq_dihedral_reference,
    pdq_hash,
    pdq_hash_reference,
)
from safeeye.signals.variants import PdqSignal

FACES = Path(__file__).parent / "fixtures" / "faces"
CLIP = Path(__file__).parent / "fixtures" / "video" / "short_hamilton_clip.mp4"
#: Bits the fast path may differ by from the reference (observed: 0 on every fixture).
MAX_BITS = 2


def _load(path: Path) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def test_hash_equals_threatexchange_hex_for_a_normal_photo() -> None:
    path = FACES / "obama.jpg"  # 1 MP: hashed at full resolution
    expected_hex, expected_quality = pdq_from_file(path)
    h = pdq_hash(_load(path))
    assert (h.hex, h.quality) == (expected_hex, expected_quality)
    assert PdqHash.from_hex(h.hex, h.quality) == h


def test_hamming_counts_differing_bits() -> None:
    zero = PdqHash(bytes(32), 100)
    assert hamming(zero, PdqHash(b"\x01" + bytes(31), 100)) == 1
    assert hamming(zero, PdqHash(b"\xff" * 32, 100)) == 256
    assert distance_matrix([zero], [zero, PdqHash(b"\xff" * 32, 100)]).tolist() == [[0, 256]]


def test_malformed_hashes_are_refused() -> None:
    with pytest.raises(ValueError):
        PdqHash(b"short", 100)
    with pytest.raises(ValueError):
        PdqHash.from_hex("abc")


def test_dihedral_hashes_follow_the_documented_order() -> None:
    image = _load(FACES / "obama.jpg")
    ops = {
        "original": image,
        "rot90": np.rot90(image, 1),
        "rot180": np.rot90(image, 2),
        "rot270": np.rot90(image, 3),
        "flip_vertical": image[::-1],
        "mirror": image[:, ::-1],
        "transpose": image.transpose(1, 0, 2),
        "antitranspose": np.rot90(image, 2).transpose(1, 0, 2),
    }
    hashes = pdq_dihedral(image)
    assert hashes[0] == pdq_hash(image)
    for name, h in zip(DIHEDRAL_NAMES, hashes, strict=True):
        assert hamming(pdq_hash(ops[name]), h) <= 10, name


def test_large_photos_are_hashed_exactly_at_full_resolution() -> None:
    photo = _load(FACES / "obama3.jpg")
    big = np.asarray(Image.fromarray(photo).resize((4000, 3000), Image.Resampling.BICUBIC))
    vector, quality = pdqhash.compute(big)
    full = PdqHash(np.packbits(vector.astype(np.uint8)).tobytes(), quality)
    assert hamming(pdq_hash(big), full) == 0


def test_signal_hashes_a_frame_plain_hash_first_and_stores_it_as_json() -> None:
    image = _load(FACES / "biden2.jpg")
    signal = PdqSignal()
    assert signal.name == "pdq"
    variants = signal.compute(Frame(0, 0.0, image), SignalContext({}))
    assert variants[0].variant == "original" and variants[0].hash == pdq_hash(image)
    assert signal.decode(json.loads(json.dumps(signal.encode(variants)))) == variants
    assert signal.summary([variants]) == {
        "hash": pdq_hash(image).hex,
        "quality": pdq_hash(image).quality,
        "frames": 1,
    }


def test_grey_and_rgba_images_are_accepted() -> None:
    image = _load(FACES / "kit_with_rose.jpg")
    grey = image.mean(axis=2).astype(np.uint8)
    assert pdq_hash(grey).quality > 0
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    assert pdq_hash(rgba) == pdq_hash(image)


def _assert_like_reference(image: np.ndarray, label: str) -> int:
    """Compare ``pdq_hash`` with ``pdq_hash_reference``; returns the Hamming distance."""
    fast, reference = pdq_hash(image), pdq_hash_reference(image)
    distance = hamming(fast, reference)
    assert distance <= MAX_BITS, f"{label}: {distance} bits"
    assert abs(fast.quality - reference.quality) <= 1, f"{label}: {fast}, {reference}"
    return distance


@pytest.mark.parametrize("path", sorted(FACES.iterdir()), ids=lambda p: p.name)
def test_fast_hash_equals_reference_on_photos_in_every_orientation(path: Path) -> None:
    image = _load(path)
    for turns in range(4):
        _assert_like_reference(np.ascontiguousarray(np.rot90(image, turns)), f"rot{turns}")
    _assert_like_reference(image[::2, ::3], "strided view")


def test_fast_hash_equals_reference_on_video_frames() -> None:
    distances = []
    with av.open(str(CLIP)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index % 5 == 0:
                image = frame.to_ndarray(format="rgb24")
                distances.append(_assert_like_reference(image, f"frame {index}"))
    assert len(distances) > 40
    assert sum(distances) <= len(distances) // 10  # flips are rare, not systematic


ODD_SIZES = (
    *((1, 1), (7, 3), (3, 7), (4, 100), (5, 5), (6, 9), (64, 64), (65, 64), (63, 65)),
    *((1000, 3), (3, 1000), (1000, 5), (129, 257), (720, 1280), (2001, 1999)),
)


@pytest.mark.parametrize("shape", ODD_SIZES)
def test_fast_hash_equals_reference_on_noise_of_odd_sizes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for _ in range(2):
        image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        _assert_like_reference(image, f"noise {shape}")


def test_fast_hash_equals_reference_on_smooth_low_quality_images() -> None:
    rng = np.random.default_rng(7)
    qualities = set()
    for contrast in (0.02, 0.05, 0.1, 0.2, 0.4, 1.0):
        for _ in range(3):
            blobs = rng.normal(0, 60 * contrast, (*rng.integers(3, 12, 2), 3))
            size = (int(rng.integers(100, 1400)), int(rng.integers(100, 1000)))
            image = cv2.resize(blobs, size, interpolation=cv2.INTER_CUBIC) + rng.integers(0, 256, 3)
            image = np.clip(np.round(image), 0, 255).astype(np.uint8)
            _assert_like_reference(image, f"contrast {contrast}")
            qualities.add(pdq_hash(image).quality)
    assert len(qualities) > 5  # the quality metric was exercised below its cap of 100


@pytest.mark.parametrize("colour", [(0, 0, 0), (128, 128, 128), (255, 255, 255), (10, 200, 30)])
def test_uniform_images_hash_exactly_like_the_reference(colour: tuple[int, int, int]) -> None:
    # A featureless image's reference hash is float rounding noise: it is handed to the reference.
    image = np.tile(np.array(colour, np.uint8), (90, 160, 1))
    assert pdq_hash(image) == pdq_hash_reference(image)
    assert pdq_dihedral(image) == pdq_dihedral_reference(image)


def test_fast_dihedral_hashes_equal_the_reference() -> None:
    for name in ("obama.jpg", "two_people.jpg", "alex-lacamoire.png"):
        image = _load(FACES / name)
        fast, reference = pdq_dihedral(image), pdq_dihedral_reference(image)
        for label, a, b in zip(DIHEDRAL_NAMES, fast, reference, strict=True):
            assert hamming(a, b) <= MAX_BITS, (name, label)
            assert abs(a.quality - b.quality) <= 1


def test_fast_hash_matches_threatexchange_on_every_fixture_file() -> None:
    for path in sorted(FACES.iterdir()):
        expected_hex, expected_quality = pdq_from_file(path)
        h = pdq_hash(np.asarray(Image.open(path)))  # as loaded there: no EXIF rotation
        assert hamming(h, PdqHash.from_hex(expected_hex)) <= MAX_BITS, path.name
        assert abs(h.quality - expected_quality) <= 1, path.name
