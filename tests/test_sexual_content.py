"""The sexual-content decision: the real detector on benign photos, and the threshold's edge
with scores injected at the model boundary (no sexual images are kept in this repository)."""

from __future__ import annotations

import pytest

from conftest import FACES
from safeeye.app import SafeEye
from safeeye.pipeline.scan import Scanner
from safeeye.signals.nudity import Detection, NudityResult


def test_benign_photos_are_not_flagged_by_the_real_detector(app: SafeEye) -> None:
    results = Scanner(app).scan_paths([FACES / "obama.jpg", FACES / "rose_leslie2.jpg"])
    assert all(r.sexual_score < 0.2 and not r.sexual for r in results)


@pytest.mark.parametrize(("score", "flagged"), [(0.5, True), (0.4999, False), (0.93, True)])
def test_media_is_flagged_at_the_threshold(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, score: float, flagged: bool
) -> None:
    injected = NudityResult(
        detections=(Detection("FEMALE_BREAST_EXPOSED", score, (10, 10, 50, 50)),),
        scores={"FEMALE_BREAST_EXPOSED": score},
        sexual_score=score,
    )
    monkeypatch.setattr(app.detectors.nudity, "predict", lambda image: injected)
    (result,) = Scanner(app).scan_paths([FACES / "biden.jpg"])
    assert result.sexual_score == pytest.approx(score) and result.sexual is flagged
