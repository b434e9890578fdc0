"""The face signal's options: the CNN detector, and dlib's own encoder as a cross-check."""

from __future__ import annotations

import numpy as np
from PIL import Image

from conftest import FACES
from safeeye.pipeline.detectors import Detectors
from safeeye.signals.faces import FaceAnalyzer, FaceOptions


def _photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(FACES / name).convert("RGB"))


def test_cnn_detector_finds_both_people(tmp_path) -> None:  # type: ignore[no-untyped-def]
    analyzer = FaceAnalyzer(FaceOptions(detector="cnn", max_side=640, cache_dir=tmp_path))
    assert len(analyzer.predict(_photo("two_people.jpg"))) == 2


def test_onnx_and_dlib_encoders_agree(detectors: Detectors) -> None:
    dlib_encoder = FaceAnalyzer(FaceOptions(encoder="dlib"))
    image = _photo("obama.jpg")
    (ours,) = detectors.faces.predict(image)
    (theirs,) = dlib_encoder.predict(image)
    assert ours.box == theirs.box
    assert float(np.abs(ours.embedding - theirs.embedding).max()) < 1e-4
