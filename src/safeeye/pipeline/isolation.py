"""Supervised analysis workers: each task runs in a process that can be killed, under a time
and a memory budget; a worker that breaks its budget or dies costs only the task it ran.

A worker is spawned (a fresh interpreter: forking a parent that runs model or server threads
can deadlock the child), loads the models once, and takes one task at a time over a pipe. The
parent knows which task each worker runs: it enforces the task's deadline and polls the
worker's resident memory from /proc every ``POLL_SECONDS``, and kills and replaces exactly
that worker on a breach. This is process supervision, not a job queue.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from safeeye.config import Settings
from safeeye.errors import ConfigError, MediaError, unexpected
from safeeye.media.video import probe_duration
from safeeye.pipeline.analyze import analyze_file
from safeeye.pipeline.detectors import Detectors

log = logging.getLogger(__name__)

#: How often a busy worker's deadline and memory are checked.
POLL_SECONDS = 0.1
#: How long a worker may take to start and load its models before the install counts as broken.
START_SECONDS = 300.0
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_MB = 1024 * 1024
#: A worker left with this much more memory than when idle hands the excess back after a task.
_TRIM_ABOVE = 64 * _MB


@dataclass
class Task:
    """One unit of work for a worker: the handler ``call`` with ``args``, ``seconds`` to do it.

    ``more_seconds`` turns what the worker reports once it has opened the media (its duration)
    into extra seconds for the deadline; ``tag`` is the caller's, returned with the outcome.
    """

    call: str
    args: tuple[Any, ...]
    seconds: float
    more_seconds: Callable[[Any], float] | None = None
    tag: Any = None


@dataclass
class Outcome:
    """What became of a task: its ``value``, or the ``error`` that cost it."""

    task: Task
    value: Any = None
    error: MediaError | None = None


class Supervisor:
    """Up to ``workers`` worker processes, started when there is work for them and kept
    between calls; ``submit`` tasks, then take each ``next_done`` as it completes."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = max(1, workers)
        self.memory_budget = settings.analysis_max_memory_mb * _MB
        # Workers read hostile bytes: they get no key and no database password.
        self._worker_settings = settings.model_copy(
            update={"master_key": None, "database_url": None}
        )
        self._context = multiprocessing.get_context("spawn")
        self._running: list[_Worker] = []
        self._pending: deque[Task] = deque()
        self._done: deque[Outcome] = deque()

    @property
    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (for monitoring and tests)."""
        return [w.pid for w in self._running]

    def busy_pids(self) -> dict[int, Any]:
        """Each busy worker's process id and the tag of the task it runs."""
        return {w.pid: w.task.tag for w in self._running if w.task is not None}

    def warm_up(self) -> None:
        """Start every worker and wait until each has loaded its models."""
        while len(self._running) < self.workers:
            self._running.append(_Worker(self._context, self._worker_settings))
        while not all(w.ready for w in self._running):
            self._step()

    def prestart(self, tasks: int) -> None:
        """Start the workers ``tasks`` tasks will need now, without waiting for them: their
        models load while this process prepares the work."""
        while len(self._running) < min(self.workers, tasks):
            self._running.append(_Worker(self._context, self._worker_settings))

    def submit(self, task: Task) -> None:
        self._pending.append(task)

    def next_done(self) -> Outcome:
        """The next completed task (in completion order); blocks until there is one."""
        while not self._done:
            if not self._pending and not any(w.task for w in self._running):
                raise RuntimeError("next_done() with no task submitted")
            self._step()
        return self._done.popleft()

    def close(self) -> None:
        """Stop every worker (a busy one is killed) and forget unfinished tasks."""
        self._pending.clear()
        self._done.clear()
        for worker in self._running:
            worker.stop()
        self._running = []

    # -- one round of supervision ----------------------------------------------------------

    def _step(self) -> None:
        self._start_workers()
        self._assign()
        by_handle: dict[Any, _Worker] = {}
        for worker in self._running:
            by_handle[worker.conn] = by_handle[worker.process.sentinel] = worker
        ready = wait(list(by_handle), timeout=POLL_SECONDS)
        for worker in dict.fromkeys(by_handle[handle] for handle in ready):
            self._read(worker)
        self._enforce()
        self._assign()  # a worker that just finished starts its next task at once

    def _start_workers(self) -> None:
        self.prestart(len(self._pending) + sum(1 for w in self._running if w.task))

    def _assign(self) -> None:
        for worker in list(self._running):
            if not self._pending:
                return
            if not worker.ready or worker.task is not None:
                continue
            if worker.memory() > worker.baseline + self.memory_budget // 2:
                # Memory the last task left behind must not be blamed on the next: recycle.
                self._retire(worker)
                continue
            task = self._pending.popleft()
            try:
                worker.assign(task)
            except OSError:  # it died just now, before taking the task: not the task's fault
                worker.task = None
                self._pending.appendleft(task)
                self._retire(worker)

    def _read(self, worker: _Worker) -> None:
        """Take every message the worker has sent; a closed pipe means it died."""
        try:
            while worker.conn.poll():
                kind, *payload = worker.conn.recv()
                if kind == "ready":
                    worker.ready = True
                    worker.baseline = worker.memory()
                elif kind == "info" and worker.task is not None:
                    worker.extend(payload[0])
                elif kind == "done":
                    self._finish(worker, Outcome(worker.task, value=payload[0]))  # type: ignore[arg-type]
                elif kind == "failed":
                    code, message = payload
                    error = MediaError(message, code=code)
                    self._finish(worker, Outcome(worker.task, error=error))  # type: ignore[arg-type]
        except (EOFError, OSError):
            pass
        if not worker.process.is_alive() and worker in self._running:
            self._died(worker)

    def _enforce(self) -> None:
        now = time.monotonic()
        for worker in list(self._running):
            if worker.task is None:
                if not worker.ready and now - worker.started > START_SECONDS:
                    self._retire(worker)
                    raise ConfigError(
                        f"an analysis worker did not load its models in {START_SECONDS:.0f} s"
                    )
                continue
            if now > worker.deadline:
                seconds = worker.deadline - worker.assigned
                self._fail(
                    worker,
                    "timeout",
                    f"analysis took longer than its budget of {seconds:,.0f} s and was stopped "
                    "(SAFEEYE_ANALYSIS_TIMEOUT, plus SAFEEYE_ANALYSIS_SECONDS_PER_VIDEO_SECOND "
                    "for each second of video)",
                )
            elif worker.memory() > worker.baseline + self.memory_budget:
                self._fail(
                    worker,
                    "too_much_memory",
                    f"analysis needed more than {self.memory_budget // _MB:,} MB of memory and "
                    "was stopped (SAFEEYE_ANALYSIS_MAX_MEMORY_MB sets the budget of one file)",
                )

    def _died(self, worker: _Worker) -> None:
        self._running.remove(worker)
        worker.stop()
        code = worker.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if worker.task is None:
            if not worker.ready:
                raise ConfigError(f"an analysis worker failed to start ({how}); see its output")
            return
        log.warning("an analysis worker died (%s) during its task; replacing it", how)
        self._done.append(
            Outcome(
                worker.task,
                error=MediaError(
                    f"the analysis worker died ({how}) on this file; the decoder or a model "
                    "crashed on it",
                    code="crashed",
                ),
            )
        )

    def _fail(self, worker: _Worker, code: str, message: str) -> None:
        log.warning("an analysis worker broke its budget (%s); killing it", code)
        task = worker.task
        self._retire(worker)
        self._done.append(Outcome(task, error=MediaError(message, code=code)))  # type: ignore[arg-type]

    def _finish(self, worker: _Worker, outcome: Outcome) -> None:
        worker.task = None
        self._done.append(outcome)

    def _retire(self, worker: _Worker) -> None:
        self._running.remove(worker)
        worker.stop()


