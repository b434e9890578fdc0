"""Where analysis runs: in supervised worker processes (the default; each file under a time and
memory budget, see ``isolation``) or inline in this process (tests and debugging: no budget).
Both analyse a list of files and yield one ``MediaAnalysis`` per file, in input order."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from safeeye.config import Settings
from safeeye.errors import MediaError
from safeeye.media.sniff import SNIFF_BYTES, sniff
from safeeye.pipeline.analyze import MediaAnalysis, analyze_file, merge_parts
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.isolation import Outcome, Supervisor, Task
from safeeye.signals import registry
from safeeye.signals.hashes import ContentHashes, hash_file

# A video shorter than twice this is not worth splitting between workers.
MIN_SEGMENT_SECONDS = 8.0

Segment = tuple[float, float | None]


class Analyzer(Protocol):
    def analyze_all(
        self,
        paths: list[Path],
        hashes: list[ContentHashes] | None = None,
        *,
        local_features: bool = True,
    ) -> Iterator[MediaAnalysis]: ...


def split_video(duration: float | None, workers: int) -> list[Segment] | None:
    """How to split a video of ``duration`` seconds between ``workers`` processes, or None to
    analyse it whole."""
    if workers < 2 or duration is None or duration < 2 * MIN_SEGMENT_SECONDS:
        return None
    parts = min(workers, int(duration // MIN_SEGMENT_SECONDS))
    bounds = [duration * i / parts for i in range(parts)]
    return [(start, bounds[i + 1] if i + 1 < parts else None) for i, start in enumerate(bounds)]


def worker_count(settings: Settings) -> int:
    return settings.scan_workers or max(1, len(os.sched_getaffinity(0)))


class InlineAnalyzer:
    """Analyses in the calling process with the given (usually shared) detectors: no time or
    memory budget, so only for tests and debugging (``SAFEEYE_ANALYSIS_ISOLATION=inline``)."""

    def __init__(self, settings: Settings, detectors: Detectors) -> None:
        self.settings = settings
        self.detectors = detectors

    def analyze_all(
        self,
        paths: list[Path],
        hashes: list[ContentHashes] | None = None,
        *,
        local_features: bool = True,
    ) -> Iterator[MediaAnalysis]:
        settings = self.settings
        for i, path in enumerate(paths):
            yield analyze_file(
                path,
                self.detectors,
                settings.media_limits,
                settings.sampling,
                hashes=hashes[i] if hashes else None,
                local_features=local_features,
            )


class ProcessAnalyzer:
    """Analyses each file in supervised worker processes that stay up between calls (each
    loads the models once). A file that breaks its time or memory budget, or kills its worker,
    gets an error; every other file gets its result. Long videos are split into segments
    analysed in parallel; a failed segment leaves the file the error and the other frames."""

    def __init__(self, settings: Settings, workers: int | None = None) -> None:
        # The workers import the signal modules themselves; this process needs them too (it
        # joins split videos' parts, and summarises and stores the values).
        registry.load_modules(settings.signal_modules)
        self.settings = settings
        self.workers = workers or worker_count(settings)
        self._supervisor = Supervisor(settings, self.workers)

    def warm_up(self) -> None:
        """Start every worker and load its models now rather than on the first file."""
        self._supervisor.warm_up()

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the running workers (for monitoring)."""
        return self._supervisor.worker_pids

    def busy_paths(self) -> dict[int, Path]:
        """Which file each busy worker is analysing, by process id."""
        return {pid: tag[0].path for pid, tag in self._supervisor.busy_pids().items()}

    def prestart(self, files: int) -> None:
        """Start the workers ``files`` files will need, without waiting for their models."""
        self._supervisor.prestart(files)

    def close(self) -> None:
        self._supervisor.close()

    def analyze_all(
        self,
        paths: list[Path],
        hashes: list[ContentHashes] | None = None,
        *,
        local_features: bool = True,
    ) -> Iterator[MediaAnalysis]:
        """Analyses in input order, each file as soon as it and those before it are done."""
        files = [
            _File(p, hashes[i] if hashes else None, local_features) for i, p in enumerate(paths)
        ]
        try:
            for file in files:
                if self.workers > 1 and _looks_like_video(file.path):
                    # The headers are read in a worker too: hostile bytes never reach this process.
                    timeout = self.settings.analysis_timeout
                    self._supervisor.submit(
                        Task("probe", (str(file.path),), timeout, tag=(file, -1))
                    )
                else:
                    self._submit(file, [None])
            for file in files:
                while not file.complete:
                    self._take(self._supervisor.next_done())
                yield file.result()
        finally:
            if not all(file.complete for file in files):
                self._supervisor.close()  # abandoned midway: stale tasks must not linger

    def _submit(self, file: _File, segments: list[Segment | None]) -> None:
        settings = self.settings
        file.parts = [None] * len(segments)
        for index, segment in enumerate(segments):
            allowance = partial(
                _allowance,
                settings.analysis_seconds_per_video_second,
                settings.max_video_seconds,
                segment,
            )
            args = (str(file.path), file.hashes, segment, file.local_features)
            task = Task("analyze", args, settings.analysis_timeout, allowance, (file, index))
            self._supervisor.submit(task)

    def _take(self, outcome: Outcome) -> None:
        file, index = outcome.task.tag
        if outcome.task.call == "probe":
            if outcome.error is not None:
                file.parts = [file.failed(outcome.error)]
            else:
                self._submit(file, split_video(outcome.value, self.workers) or [None])
            return
        file.parts[index] = outcome.value if outcome.error is None else file.failed(outcome.error)


@dataclass(eq=False)
class _File:
    path: Path
    hashes: ContentHashes | None
    local_features: bool
    parts: list[MediaAnalysis | None] = field(default_factory=lambda: [None])

    @property
    def complete(self) -> bool:
        return all(part is not None for part in self.parts)

    def result(self) -> MediaAnalysis:
        parts = [part for part in self.parts if part is not None]
        return parts[0] if len(parts) == 1 else merge_parts(parts)

    def failed(self, error: MediaError) -> MediaAnalysis:
        """The analysis of a part that failed: its error, no frames."""
        if self.hashes is None:
            self.hashes = hash_file(self.path)
        return MediaAnalysis(hashes=self.hashes, error=error)


def _allowance(per_second: float, max_seconds: float, segment: Segment | None, info: Any) -> float:
    """Extra seconds for media that lasts (a video, an animation), once its duration is known:
    ``per_second`` for each second of it (of the segment) that is analysed."""
    media_type, duration = info
    if duration is None:
        return per_second * max_seconds if media_type == "video" else 0.0
    start, end = segment or (0.0, None)
    end = min(duration, end) if end is not None else duration
    return per_second * min(max(0.0, end - start), max_seconds)


def _looks_like_video(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return sniff(fh.read(SNIFF_BYTES)).kind == "video"
    except OSError:
        return False
