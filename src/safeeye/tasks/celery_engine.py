"""Celery, the second engine: the same task functions, queued on a broker (Redis by default,
RabbitMQ too) and run by ``safeeye worker`` processes on any number of machines.

A message only says "task T on row N"; the row says what is to do. Messages are acknowledged
after the task ran (``acks_late``), so a worker killed mid-task leaves its message to another
worker (RabbitMQ at once, Redis after the visibility timeout) and its row's lease runs out so
the scheduler's sweep hands the row on as well; claiming makes a second delivery do nothing.
Each worker process runs one task at a time (the ``solo`` pool: the analysis of a file runs in
the worker's own supervised child process); run more processes for more throughput.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from celery import Celery

from safeeye.config import Settings
from safeeye.tasks import TASKS, TaskContext, load_tasks, worker_token

if TYPE_CHECKING:
    from safeeye.app import SafeEye
    from safeeye.work import Actor

log = logging.getLogger(__name__)
PREFIX = "safeeye."

#: This worker process's task context (one per process, built by ``run_worker``).
_context: TaskContext | None = None


def make_celery(settings: Settings) -> Celery:
    """A Celery app on ``settings.broker_url`` with every safeeye task registered."""
    celery = Celery("safeeye", broker=settings.broker_url, set_as_current=False)
    celery.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.task_lease_seconds * 3},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_default_queue=settings.queue,
    )
    for name in load_tasks():
        celery.task(name=PREFIX + name)(_runner_for(name))
    return celery


def _runner_for(name: str):  # type: ignore[no-untyped-def]
    def run(row_id: int) -> None:
        if _context is None:
            raise RuntimeError("this process is not a safeeye worker (run `safeeye worker`)")
        TASKS[name].run(_context, [int(row_id)])

    run.__name__ = name
    run.__qualname__ = name
    return run


class CeleryRunner:
    """Submits tasks to the broker; any worker may take them."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def submit(self, task: str, row_id: int, *, delay: float = 0.0) -> None:
        self.celery.send_task(PREFIX + task, args=[row_id], countdown=delay or None)


def run_worker(
    app: SafeEye,
    actor: Actor,
    *,
    schedule: bool = True,
    loglevel: str = "INFO",
    stop: threading.Event | None = None,
) -> None:
    """Run this process as a Celery worker until it is stopped; with ``schedule``, it also
    offers to be the scheduler (exactly one process holds that job at a time)."""
    global _context
    from safeeye.tasks.scheduler import Scheduler

    celery = make_celery(app.settings)
    runner = CeleryRunner(celery)
    _context = TaskContext(app, runner, actor)
    scheduler_stop = stop or threading.Event()
    scheduler = None
    if schedule:
        scheduler = Scheduler(app, runner)
        threading.Thread(
            target=scheduler.run, args=(scheduler_stop,), name="scheduler", daemon=True
        ).start()
    worker = celery.Worker(
        queues=[app.settings.queue],
        pool="solo",
        concurrency=1,
        loglevel=loglevel,
        hostname=f"safeeye@{worker_token()}",
        without_mingle=True,
        without_gossip=True,
        quiet=True,
    )
    try:
        worker.start()
    finally:
        scheduler_stop.set()
        if scheduler is not None:
            scheduler.release()
        _context.close()
        _context = None
