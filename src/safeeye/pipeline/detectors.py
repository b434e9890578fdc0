"""The loaded models a process needs to analyse media, built once from the settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from safeeye.config import Settings
from safeeye.errors import ConfigError
from safeeye.signals import registry
from safeeye.signals.base import LazyModel
from safeeye.signals.faces import FaceAnalyzer, face_analyzer
from safeeye.signals.nudity import NudityDetector, nudity_detector


@dataclass
class Detectors:
    """One of each model; each loads lazily on first use. The face and nudity models are
    fields; a model another signal names (``Signal.models``) is built from its registered
    factory the first time it is asked for."""

    faces: FaceAnalyzer
    nudity: NudityDetector
    settings: Settings | None = None
    threads: int | None = None
    _others: dict[str, LazyModel[Any, Any]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, threads: int | None = None) -> Detectors:
        """Models configured by ``settings`` (whose signal modules are imported first, so this
        process computes the same signals as every other); ``threads`` caps each model's CPU
        threads (1 inside a worker pool, where the pool already keeps every core busy)."""
        registry.load_modules(settings.signal_modules)
        return cls(
            faces=face_analyzer(settings, threads),
            nudity=nudity_detector(settings, threads),
            settings=settings,
            threads=threads,
        )

    def model(self, name: str) -> Any:
        """The model ``name`` (built on first request; loaded on its first prediction)."""
        if name in ("faces", "nudity"):
            return getattr(self, name)
        with self._lock:
            if name not in self._others:
                if self.settings is None:
                    raise ConfigError(f"model {name!r} needs settings to be built")
                self._others[name] = registry.build_model(name, self.settings, self.threads)
            return self._others[name]

    def load(self) -> None:
        """Load every model a registered signal needs."""
        needed = {"faces", "nudity"} | {m for s in registry.signals() for m in s.models}
        for name in sorted(needed):
            self.model(name).load()