class _Worker:
    """The parent's handle on one worker process and the task it runs."""

    def __init__(self, context: Any, settings: Settings) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=serve, args=(child, settings), name="safeeye-analysis", daemon=True
        )
        self.process.start()
        child.close()
        self.started = time.monotonic()
        self.ready = False
        self.baseline = 0
        self.task: Task | None = None
        self.assigned = self.deadline = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid or 0

    def assign(self, task: Task) -> None:
        self.task = task
        self.assigned = time.monotonic()
        self.deadline = self.assigned + task.seconds
        self.conn.send((task.call, task.args))

    def extend(self, info: Any) -> None:
        """Move the deadline once the worker says what it opened (e.g. a video's duration)."""
        if self.task is not None and self.task.more_seconds is not None:
            self.deadline = self.assigned + self.task.seconds + self.task.more_seconds(info)

    def memory(self) -> int:
        """Resident memory in bytes (0 once the process is gone)."""
        return _resident(self.pid)

    def stop(self) -> None:
        """Ask an idle worker to exit, kill a busy or still-loading one; wait for it either way."""
        if self.ready and self.task is None and self.process.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send(None)
            self.process.join(timeout=2)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=10)
        self.conn.close()


def _resident(pid: int | str) -> int:
    """A process's resident memory in bytes, from /proc (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * _PAGE_BYTES
    except (OSError, ValueError, IndexError):
        return 0


# -- inside the worker process ---------------------------------------------------------------


def serve(conn: Connection, settings: Settings) -> None:
    """A worker's life: load the models, then run one task at a time until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _exit_with_parent()
    # One thread per worker: the other workers keep the other cores busy, and OpenCV's own
    # thread pool (ORB, resizing) would otherwise fight them for the cores.
    cv2.setNumThreads(1)
    detectors = Detectors.from_settings(settings, threads=1)
    detectors.load()
    _warm(detectors)
    gc.collect()
    _trim()
    idle = _resident("self")
    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        call, args = message
        try:
            value = _HANDLERS[call](_Context(settings, detectors, conn), *args)
            conn.send(("done", value))
        except Exception as exc:
            error = unexpected(exc, "analysis", MediaError)
            conn.send(("failed", error.code, str(error)))
        if _resident("self") > idle + _TRIM_ABOVE:
            _trim()  # give a big file's memory back, so the next task starts from a clean base


@dataclass
class _Context:
    settings: Settings
    detectors: Detectors
    conn: Connection

    def report(self, info: Any) -> None:
        self.conn.send(("info", info))


def _analyze(
    context: _Context,
    path: str,
    hashes: Any,
    segment: tuple[float, float | None] | None,
    local_features: bool,
) -> Any:
    settings = context.settings
    return analyze_file(
        Path(path),
        context.detectors,
        settings.media_limits,
        settings.sampling,
        hashes=hashes,
        segment=segment,
        decode_threads=1,  # the other workers keep the other cores busy
        local_features=local_features,
        on_info=lambda info: context.report((info.media_type, info.duration)),
    )


def _probe(context: _Context, path: str) -> float | None:
    return probe_duration(Path(path))


_HANDLERS: dict[str, Callable[..., Any]] = {"analyze": _analyze, "probe": _probe}


def _warm(detectors: Detectors) -> None:
    """One tiny inference per model, so the memory baseline includes the runtimes' buffers."""
    blank = np.full((64, 64, 3), 127, np.uint8)
    detectors.nudity.predict(blank)
    detectors.faces.predict(blank)


def _trim() -> None:
    """Hand memory the allocator keeps free back to the system (glibc)."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _exit_with_parent() -> None:
    """End this worker if its parent dies, even in the middle of a task."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
