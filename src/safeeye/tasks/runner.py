"""The in-process runner: the embedded default, for the CLI and ``serve``.

Tasks submitted to it wait in memory until ``drain`` runs them, in this process, through the
same task functions a Celery worker runs. A task of a kind that takes batches (scanning) gets
every due row at once, so the analysis of many files runs in parallel worker processes.
Nothing is lost if this process dies: the rows say what is left to do, and the scheduler's
sweep (or the next command) submits it again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from safeeye.errors import unexpected
from safeeye.tasks import Results, TaskContext, load_tasks

if TYPE_CHECKING:
    from safeeye.app import SafeEye
    from safeeye.work import Actor

log = logging.getLogger(__name__)


class InProcessRunner:
    """Runs tasks in the calling thread when ``drain`` is called."""

    def __init__(self, app: SafeEye, actor: Actor | None = None) -> None:
        self.tasks = load_tasks()
        self.context = TaskContext(app, self, actor)
        self._due: list[tuple[float, int, str, int]] = []  # (when, order, task, row id)
        self._order = itertools.count()

    def submit(self, task: str, row_id: int, *, delay: float = 0.0) -> None:
        if task not in self.tasks:
            raise KeyError(f"no task named {task!r}")
        heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), task, row_id))

    @property
    def pending(self) -> int:
        return len(self._due)

    def drain(
        self,
        *,
        deadline: float | None = None,
        keep_going: Callable[[], bool] = lambda: True,
    ) -> dict[tuple[str, int], Any]:
        """Run every submitted task (and the tasks they submit) until none is left, the
        monotonic ``deadline`` passes or ``keep_going()`` says stop; returns each row's
        result by (task, row id). Retries wait for their backoff within the deadline."""
        results: dict[tuple[str, int], Any] = {}
        while self._due and keep_going():
            when = self._due[0][0]
            now = time.monotonic()
            if when > now:
                if deadline is not None and when > deadline:
                    break
                time.sleep(when - now)
                continue
            if deadline is not None and now > deadline:
                break
            name = self._due[0][2]
            batch = self._take(name, now)
            for row_id, result in self._run(name, batch).items():
                results[(name, row_id)] = result
        return results

    def _take(self, name: str, now: float) -> list[int]:
        """Up to the task's batch size of due rows of task ``name`` (each row once)."""
        limit = self.tasks[name].batch
        taken: list[int] = []
        keep: list[tuple[float, int, str, int]] = []
        while self._due and len(taken) < limit:
            item = heapq.heappop(self._due)
            if item[0] > now:
                keep.append(item)
                break
            if item[2] == name and item[3] not in taken:
                taken.append(item[3])
            elif item[2] != name:
                keep.append(item)
        for item in keep:
            heapq.heappush(self._due, item)
        return taken

    def _run(self, name: str, row_ids: list[int]) -> Results:
        try:
            return self.tasks[name].run(self.context, row_ids)
        except Exception as exc:  # a bug in a task: the rows stay leased and are swept later
            unexpected(exc, f"task {name}")
            return {}

    def close(self) -> None:
        self.context.close()
