"""The loaded models a process needs to analyse media, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from safeeye.config import Settings
from safeeye.signals.faces import FaceAnalyzer, FaceOptions
from safeeye.signals.nudity import NudityDetector


@dataclass
class Detectors:
    """One of each model; each loads lazily on first use."""

    faces: FaceAnalyzer
    nudity: NudityDetector

    @classmethod
    def from_settings(cls, settings: Settings, *, threads: int | None = None) -> Detectors:
        """Models configured by ``settings``; ``threads`` caps each model's CPU threads
        (1 inside a worker pool, where the pool already keeps every core busy)."""
        options = FaceOptions(
            detector=settings.face_detector,
            upsample=settings.face_upsample,
            max_side=settings.face_max_side,
            small_side=settings.face_small_side,
            encoder=settings.face_encoder,
            threads=threads or 1,
            cache_dir=settings.data_dir / "models",
            min_size=settings.face_min_size,
        )
        return cls(faces=FaceAnalyzer(options), nudity=NudityDetector(threads=threads))

    def load(self) -> None:
        self.faces.load()
        self.nudity.load()
