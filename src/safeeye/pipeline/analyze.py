"""Analysis of one media file into signals: a pure step (file in, typed signals out, no I/O
besides reading the file), so it runs the same in the web process, the CLI or a worker."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import MediaError, unexpected
from safeeye.matching.local_features import LocalFeatures, extract_features
from safeeye.matching.variants import VariantHash, query_hashes
from safeeye.media.decode import MediaInfo, open_media
from safeeye.media.frames import Frame
from safeeye.media.video import VideoMedia
from safeeye.pipeline.detectors import Detectors
from safeeye.signals.faces import Face
from safeeye.signals.hashes import ContentHashes, hash_file
from safeeye.signals.nudity import NudityResult
from safeeye.signals.pdq import PdqHash
from safeeye.signals.vpdq import VpdqFeature, vpdq_from_frames

log = logging.getLogger(__name__)

STAGES = ("decode", "hashes", "faces", "sexual_content")
#: The longest side of the copy of a still kept for verifying local-feature matches.
PREVIEW_SIDE = 640


@dataclass
class FrameAnalysis:
    """The signals of one analysed frame."""

    index: int
    time: float
    reason: str
    pdq: PdqHash
    variants: list[VariantHash]
    nudity: NudityResult
    faces: list[Face]
    # Stills only: ORB features for crop-tolerant matching, and a small copy of the picture
    # to measure a verified match's aligned PDQ distance on (neither is stored).
    local: LocalFeatures | None = None
    preview: np.ndarray | None = None


@dataclass
class MediaAnalysis:
    """Everything a scan derives from one file; ``error`` is set when decoding failed (frames
    analysed before a mid-stream failure are kept)."""

    hashes: ContentHashes
    info: MediaInfo | None = None
    frames: list[FrameAnalysis] = field(default_factory=list)
    vpdq: list[VpdqFeature] = field(default_factory=list)
    error: MediaError | None = None
    timings: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def face_count(self) -> int:
        return sum(len(f.faces) for f in self.frames)

    @property
    def sexual_score(self) -> float:
        return max((f.nudity.sexual_score for f in self.frames), default=0.0)

    @property
    def sexual_scores(self) -> dict[str, float]:
        """The highest score of each sexual-content class over all frames."""
        best: dict[str, float] = {}
        for frame in self.frames:
            for label, score in frame.nudity.scores.items():
                best[label] = max(score, best.get(label, 0.0))
        return best


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
    """Decode ``path`` and compute every signal of every selected frame.

    ``segment`` restricts a video to the frames in [start, end) seconds, so several workers
    can share one video (join the parts with ``merge_parts``). ``local_features`` (ORB, for
    crop-tolerant matching of stills) is only worth computing when known images are indexed.
    ``on_info`` hears what the media is (its duration, say) as soon as it is opened.
    Never raises for bad media: a ``MediaError`` is recorded on the result instead, also for
    an unexpected exception of a decoder or model (code ``internal``).
    """
    timings: dict[str, float] = defaultdict(float)
    if hashes is None:
        with _timed(timings, "hashes"):
            hashes = hash_file(path)
    analysis = MediaAnalysis(hashes=hashes, timings=timings)
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
                analysis.frames.append(analyze_frame(frame, detectors, timings, local_features))
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
        if merged.error is None and part.error is not None:
            merged.error = part.error
        merged.info = merged.info or part.info
    merged.frames.sort(key=lambda f: f.time)
    finish(merged)
    return merged


def finish(analysis: MediaAnalysis) -> None:
    """Whole-media signals computed from the frames: the vPDQ hash of a video."""
    if analysis.info is not None and analysis.info.media_type == "video":
        samples = [f for f in analysis.frames if f.reason == "sample"]
        # vPDQ counts seconds from the first frame, as the reference implementation does.
        origin = samples[0].time if samples else 0.0
        with _timed(analysis.timings, "hashes"):
            analysis.vpdq = vpdq_from_frames((f.index, f.time - origin, f.pdq) for f in samples)


def analyze_frame(
    frame: Frame, detectors: Detectors, timings: dict[str, float], local_features: bool = True
) -> FrameAnalysis:
    """PDQ (with the variants used for matching), sexual-content scores and faces of a frame."""
    local = preview = None
    with _timed(timings, "hashes"):
        variants = query_hashes(frame.image)  # the first is the plain "original" hash
        pdq = variants[0].hash
        if local_features and frame.reason == "still":
            local = extract_features(frame.image)
            preview = fit_within(frame.image, PREVIEW_SIDE)
    with _timed(timings, "sexual_content"):
        nudity = detectors.nudity.predict(frame.image)
    with _timed(timings, "faces"):
        faces = detectors.faces.predict(frame.image)
    return FrameAnalysis(
        index=frame.index,
        time=frame.time,
        reason=frame.reason,
        pdq=pdq,
        variants=variants,
        nudity=nudity,
        faces=faces,
        local=local,
        preview=preview,
    )


def fit_within(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` scaled down (area averaging) so its longest side is at most ``side``."""
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
