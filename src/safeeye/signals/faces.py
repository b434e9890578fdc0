"""Faces with dlib: HOG (default) or CNN detector, 5-point alignment, 128-d ResNet embedding.

The weights come from the ``face-recognition-models`` package; nothing is downloaded.
Distances between embeddings are Euclidean; the same person is usually under 0.6.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import cv2
import numpy as np
from PIL import Image

from safeeye.media.frames import Frame
from safeeye.signals.base import FrameSignal, LazyModel

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


class FaceAnalyzer(LazyModel):
    """Finds faces and embeds them. Thread-safe loading; one instance per process.

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
            self._encode = encoder.encode
        else:
            network = dlib.face_recognition_model_v1(
                str(models / "dlib_face_recognition_resnet_model_v1.dat")
            )
            self._encode = lambda chips: np.array(
                [network.compute_face_descriptor(c) for c in chips], dtype=np.float32
            ).reshape(-1, EMBEDDING_DIM)

    def predict(self, image: np.ndarray) -> list[Face]:
        """Every face of at least ``min_size`` pixels in ``image`` (RGB uint8), largest first."""
        self.load()
        scaled, scale = _fit(image, self.options.max_side)
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


class FaceSignal(FrameSignal[list[Face]]):
    name: ClassVar[str] = "faces"

    def __init__(self, analyzer: FaceAnalyzer) -> None:
        self.analyzer = analyzer

    def compute(self, frame: Frame) -> list[Face]:
        return self.analyzer.predict(frame.image)
