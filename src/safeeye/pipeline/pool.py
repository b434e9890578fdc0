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

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def analyze_all(self, paths: list[Path]) -> Iterator[MediaAnalysis]:
        pool = self._executor()
        futures: list[Future[MediaAnalysis]] = [
            pool.submit(_analyze_in_worker, str(p)) for p in paths
        ]
        timeout = self.settings.media_limits.decode_timeout_seconds
        for i, path in enumerate(paths):
            try:
                yield futures[i].result(timeout=timeout)
            except TimeoutError:
                yield _failed(path, "timeout", "analysis took too long and was stopped")
                self._restart(paths, futures, i)
            except BrokenProcessPool:
                yield _failed(path, "crashed", "the decoder crashed on this file")
                self._restart(paths, futures, i)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, initializer=_init_worker, initargs=(self.settings,)
            )
        return self._pool

    def _restart(
        self, paths: list[Path], futures: list[Future[MediaAnalysis]], failed: int
    ) -> None:
        """Kill the broken pool and resubmit every unfinished input after ``failed``."""
        if self._pool is not None:
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.kill()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        pool = self._executor()
        for i in range(failed + 1, len(paths)):
            if _needs_retry(futures[i]):
                futures[i] = pool.submit(_analyze_in_worker, str(paths[i]))


def _ready(_: int) -> bool:
    return _worker_detectors is not None


def _needs_retry(future: Future[MediaAnalysis]) -> bool:
    if not future.done() or future.cancelled():
        return True
    return future.exception() is not None


def _failed(path: Path, code: str, message: str) -> MediaAnalysis:
    return MediaAnalysis(hashes=hash_file(path), error=MediaError(message, code=code))
