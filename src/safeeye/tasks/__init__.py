"""The pipeline as tasks over rows: each step is a function of row ids, run by a runner.

A task claims each of its rows with a lease (``leases.py``), does one step, and commits the next
state; it is idempotent (a second delivery finds the row done and does nothing), is retried
with backoff when something outside the media fails, and after its last try leaves the row in a
recorded failed state. The same task functions run in-process (``runner.InProcessRunner``, the
embedded default) or in Celery workers (``celery_engine``); the database says what is to do, a
queue only says "look at row N".
"""

from __future__ import annotations

import importlib
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from safeeye.app import SafeEye
    from safeeye.ingest.fetcher import Fetcher
    from safeeye.pipeline.pool import Analyzer
    from safeeye.work import Actor

Row = TypeVar("Row")
#: Results of a batch: row id -> what the step produced for it (None: not this worker's).
Results = dict[int, Any]
TaskFunction = Callable[["TaskContext", list[int]], Results]


class Runner(Protocol):
    """Where tasks go: the in-process runner, or Celery."""

    def submit(self, task: str, row_id: int, *, delay: float = 0.0) -> None: ...


@dataclass(frozen=True)
class TaskSpec:
    """A task: its name (the queue's word for it), its function over a batch of row ids, and
    how often and how patiently it is tried."""

    name: str
    run: TaskFunction
    max_attempts: int = 5
    #: Rows a runner may hand over at once (the analysis of many files runs in parallel).
    batch: int = 1


TASKS: dict[str, TaskSpec] = {}


def task(
    name: str, *, max_attempts: int = 5, batch: int = 1
) -> Callable[[TaskFunction], TaskFunction]:
    """Register a task function under ``name``."""

    def register(function: TaskFunction) -> TaskFunction:
        TASKS[name] = TaskSpec(name, function, max_attempts, batch)
        return function

    return register


def worker_token() -> str:
    """A name for this process that no other process shares (host, pid, random)."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{secrets.token_hex(4)}"


class TaskContext:
    """What tasks share within one process: the app, the runner for follow-up tasks, who acts,
    this process's lease owner name, and the costly parts built once (analysis workers, the
    fetcher)."""

    def __init__(self, app: SafeEye, runner: Runner, actor: Actor | None = None) -> None:
        from safeeye.work import Actor

        self.app = app
        self.runner = runner
        self.actor = actor or Actor.system("worker")
        self.owner = worker_token()
        self.lease = timedelta(seconds=app.settings.task_lease_seconds)
        #: Files this process stored and still holds unchanged: media id -> (path, size, mtime).
        self._local: dict[int, tuple[Path, int, int]] = {}

    def claim(self, session: Session, model: type[Row], row_id: int, ready: Any) -> Row | None:
        """Take row ``row_id`` for this process if it is ``ready`` and free (``leases.claim``)."""
        from safeeye.tasks.leases import claim

        return claim(session, model, row_id, self.owner, self.lease, ready=ready)

    def heartbeat(self, model: type[Any], row_ids: list[int]) -> Any:
        """A context manager that renews this process's leases on ``row_ids`` meanwhile."""
        from safeeye.tasks.leases import Heartbeat

        return Heartbeat(self.app.db, model, row_ids, self.owner, self.lease)

    def offer_local_copy(self, media_id: int, path: Path) -> None:
        """Say that ``path`` holds the bytes just stored as media ``media_id``: a scan in this
        process reads them there instead of decrypting the blob again (the CLI's own files)."""
        stat = path.stat()
        self._local[media_id] = (path, stat.st_size, stat.st_mtime_ns)

    def local_copy(self, media_id: int, size: int) -> Path | None:
        """The offered file for ``media_id`` if it is still the same size and age, else None."""
        offered = self._local.pop(media_id, None)
        if offered is None:
            return None
        path, known_size, mtime = offered
        try:
            stat = path.stat()
        except OSError:
            return None
        same = stat.st_size == known_size == size and stat.st_mtime_ns == mtime
        return path if same else None

    @cached_property
    def analyzer(self) -> Analyzer:
        from safeeye.pipeline.pool import InlineAnalyzer, ProcessAnalyzer

        settings = self.app.settings
        if settings.analysis_isolation == "inline":
            return InlineAnalyzer(settings, self.app.detectors)
        return ProcessAnalyzer(settings, settings.scan_workers or None)

    @cached_property
    def fetcher(self) -> Fetcher:
        from safeeye.ingest.fetcher import Fetcher
        from safeeye.ingest.policy import fetch_policy
        from safeeye.ingest.spacing import SharedSpacing

        return Fetcher(fetch_policy(self.app.settings), spacing=SharedSpacing(self.app.db))

    def warm_up(self) -> None:
        """Load the models now (in every analysis worker process, or in this one)."""
        analyzer = self.analyzer
        if hasattr(analyzer, "warm_up"):
            analyzer.warm_up()
        else:
            self.app.detectors.load()

    def close(self) -> None:
        """Stop the analysis workers and close the fetcher, if they were started."""
        analyzer = self.__dict__.pop("analyzer", None)
        if analyzer is not None and hasattr(analyzer, "close"):
            analyzer.close()
        fetcher = self.__dict__.pop("fetcher", None)
        if fetcher is not None:
            fetcher.close()


#: The modules that define tasks (imported by name: they import this registry).
TASK_MODULES = (
    "safeeye.takedown.dispatch",
    "safeeye.takedown.follow_up",
    "safeeye.tasks.pipeline",
    "safeeye.tasks.discovery",
    "safeeye.tasks.crawling",
    "safeeye.ingest.monitor",
)


def load_tasks() -> dict[str, TaskSpec]:
    """Every task, registered by importing the modules that define them."""
    for module in TASK_MODULES:
        importlib.import_module(module)
    return TASKS
