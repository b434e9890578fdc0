"""The two small interfaces every signal and model implements."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import ClassVar, Generic, TypeVar

from safeeye.media.frames import Frame

T = TypeVar("T")


class LazyModel(ABC):
    """A model loaded on first use, once, even when two threads ask at the same moment.

    Subclasses implement ``_load`` (read weights, build the runtime session) and use
    ``self.load()`` before touching what it built. Weights always come from installed
    packages, never from the network.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    @abstractmethod
    def _load(self) -> None: ...


class FrameSignal(ABC, Generic[T]):
    """A signal computed from one frame (a still image or a sampled video frame)."""

    name: ClassVar[str]

    @abstractmethod
    def compute(self, frame: Frame) -> T:
        """The signal's typed value for ``frame``."""
