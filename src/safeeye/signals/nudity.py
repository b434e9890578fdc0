"""Sexual-content signal: NudeNet 3.4's bundled detector (``320n.onnx``) run on onnxruntime.

Pre- and post-processing are our own and vectorised. One deliberate difference from
``nudenet.NudeDetector``: NudeNet 3.4.2 swaps the channels twice (``cvtColor(RGBA2BGR)`` on a
3-channel image, then ``swapRB=True``), so it feeds the model BGR although the YOLOv8 model was
trained on RGB. We feed RGB; given the same RGB array, ``NudeDetector.detect`` and
``NudityDetector.predict`` agree (see the tests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import cv2
import numpy as np

from safeeye.errors import MediaError
from safeeye.media.frames import Frame
from safeeye.signals.base import FrameSignal, LazyModel, SignalContext
from safeeye.signals.onnx import default_threads, inference_session
from safeeye.signals.registry import register, register_model

if TYPE_CHECKING:
    from safeeye.config import Settings

#: NudeNet's 18 classes in the model's output order (checked against the model's metadata).
LABELS: tuple[str, ...] = (
    "FEMALE_GENITALIA_COVERED",
    "FACE_FEMALE",
    "BUTTOCKS_EXPOSED",
    "FEMALE_BREAST_EXPOSED",
    "FEMALE_GENITALIA_EXPOSED",
    "MALE_BREAST_EXPOSED",
    "ANUS_EXPOSED",
    "FEET_EXPOSED",
    "BELLY_COVERED",
    "FEET_COVERED",
    "ARMPITS_COVERED",
    "ARMPITS_EXPOSED",
    "FACE_MALE",
    "BELLY_EXPOSED",
    "MALE_GENITALIA_EXPOSED",
    "ANUS_COVERED",
    "FEMALE_BREAST_COVERED",
    "BUTTOCKS_COVERED",
)
#: The classes whose score is the sexual-content score.
EXPLICIT_LABELS: frozenset[str] = frozenset(
    {
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "FEMALE_BREAST_EXPOSED",
        "ANUS_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)
_EXPLICIT_IDS = np.array([LABELS.index(label) for label in sorted(EXPLICIT_LABELS)])
INPUT_SIZE = 320
MIN_SCORE = 0.25  # NudeNet's: candidates from 0.2, kept by NMS from 0.25
NMS_IOU = 0.45


@dataclass(frozen=True)
class Detection:
    """One detected body part; ``box`` is (x, y, width, height) in image pixels."""

    label: str
    score: float
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class NudityResult:
    """What the detector saw in one image.

    ``scores`` maps each detected label to its best score; ``sexual_score`` (0-1) is the best
    score of an explicit-exposure class, 0.0 when none was detected.
    """

    detections: tuple[Detection, ...]
    scores: Mapping[str, float]
    sexual_score: float


class NudityDetector(LazyModel[np.ndarray, NudityResult]):
    """NudeNet's detector, loaded on first use; ``predict`` takes an RGB ``uint8`` image
    (HxWx3). ``threads`` caps onnxruntime's intra-op threads (default: 2, or 1 on a one-core
    machine; use 1 when several scan workers share a CPU)."""

    def __init__(
        self, model_path: Path | None = None, threads: int | None = None, batch_size: int = 8
    ) -> None:
        super().__init__()
        self.model_path = model_path
        self.threads = threads if threads is not None else default_threads()
        self.batch_size = batch_size
        self._session: Any = None
        self._input_name = ""

    def _load(self) -> None:
        path = self.model_path or Path(str(resources.files("nudenet") / "320n.onnx"))
        session = inference_session(path, self.threads)
        names = session.get_modelmeta().custom_metadata_map.get("names")
        if names is not None and names != str(dict(enumerate(LABELS))):
            raise RuntimeError(f"unexpected class list in {path.name}")
        self._input_name = session.get_inputs()[0].name
        self._session = session

    def _predict(self, inputs: np.ndarray) -> NudityResult:
        return self._run([inputs])[0]

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[NudityResult]:
        """``predict`` for many images, run through the model ``batch_size`` at a time."""
        self.load()
        return self._run(images)

    def _run(self, images: Sequence[np.ndarray]) -> list[NudityResult]:
        results: list[NudityResult] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start : start + self.batch_size]
            blobs, scales = zip(*(_letterbox(image) for image in chunk), strict=True)
            (output,) = self._session.run(None, {self._input_name: np.stack(blobs)})
            results.extend(
                _postprocess(rows, scale, image.shape[:2])
                for rows, scale, image in zip(output, scales, chunk, strict=True)
            )
        return results


@register_model("nudity")
def nudity_detector(settings: Settings, threads: int | None = None) -> NudityDetector:
    """The detector the settings ask for (NudeNet's bundled model)."""
    return NudityDetector(threads=threads)


@register
class NuditySignal(FrameSignal[NudityResult]):
    """The sexual-content detections of a frame."""

    name: ClassVar[str] = "nudity"
    models: ClassVar[tuple[str, ...]] = ("nudity",)
    stage: ClassVar[str] = "sexual_content"

    def compute(self, frame: Frame, context: SignalContext) -> NudityResult:
        detector: NudityDetector = context.model("nudity")
        return detector.predict(frame.image)

    def encode(self, value: NudityResult) -> Any:
        return {
            "sexual_score": value.sexual_score,
            "scores": dict(value.scores),
            "detections": [[d.label, d.score, list(d.box)] for d in value.detections],
        }

    def decode(self, data: Any) -> NudityResult:
        detections = tuple(
            Detection(label, score, tuple(box))  # type: ignore[arg-type]
            for label, score, box in data.get("detections", ())
        )
        return NudityResult(detections, data["scores"], data["sexual_score"])

    def summary(self, values: Sequence[NudityResult]) -> Any:
        """The highest sexual-content score and the highest score of each detected class."""
        labels = best_scores(values)
        return {
            "score": round(max(v.sexual_score for v in values), 4),
            "labels": {label: round(score, 4) for label, score in sorted(labels.items())},
        }


def best_scores(results: Iterable[NudityResult]) -> dict[str, float]:
    """The highest score of each detected class over ``results`` (the frames of a media)."""
    best: dict[str, float] = {}
    for result in results:
        for label, score in result.scores.items():
            best[label] = max(score, best.get(label, 0.0))
    return best


def _letterbox(image: np.ndarray) -> tuple[np.ndarray, float]:
    """The CHW float input (image scaled to fit, padded right/bottom with black) and the
    factor from model pixels back to image pixels."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise MediaError(f"the detector needs an RGB uint8 image, got {image.shape}")
    height, width = image.shape[:2]
    scale = INPUT_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = cv2.resize(image[:, :, :3], size, interpolation=cv2.INTER_LINEAR)
    canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
    canvas[: size[1], : size[0]] = resized
    return canvas.transpose(2, 0, 1) * np.float32(1 / 255), 1 / scale


def _postprocess(output: np.ndarray, scale: float, shape: tuple[int, int]) -> NudityResult:
    """Boxes from one image's (4 + classes, anchors) output: filter, rescale, NMS."""
    rows = output.T
    class_scores = rows[:, 4:]
    class_ids = class_scores.argmax(axis=1)
    best = class_scores[np.arange(len(rows)), class_ids]
    keep = best >= MIN_SCORE
    rows, class_ids, best = rows[keep], class_ids[keep], best[keep]
    height, width = shape
    centre_x, centre_y, box_w, box_h = (rows[:, :4] * scale).T
    x = np.clip(centre_x - box_w / 2, 0, width)
    y = np.clip(centre_y - box_h / 2, 0, height)
    boxes = np.stack([x, y, np.minimum(box_w, width - x), np.minimum(box_h, height - y)], 1)
    chosen = cv2.dnn.NMSBoxes(boxes.tolist(), best.tolist(), MIN_SCORE, NMS_IOU)
    detections = tuple(
        Detection(LABELS[class_ids[i]], float(best[i]), tuple(int(v) for v in boxes[i]))  # type: ignore[arg-type]
        for i in np.asarray(chosen, dtype=int).reshape(-1)
    )
    scores: dict[str, float] = {}
    for d in detections:
        scores[d.label] = max(scores.get(d.label, 0.0), d.score)
    explicit = [s for label, s in scores.items() if label in EXPLICIT_LABELS]
    return NudityResult(detections, scores, max(explicit, default=0.0))
