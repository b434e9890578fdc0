"""dlib's face ResNet converted to ONNX gives dlib's embeddings, on real fixture photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from conftest import FACES
from safeeye.signals import dlib_onnx
from safeeye.signals.dlib_onnx import DlibFormatError, OnnxFaceEncoder

PEOPLE = {  # photo: who (tests/fixtures/README.md)
    "obama.jpg": "obama",
    "obama2.jpg": "obama",
    "biden.jpg": "biden",
    "biden2.jpg": "biden",
    "rose_leslie1.jpg": "rose_leslie",
}
PHOTOS = list(PEOPLE)


def _chip(image: np.ndarray, detector: Any, predictor: Any) -> np.ndarray:
    import dlib

    rects = list(detector(image, 1))
    assert rects, "no face found"
    rect = max(rects, key=lambda r: r.area())
    return dlib.get_face_chip(image, predictor(image, rect), size=150, padding=0.25)


@pytest.fixture(scope="module")
def reference() -> tuple[list[np.ndarray], np.ndarray]:
    """One aligned chip per photo (largest face) and dlib's own descriptor of each."""
    import dlib

    models = dlib_onnx.default_dat_path().parent
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    recognizer = dlib.face_recognition_model_v1(str(models / dlib_onnx.DAT_NAME))
    chips = [
        _chip(np.asarray(Image.open(FACES / name).convert("RGB")), detector, predictor)
        for name in PHOTOS
    ]
    expected = np.array([recognizer.compute_face_descriptor(c) for c in chips], dtype=np.float32)
    return chips, expected


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def encoder(cache_dir: Path) -> OnnxFaceEncoder:
    """Converted once for the module, cached in ``cache_dir``."""
    loaded = OnnxFaceEncoder(cache_dir=cache_dir)
    loaded.load()
    return loaded


def test_embeddings_equal_dlibs(
    encoder: OnnxFaceEncoder, reference: tuple[list[np.ndarray], np.ndarray]
) -> None:
    chips, expected = reference
    got = encoder.predict(chips)
    assert got.shape == (len(PHOTOS), 128) and got.dtype == np.float32
    # dlib's output is not normalised (norms ~0.4), so this compares the raw values;
    # observed max difference: ~3e-7 (float32 summation order only)
    assert float(np.abs(got - expected).max()) < 1e-4
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)


def test_distances_are_preserved(
    encoder: OnnxFaceEncoder, reference: tuple[list[np.ndarray], np.ndarray]
) -> None:
    chips, expected = reference
    got = encoder.predict(chips)

    def distances(e: np.ndarray) -> np.ndarray:
        return np.linalg.norm(e[:, None, :] - e[None, :, :], axis=-1)

    ours, theirs = distances(got), distances(expected)
    assert float(np.abs(ours - theirs).max()) < 1e-4
    person = [PEOPLE[name] for name in PHOTOS]
    for i in range(len(PHOTOS)):
        for j in range(i + 1, len(PHOTOS)):
            assert (ours[i, j] < 0.6) == (person[i] == person[j]), (PHOTOS[i], PHOTOS[j])


def test_batches_give_the_embeddings_of_single_chips(
    encoder: OnnxFaceEncoder, reference: tuple[list[np.ndarray], np.ndarray]
) -> None:
    chips, _ = reference
    batch = encoder.predict(chips)
    singles = np.concatenate([encoder.predict([c]) for c in chips])
    np.testing.assert_allclose(batch, singles, atol=1e-6)
    assert encoder.predict([]).shape == (0, 128)


def test_a_second_encoder_loads_the_cached_model_without_converting(
    encoder: OnnxFaceEncoder,
    cache_dir: Path,
    reference: tuple[list[np.ndarray], np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (cached,) = cache_dir.glob("*.onnx")
    assert cached.stat().st_size > 20_000_000  # the weights are in it

    def no_conversion(_: Path) -> bytes:
        raise AssertionError("converted again instead of using the cache")

    monkeypatch.setattr(dlib_onnx, "convert", no_conversion)
    again = OnnxFaceEncoder(cache_dir=cache_dir, threads=2)
    chips, _ = reference
    np.testing.assert_array_equal(again.predict(chips[:2]), encoder.predict(chips[:2]))


def test_wrong_chips_are_refused(encoder: OnnxFaceEncoder) -> None:
    with pytest.raises(ValueError, match="150x150x3 uint8"):
        encoder.predict([np.zeros((150, 150, 3), dtype=np.float32)])
    with pytest.raises(ValueError, match="150x150x3 uint8"):
        encoder.predict([np.zeros((160, 160, 3), dtype=np.uint8)])


def test_a_file_that_is_not_the_dlib_network_is_refused(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(dlib_onnx.default_dat_path().read_bytes()[:100_000])
    with pytest.raises(DlibFormatError):
        dlib_onnx.convert(truncated)
    other = tmp_path / "other.dat"
    other.write_bytes(
        (dlib_onnx.default_dat_path().parent / "mmod_human_face_detector.dat").read_bytes()
    )
    with pytest.raises(DlibFormatError):
        dlib_onnx.convert(other)
