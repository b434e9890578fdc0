"""Analysis of one media file into signals: a pure step (file in, typed signals out, no I/O
besides reading the file), so it runs the same in the web process, the CLI or a worker.

The analysis knows no signal by hand: it computes every registered one (``signals.registry``)
on what it applies to, in order, each seeing the values computed before it. The properties of
``FrameAnalysis`` and ``MediaAnalysis`` are typed views of the built-in signals the matcher
and the scan result read.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import MediaError, unexpected
from safeeye.media.decode import MediaInfo, open_media
from safeeye.media.frames import Frame
from safeeye.media.video import VideoMedia
from safeeye.pipeline.detectors import Detectors
from safeeye.signals import registry
from safeeye.signals.base import MediaFile, Models, Signal, SignalContext, Target
from safeeye.signals.faces import Face, FaceSignal
from safeeye.signals.hashes import ContentHashes, hash_file
from safeeye.signals.local_features import LocalFeatures, LocalFeaturesSignal
from safeeye.signals.nudity import NudityResult, NuditySignal, best_scores
from safeeye.signals.pdq import PdqHash
from safeeye.signals.variants import PdqSignal, VariantHash
from safeeye.signals.vpdq import VpdqFeature, VpdqSignal

STAGES = ("decode", "hashes", "faces", "sexual_content")
_NO_NUDITY = NudityResult(detections=(), scores={}, sexual_score=0.0)


@dataclass
class FrameAnalysis:
    """The signals of one analysed frame: ``values`` by signal name."""

    index: int
    time: float
    reason: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def variants(self) -> list[VariantHash]:
        """The PDQ hashes searched for this frame (the plain hash first)."""
        return self.values.get(PdqSignal.name) or []

    @property
    def pdq(self) -> PdqHash | None:
        variants = self.variants
        return variants[0].hash if variants else None

    @property
    def nudity(self) -> NudityResult:
        return self.values.get(NuditySignal.name) or _NO_NUDITY

    @property
    def faces(self) -> list[Face]:
        return self.values.get(FaceSignal.name) or []

    @property
    def local(self) -> LocalFeatures | None:
        """Stills only, when known images are indexed: ORB features (not stored)."""
        still = self.values.get(LocalFeaturesSignal.name)
        return still.features if still is not None else None

    @property
    def preview(self) -> np.ndarray | None:
        """Stills only, with ``local``: a small copy of the picture to verify matches on."""
        still = self.values.get(LocalFeaturesSignal.name)
        return still.preview if still is not None else None


@dataclass
class MediaAnalysis:
    """Everything a scan derives from one file; ``error`` is set when decoding failed (frames
    analysed before a mid-stream failure are kept). ``values``: the whole-file and
    whole-media signals, by name."""

    hashes: ContentHashes
    info: MediaInfo | None = None
    frames: list[FrameAnalysis] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    error: MediaError | None = None
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def vpdq(self) -> list[VpdqFeature]:
        return self.values.get(VpdqSignal.name) or []

    @property
    def face_count(self) -> int:
        return sum(len(f.faces) for f in self.frames)

    @property
    def sexual_score(self) -> float:
        return max((f.nudity.sexual_score for f in self.frames), default=0.0)

    @property
    def sexual_scores(self) -> dict[str, float]:
        """The highest score of each sexual-content class over all frames."""
        return best_scores(f.nudity for f in self.frames)

    def signal_values(self, signal: Signal[Any]) -> list[tuple[int | None, Any]]:
        """``signal``'s values as (frame index, value) pairs; the index is None for a
        whole-media signal."""
        name = signal.name
        if registry.is_frame_signal(signal):
            return [(f.index, f.values[name]) for f in self.frames if name in f.values]
        if name in self.values:
            return [(None, self.values[name])]
        return []

    def summaries(self) -> dict[str, Any]:
        """Every registered signal's short summary (None where it has no value)."""
        out: dict[str, Any] = {}
        for signal in registry.signals():
            values = [value for _, value in self.signal_values(signal)]
            out[signal.name] = signal.summary(values) if values else None
        return out


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] += time.perf_counter() - start


