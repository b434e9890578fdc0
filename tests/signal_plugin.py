"""A signal plugin outside the package, named by ``SAFEEYE_SIGNAL_MODULES`` in the tests: it
says which process analysed each frame, and reads the whole file once."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from safeeye.media.frames import Frame
from safeeye.signals.base import FileSignal, FrameSignal, MediaFile, SignalContext
from safeeye.signals.registry import register


@register
class AnalysedBy(FrameSignal[int]):
    """The process id of the process that computed the frame's signals."""

    name: ClassVar[str] = "test_analysed_by"

    def compute(self, frame: Frame, context: SignalContext) -> int:
        return os.getpid()

    def summary(self, values: Sequence[int]) -> Any:
        return sorted(set(values))


@register
class FileBytes(FileSignal[int]):
    """The size of the file, read from the file itself."""

    name: ClassVar[str] = "test_file_bytes"

    def compute(self, file: MediaFile, context: SignalContext) -> int:
        return file.path.stat().st_size
