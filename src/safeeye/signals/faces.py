"""Faces with dlib: HOG (default) or CNN detector, 5-point alignment, 128-d ResNet embedding.

The weights come from the ``face-recognition-models`` package; nothing is downloaded.
Distances between embeddings are Euclidean; the same person is usually under 0.6.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import cv2
import numpy as np
from PIL import Image

from safeeye.media.frames import Frame
from safeeye.signals.base import FrameSignal, LazyModel, SignalContext
from safeeye.signals.registry import register, register_model

if TYPE_CHECKING:
    from safeeye.config import Settings

EMBEDDING_DIM = 128


def model_dir() -> Path:
    """Where face-recognition-models keeps its weights (found without importing the package,
    whose ``__init__`` needs the deprecated ``pkg_resources``)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the face-recognition-models package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


@dataclass(frozen=True, eq=False)
class Face:
    """One face: box (x, y, w, h) in the frame's pixels, detector score, unit-free embedding."""

    box: tuple[int, int, int, int]
    score: float
    embedding: np.ndarray

    def distance(self, other: np.ndarray) -> float:
        return float(np.linalg.norm(self.embedding - other))


@dataclass(frozen=True)
class FaceOptions:
    """How hard to look. HOG finds faces of about 80 px and more at the scale it runs on:
    images are searched at up to ``max_side`` pixels, and small images (longest side at most
    ``small_side``) are upsampled once more so their small faces are found too."""

    detector: Literal["hog", "cnn"] = "hog"
    upsample: int = 0
    max_side: int = 1280
    small_side: int = 800
    min_size: int = 40
    encoder: Literal["onnx", "dlib"] = "onnx"
    threads: int = 1
    cache_dir: Path | None = None


class FaceAnalyzer(LazyModel[np.ndarray, list[Face]]):
    """Finds faces and embeds them: ``predict`` takes an RGB ``uint8`` image and returns every
    face of at least ``min_size`` pixels, largest first. Thread-safe loading; one instance per
    process.

    The embedding network is dlib's ResNet either way: run by onnxruntime (the default; the
    same weights converted exactly, about 13x faster than the BLAS-less dlib wheel) or by dlib.
    """

    def __init__(self, options: FaceOptions | None = None) -> None:
        super().__init__()
        self.options = options or FaceOptions()
        self._detector: Any = None
        self._shape: Any = None
        self._encode: Any = None

    def _load(self) -> None:
        import dlib

        models = model_dir()
        if self.options.detector == "cnn":
            self._detector = dlib.cnn_face_detection_model_v1(
                str(models / "mmod_human_face_detector.dat")
            )
        else:
            self._detector = dlib.get_frontal_face_detector()
        self._shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        if self.options.encoder == "onnx":
            from safeeye.signals.dlib_onnx import OnnxFaceEncoder

            encoder = OnnxFaceEncoder(
                cache_dir=self.options.cache_dir, threads=self.options.threads
            )
            encoder.load()
            self._encode = encoder.predict
        else:
            network = dlib.face_recognition_model_v1(
                str(models / "dlib_face_recognition_resnet_model_v1.dat")
            )
            self._encode = lambda chips: np.array(
                [network.compute_face_descriptor(c) for c in chips], dtype=np.float32
            ).reshape(-1, EMBEDDING_DIM)

    def _predict(self, inputs: np.ndarray) -> list[Face]:
        scaled, scale = _fit(inputs, self.options.max_side)
        upsample = self.options.upsample
        if max(scaled.shape[:2]) <= self.options.small_side:
            upsample += 1
        boxes = self._detect(scaled, upsample)
        kept, chips = [], []
        for rect, score in boxes:
            if min(rect.width(), rect.height()) / scale < self.options.min_size:
                continue
            kept.append((rect, score))
            chips.append(_face_chip(scaled, self._shape(scaled, rect)))
        embeddings = self._encode(chips) if chips else np.zeros((0, EMBEDDING_DIM), np.float32)
        faces: list[Face] = []
        for (rect, score), embedding in zip(kept, embeddings, strict=True):
            box = (
                round(rect.left() / scale),
                round(rect.top() / scale),
                round(rect.width() / scale),
                round(rect.height() / scale),
            )
            faces.append(Face(box=box, score=float(score), embedding=embedding.astype(np.float32)))
        faces.sort(key=lambda f: f.box[2] * f.box[3], reverse=True)
        return faces

    def _detect(self, image: np.ndarray, upsample: int) -> list[tuple[Any, float]]:
        if self.options.detector == "cnn":
            return [(d.rect, d.confidence) for d in self._detector(image, upsample)]
        # HOG on the grey image finds the same faces as on RGB (checked on the fixtures) in
        # three quarters of the time: dlib's fhog otherwise takes gradients of all channels.
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects, scores, _ = self._detector.run(grey, upsample, 0.0)
        return list(zip(rects, scores, strict=True))


def _face_chip(image: np.ndarray, shape: Any) -> np.ndarray:
    import dlib

    return dlib.get_face_chip(image, shape, size=150, padding=0.25)


def _fit(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image scaled down so its longest side is at most ``max_side``, and the scale used."""
    height, width = image.shape[:2]
    longest = max(height, width)
    if longest <= max_side:
        return np.ascontiguousarray(image), 1.0
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)
    return np.asarray(resized), scale


@register_model("faces")
def face_analyzer(settings: Settings, threads: int | None = None) -> FaceAnalyzer:
    """The face detector and encoder the settings ask for (``threads``: default 1)."""
    return FaceAnalyzer(
        FaceOptions(
            detector=settings.face_detector,
            upsample=settings.face_upsample,
            max_side=settings.face_max_side,
            small_side=settings.face_small_side,
            encoder=settings.face_encoder,
            threads=threads or 1,
            cache_dir=settings.data_dir / "models",
            min_size=settings.face_min_size,
        )
    )


@register
class FaceSignal(FrameSignal[list[Face]]):
    """The faces of a frame. Their JSON form leaves the embeddings out: those are personal
    data, kept only sealed under the signals key (``pipeline.record``), so decoded faces have
    an empty embedding."""

    name: ClassVar[str] = "faces"
    models: ClassVar[tuple[str, ...]] = ("faces",)

    def compute(self, frame: Frame, context: SignalContext) -> list[Face]:
        analyzer: FaceAnalyzer = context.model("faces")
        return analyzer.predict(frame.image)

    def encode(self, value: list[Face]) -> Any:
        return [{"box": list(face.box), "score": face.score} for face in value]

    def decode(self, data: Any) -> list[Face]:
        empty = np.zeros(0, np.float32)
        return [Face(tuple(f["box"]), f["score"], empty) for f in data]  # type: ignore[arg-type]

    def summary(self, values: Sequence[list[Face]]) -> Any:
        """How many faces were found, and in how many frames."""
        return {"count": sum(map(len, values)), "frames": sum(1 for v in values if v)}
