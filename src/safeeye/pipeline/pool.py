"""Where analysis runs: inline in this process, or in a pool of worker processes (one per core)
that each load the models once. A worker that crashes or hangs costs one input, not the scan."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from safeeye.config import Settings
from safeeye.errors import MediaError
from safeeye.media.video import probe_duration
from safeeye.pipeline.analyze import MediaAnalysis, analyze_file, merge_parts
from safeeye.pipeline.detectors import Detectors
from safeeye.signals.hashes import ContentHashes, hash_file

# A video shorter than twice this is not worth splitting between workers.
MIN_SEGMENT_SECONDS = 8.0

_worker_detectors: Detectors | None = None
_worker_settings: Settings | None = None


def _init_worker(settings: Settings) -> None:
    global _worker_detectors, _worker_settings
    import cv2

    # One thread per worker: the pool already keeps every core busy, and OpenCV's own thread
    # pool (ORB, resizing) would otherwise fight the other workers for the cores.
    cv2.setNumThreads(1)
    _worker_settings = settings
    _worker_detectors = Detectors.from_settings(settings, threads=1)
    _worker_detectors.load()


def _analyze_in_worker(
    path: str,
    hashes: ContentHashes | None,
    segment: tuple[float, float | None] | None,
    local_features: bool,
) -> MediaAnalysis:
    assert _worker_detectors is not None and _worker_settings is not None
    settings = _worker_settings
    return analyze_file(
        Path(path),
        _worker_detectors,
        settings.media_limits,
        settings.sampling,
        hashes=hashes,
        segment=segment,
        decode_threads=1,  # the other workers keep the other cores busy
        local_features=local_features,
    )


def video_segments(path: Path, workers: int) -> list[tuple[float, float | None]] | None:
    """How to split a long video between ``workers`` processes, or None to analyse it whole."""
    if workers < 2:
        return None
    duration = probe_duration(path)
    if duration is None or duration < 2 * MIN_SEGMENT_SECONDS:
        return None
    parts = min(workers, int(duration // MIN_SEGMENT_SECONDS))
    bounds = [duration * i / parts for i in range(parts)]
    return [(start, bounds[i + 1] if i + 1 < parts else None) for i, start in enumerate(bounds)]


def worker_count(settings: Settings) -> int:
    return settings.scan_workers or max(1, len(os.sched_getaffinity(0)))


class InlineAnalyzer:
    """Analyses in the calling process with the given (usually shared) detectors."""

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


class PoolAnalyzer:
    """Analyses many files at once in worker processes that stay up between calls (each loads
    the models once); results come back in input order."""

    def __init__(self, settings: Settings, workers: int | None = None) -> None:
        self.settings = settings
        self.workers = workers or worker_count(settings)
        self._pool: ProcessPoolExecutor | None = None

    def warm_up(self) -> None:
        """Start every worker and load its models now rather than on the first file."""
        pool = self._executor()
        list(pool.map(_ready, range(self.workers)))

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the running workers (for monitoring)."""
        if self._pool is None:
            return []
        return [p.pid for p in getattr(self._pool, "_processes", {}).values() if p.pid]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def analyze_all(
        self,
        paths: list[Path],
        hashes: list[ContentHashes] | None = None,
        *,
        local_features: bool = True,
    ) -> Iterator[MediaAnalysis]:
        """Analyses in input order; long videos are split into segments analysed in parallel."""
        jobs = [
            _Job(
                path,
                hashes[i] if hashes else None,
                video_segments(path, self.workers),
                local_features,
            )
            for i, path in enumerate(paths)
        ]
        for job in jobs:
            self._submit(job)
        timeout = self.settings.media_limits.decode_timeout_seconds
        for i, job in enumerate(jobs):
            try:
                parts = [future.result(timeout=timeout) for future in job.futures]
                yield parts[0] if len(parts) == 1 else merge_parts(parts)
            except TimeoutError:
                yield _failed(job, "timeout", "analysis took too long and was stopped")
                self._restart(jobs[i + 1 :])
            except BrokenProcessPool:
                yield _failed(job, "crashed", "the decoder crashed on this file")
                self._restart(jobs[i + 1 :])

    def _submit(self, job: _Job) -> None:
        pool = self._executor()
        segments = job.segments or [None]
        job.futures = [
            pool.submit(_analyze_in_worker, str(job.path), job.hashes, segment, job.local_features)
            for segment in segments
        ]

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Workers start from a fresh interpreter: forking a parent that already runs model
            # threads (onnxruntime, a web server) can deadlock the child.
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.settings,),
            )
        return self._pool

    def _restart(self, pending: list[_Job]) -> None:
        """Kill the broken pool and resubmit the unfinished jobs to a fresh one."""
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for job in pending:
            if any(_needs_retry(f) for f in job.futures):
                self._submit(job)


@dataclass
class _Job:
    path: Path
    hashes: ContentHashes | None
    segments: list[tuple[float, float | None]] | None
    local_features: bool = True
    futures: list[Future[MediaAnalysis]] = field(default_factory=list)


def _ready(_: int) -> bool:
    return _worker_detectors is not None


def _needs_retry(future: Future[MediaAnalysis]) -> bool:
    if not future.done() or future.cancelled():
        return True
    return future.exception() is not None


def _failed(job: _Job, code: str, message: str) -> MediaAnalysis:
    hashes = job.hashes or hash_file(job.path)
    return MediaAnalysis(hashes=hashes, error=MediaError(message, code=code))