def analyze_file(
    path: Path,
    detectors: Detectors,
    limits: MediaLimits,
    sampling: SamplingPlan,
    *,
    hashes: ContentHashes | None = None,
    segment: tuple[float, float | None] | None = None,
    decode_threads: int = 0,
    local_features: bool = True,
    on_info: Callable[[MediaInfo], None] | None = None,
) -> MediaAnalysis:
    """Decode ``path`` and compute every registered signal of the file and its selected frames.

    ``segment`` restricts a video to the frames in [start, end) seconds, so several workers
    can share one video (join the parts with ``merge_parts``; the part starting at 0 computes
    the whole-file signals). ``local_features`` (ORB, for crop-tolerant matching of stills) is
    only worth computing when known images are indexed. ``on_info`` hears what the media is
    (its duration, say) as soon as it is opened.
    Never raises for bad media: a ``MediaError`` is recorded on the result instead, also for
    an unexpected exception of a decoder, model or signal (code ``internal``).
    """
    timings: dict[str, float] = defaultdict(float)
    if hashes is None:
        with _timed(timings, "hashes"):
            hashes = hash_file(path)
    analysis = MediaAnalysis(hashes=hashes, timings=timings)
    skip = frozenset() if local_features else frozenset({LocalFeaturesSignal.name})
    try:
        with _timed(timings, "decode"):
            media = open_media(path, limits, sampling, threads=decode_threads)
        with media:
            analysis.info = media.info
            if on_info is not None:
                on_info(media.info)
            if segment is not None and isinstance(media, VideoMedia):
                frames = media.frames_between(*segment)
            else:
                frames = media.frames()
            while True:
                with _timed(timings, "decode"):
                    frame = next(frames, None)
                if frame is None:
                    break
                analysis.frames.append(analyze_frame(frame, detectors, timings, skip))
            if segment is None or segment[0] <= 0:
                file = MediaFile(path, media.info, hashes)
                _compute(registry.signals(Target.FILE), file, analysis.values, detectors, timings)
    except MediaError as exc:
        analysis.error = exc
    except Exception as exc:  # a decoder's or model's bug costs this file, not the scan
        analysis.error = unexpected(exc, "analysis", MediaError)
    if segment is None:
        finish(analysis)
    return analysis


def merge_parts(parts: list[MediaAnalysis]) -> MediaAnalysis:
    """One analysis from the analyses of consecutive segments of the same video."""
    first = parts[0]
    merged = MediaAnalysis(hashes=first.hashes, info=first.info)
    seen: set[int] = set()
    for part in parts:
        for frame in part.frames:
            if frame.index not in seen:
                seen.add(frame.index)
                merged.frames.append(frame)
        for stage, seconds in part.timings.items():
            merged.timings[stage] += seconds
        for name, value in part.values.items():
            merged.values.setdefault(name, value)
        if merged.error is None and part.error is not None:
            merged.error = part.error
        merged.info = merged.info or part.info
    merged.frames.sort(key=lambda f: f.time)
    finish(merged)
    return merged


def finish(analysis: MediaAnalysis) -> None:
    """The whole-media signals, computed from the frames (the vPDQ hash of a video). This may
    run in the process that joins a split video's parts, so these signals get no models; a
    failure of one is the file's error."""
    try:
        _compute(registry.signals(Target.MEDIA), analysis, analysis.values, None, analysis.timings)
    except Exception as exc:
        error = unexpected(exc, "analysis", MediaError)
        analysis.error = analysis.error or error


def analyze_frame(
    frame: Frame,
    detectors: Models,
    timings: dict[str, float],
    skip: frozenset[str] = frozenset(),
) -> FrameAnalysis:
    """Every registered signal that applies to ``frame`` (but those in ``skip``)."""
    target = Target.STILL if frame.reason == "still" else Target.FRAME
    values: dict[str, Any] = {}
    _compute(registry.signals(target), frame, values, detectors, timings, skip)
    return FrameAnalysis(frame.index, frame.time, frame.reason, values)


def _compute(
    signals: Sequence[Signal[Any]],
    subject: Any,
    values: dict[str, Any],
    models: Models | None,
    timings: dict[str, float],
    skip: frozenset[str] = frozenset(),
) -> None:
    """Each signal's value for ``subject`` (a frame, file or media) into ``values``, in order,
    each signal seeing those before it; a signal with nothing to say adds no value."""
    context = SignalContext(values, models)
    for signal in signals:
        if signal.name in skip:
            continue
        with _timed(timings, signal.timing):
            value = signal.compute(subject, context)  # type: ignore[attr-defined]
        if value is not None:
            values[signal.name] = value
