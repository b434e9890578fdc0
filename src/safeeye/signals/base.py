"""The small interfaces every signal and model implements.

A signal is one class: a ``name`` and ``version``, what it applies to, the models it needs,
``compute`` (a typed value, or None when it has nothing to say), how its value is stored
(``encode``/``decode``: JSON) and shown (``summary``: a short JSON value for ``scan --json``).
Registering it (``safeeye.signals.registry.register``) is all the analysis needs.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from safeeye.errors import ConfigError
from safeeye.media.frames import Frame

if TYPE_CHECKING:
    from safeeye.media.decode import MediaInfo
    from safeeye.signals.hashes import ContentHashes

In = TypeVar("In")
Out = TypeVar("Out")
V = TypeVar("V")


class LazyModel(ABC, Generic[In, Out]):
    """A model loaded on first use, once, even when two threads ask at the same moment.

    Subclasses implement ``_load`` (read weights, build the runtime session: see
    ``signals.onnx``) and ``_predict`` (pre-process, run, post-process); callers use
    ``predict``, which loads first when needed. Weights always come from installed packages,
    never from the network.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def load(self) -> None:
        """Load the model now (a no-op once loaded)."""
        if self._loaded:
            return
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True

    def predict(self, inputs: In) -> Out:
        """The model's output for ``inputs``, loading the model first if it is not yet."""
        if not self._loaded:
            self.load()
        return self._predict(inputs)

    @abstractmethod
    def _load(self) -> None: ...

    @abstractmethod
    def _predict(self, inputs: In) -> Out: ...


class Target(StrEnum):
    """What a signal is computed on."""

    STILL = "still"  # a still image (its one frame)
    FRAME = "frame"  # a frame sampled from a video or an animation
    FILE = "file"  # the whole file, read once by the analysing process (provenance, metadata)
    MEDIA = "media"  # the whole media, from its frames' values once every frame is analysed


#: The targets of frame signals.
FRAMES = frozenset({Target.STILL, Target.FRAME})


class Models(Protocol):
    """The loaded models of a process, by name (``pipeline.detectors.Detectors``)."""

    def model(self, name: str) -> Any: ...


@dataclass(frozen=True)
class SignalContext:
    """What a signal may use besides its input: the values of the signals computed before it
    on the same frame (or media), and the process's models."""

    values: Mapping[str, Any]
    models: Models | None = None

    def model(self, name: str) -> Any:
        """The loaded model ``name`` (``ConfigError`` where no models are at hand)."""
        if self.models is None:
            raise ConfigError(f"no models here: a whole-media signal cannot use model {name!r}")
        return self.models.model(name)


class AnalysedFrame(Protocol):
    """One analysed frame, as whole-media signals see it."""

    @property
    def index(self) -> int: ...
    @property
    def time(self) -> float: ...
    @property
    def reason(self) -> str: ...
    @property
    def values(self) -> Mapping[str, Any]: ...


class AnalysedMedia(Protocol):
    """A media file once all its frames are analysed, as whole-media signals see it."""

    @property
    def info(self) -> MediaInfo | None: ...
    @property
    def frames(self) -> Sequence[AnalysedFrame]: ...


@dataclass(frozen=True)
class MediaFile:
    """The file a whole-file signal reads (in the analysing process, never the parent)."""

    path: Path
    info: MediaInfo
    hashes: ContentHashes


class Signal(ABC, Generic[V]):
    """What every signal declares. Subclass ``FrameSignal``, ``FileSignal`` or ``MediaSignal``.

    ``version``: bump it when the value's meaning or form changes (stored values of another
    version are not read back). ``models``: names of the models ``compute`` asks the context
    for (loaded before the first file). ``after``: signals whose values ``compute`` reads (they
    are computed first). ``stage``: the timing bucket (default: the name). ``stored``: False
    for values kept only in memory while a file is matched.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    applies_to: ClassVar[frozenset[Target]]
    models: ClassVar[tuple[str, ...]] = ()
    after: ClassVar[tuple[str, ...]] = ()
    stage: ClassVar[str] = ""
    stored: ClassVar[bool] = True

    @property
    def timing(self) -> str:
        """The timing bucket the signal's computing time is counted in."""
        return self.stage or self.name

    def encode(self, value: V) -> Any:
        """The JSON form of ``value`` (as stored); the value itself by default."""
        return value

    def decode(self, data: Any) -> V:
        """The value back from its JSON form."""
        return data  # type: ignore[no-any-return]

    @abstractmethod
    def summary(self, values: Sequence[V]) -> Any:
        """A short JSON value for ``scan --json`` from the media's values (one per frame with
        a value for a frame signal, one for a whole-media signal; never empty)."""


class FrameSignal(Signal[V]):
    """A signal computed on each frame: a still image or a sampled video frame."""

    applies_to: ClassVar[frozenset[Target]] = FRAMES

    @abstractmethod
    def compute(self, frame: Frame, context: SignalContext) -> V | None:
        """The signal's value for ``frame``, or None when it has none."""


class FileSignal(Signal[V]):
    """A signal computed once from the whole file (C2PA manifests, metadata, watermarks)."""

    applies_to: ClassVar[frozenset[Target]] = frozenset({Target.FILE})

    @abstractmethod
    def compute(self, file: MediaFile, context: SignalContext) -> V | None:
        """The signal's value for ``file``, or None when it has none."""

    def summary(self, values: Sequence[V]) -> Any:
        return self.encode(values[0])


class MediaSignal(Signal[V]):
    """A signal computed once from the values of every analysed frame (vPDQ, a video-level
    score). It may run in the process that joins a split video's parts: no file, no model."""

    applies_to: ClassVar[frozenset[Target]] = frozenset({Target.MEDIA})

    @abstractmethod
    def compute(self, media: AnalysedMedia, context: SignalContext) -> V | None:
        """The signal's value for ``media``, or None when it has none."""

    def summary(self, values: Sequence[V]) -> Any:
        return self.encode(values[0])
