"""Where analysis runs: inline in this process, or in a pool of worker processes (one per core)
that each load the models once. A worker that crashes or hangs costs one input, not the scan."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from safeeye.config import Settings
from safeeye.errors import MediaError
from safeeye.pipeline.analyze import MediaAnalysis, analyze_file
from safeeye.pipeline.detectors import Detectors
from safeeye.signals.hashes import hash_file

_worker_detectors: Detectors | None = None
_worker_settings: Settings | None = None


def _init_worker(settings: Settings) -> None:
    global _worker_detectors, _worker_settings
    _worker_settings = settings
    _worker_detectors = Detectors.from_settings(settings, threads=1)
    _worker_detectors.load()


def _analyze_in_worker(path: str) -> MediaAnalysis:
    assert _worker_detectors is not None and _worker_settings is not None
    return analyze_file(
        Path(path), _worker_detectors, _worker_settings.media_limits, _worker_settings.sampling
    )


def worker_count(settings: Settings) -> int:
    return settings.scan_workers or max(1, len(os.sched_getaffinity(0)))


class InlineAnalyzer:
    """Analyses in the calling process with the given (usually shared) detectors."""

    def __init__(self, settings: Settings, detectors: Detectors) -> None:
        self.settings = settings
        self.detectors = detectors

    def analyze_all(self, paths: list[Path]) -> Iterator[MediaAnalysis]:
        for path in paths:
            yield analyze_file(
                path, self.detectors, self.settings.media_limits, self.settings.sampling
            )


class PoolAnalyzer:
    """Analyses many files at once in worker processes; results come back in input order."""

    def __init__(self, settings: Settings, workers: int | None = None) -> None:
        self.settings = settings
        self.workers = workers or worker_count(settings)

    def analyze_all(self, paths: list[Path]) -> Iterator[MediaAnalysis]:
        executor = self._executor()
        try:
            futures: list[Future[MediaAnalysis]] = [
                executor.submit(_analyze_in_worker, str(p)) for p in paths
            ]
            timeout = self.settings.media_limits.decode_timeout_seconds
            for path, future in zip(paths, futures, strict=True):
                try:
                    yield future.result(timeout=timeout)
                except TimeoutError:
                    yield _failed(path, "timeout", "analysis took too long and was stopped")
                    executor = self._restart(executor, paths, futures, path)
                except BrokenProcessPool:
                    yield _failed(path, "crashed", "the decoder crashed on this file")
                    executor = self._restart(executor, paths, futures, path)
        finally:
            executor.shutdown(wait=False, cancel_futures=True)

    def _executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers, initializer=_init_worker, initargs=(self.settings,)
        )

    def _restart(
        self,
        executor: ProcessPoolExecutor,
        paths: list[Path],
        futures: list[Future[MediaAnalysis]],
        failed: Path,
    ) -> ProcessPoolExecutor:
        """Kill the broken pool and resubmit every input after ``failed`` to a fresh one."""
        for process in list(getattr(executor, "_processes", {}).values()):
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        fresh = self._executor()
        start = paths.index(failed) + 1
        for i in range(start, len(paths)):
            if _needs_retry(futures[i]):
                futures[i] = fresh.submit(_analyze_in_worker, str(paths[i]))
        return fresh


def _needs_retry(future: Future[MediaAnalysis]) -> bool:
    if not future.done() or future.cancelled():
        return True
    return future.exception() is not None


def _failed(path: Path, code: str, message: str) -> MediaAnalysis:
    return MediaAnalysis(hashes=hash_file(path), error=MediaError(message, code=code))
