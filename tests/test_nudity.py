"""The sexual-content detector agrees with NudeNet's own and reads the fixture photos as benign."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nudenet import NudeDetector
from PIL import Image, ImageOps

from safeeye.media.frames import Frame
from safeeye.signals.base import SignalContext
from safeeye.signals.nudity import EXPLICIT_LABELS, LABELS, NudityDetector, NuditySignal

FACES = sorted((Path(__file__).parent / "fixtures" / "faces").iterdir())


def _load(path: Path) -> np.ndarray:
    return np.ascontiguousarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


@pytest.fixture(scope="module")
def detector() -> NudityDetector:
    model = NudityDetector()
    model.load()
    return model


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return {p.name: _load(p) for p in FACES if p.suffix in {".jpg", ".png"}}


def test_detections_agree_with_nudenet_given_the_same_rgb_pixels(
    detector: NudityDetector, images: dict[str, np.ndarray]
) -> None:
    # NudeNet passes an ndarray's channels to the model unchanged (it swaps them twice), so an
    # RGB array gives both detectors the same input.
    reference = NudeDetector()
    for name, image in images.items():
        expected = sorted(reference.detect(image.copy()), key=lambda d: (d["class"], d["box"]))
        got = sorted(detector.predict(image).detections, key=lambda d: (d.label, d.box))
        assert [d.label for d in got] == [d["class"] for d in expected], name
        tolerance = 0.01 * max(image.shape[:2])  # resize-then-pad vs pad-then-resize
        for ours, theirs in zip(got, expected, strict=True):
            assert ours.score == pytest.approx(theirs["score"], abs=0.1), name
            assert np.abs(np.subtract(ours.box, theirs["box"])).max() <= tolerance, name


def test_fixture_photos_are_not_sexual(
    detector: NudityDetector, images: dict[str, np.ndarray]
) -> None:
    for name, result in zip(images, detector.predict_batch(list(images.values())), strict=True):
        assert result.sexual_score == 0.0, name
        assert not EXPLICIT_LABELS & set(result.scores), name
        assert any(label.startswith("FACE_") for label in result.scores), name
        assert all(0.25 <= d.score <= 1 and d.label in LABELS for d in result.detections)


def test_batch_equals_single_predictions(
    detector: NudityDetector, images: dict[str, np.ndarray]
) -> None:
    batch = list(images.values())[:3]
    for one, many in zip(map(detector.predict, batch), detector.predict_batch(batch), strict=True):
        assert [d.label for d in one.detections] == [d.label for d in many.detections]
        assert one.sexual_score == pytest.approx(many.sexual_score, abs=1e-4)


class _Models:
    def __init__(self, detector: NudityDetector) -> None:
        self.detector = detector

    def model(self, name: str) -> NudityDetector:
        assert name == "nudity"
        return self.detector


def test_signal_computes_a_frame_with_the_model_from_its_context(
    detector: NudityDetector, images: dict[str, np.ndarray]
) -> None:
    signal = NuditySignal()
    assert signal.name == "nudity" and signal.models == ("nudity",)
    context = SignalContext({}, _Models(detector))
    result = signal.compute(Frame(0, 0.0, images["obama.jpg"]), context)
    assert result is not None and result.detections
    assert signal.decode(json.loads(json.dumps(signal.encode(result)))) == result
