"""PDQ hashes: the exchange format, the dihedral order, and the large-image policy."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageOps
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_file

from safeeye.media.frames import Frame
from safeeye.signals.pdq import (
    DIHEDRAL_NAMES,
    PdqHash,
    PdqSignal,
    distance_matrix,
    hamming,
    pdq_dihedral,
    pdq_hash,
)

FACES = Path(__file__).parent / "fixtures" / "faces"


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


def test_large_images_are_downscaled_with_a_small_hash_change_and_a_big_saving() -> None:
    photo = _load(FACES / "obama3.jpg")
    big = np.asarray(Image.fromarray(photo).resize((4000, 3000), Image.Resampling.BICUBIC))
    start = time.perf_counter()
    ours = pdq_hash(big)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    vector, quality = pdqhash.compute(big)
    full_s = time.perf_counter() - start
    full = PdqHash(np.packbits(vector.astype(np.uint8)).tobytes(), quality)
    assert hamming(ours, full) <= 16
    assert ours_s < full_s


def test_signal_hashes_a_frame() -> None:
    image = _load(FACES / "biden2.jpg")
    assert PdqSignal.name == "pdq"
    assert PdqSignal().compute(Frame(0, 0.0, image)) == pdq_hash(image)


def test_grey_and_rgba_images_are_accepted() -> None:
    image = _load(FACES / "kit_with_rose.jpg")
    grey = image.mean(axis=2).astype(np.uint8)
    assert pdq_hash(grey).quality > 0
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    assert pdq_hash(rgba) == pdq_hash(image)
