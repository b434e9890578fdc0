"""The scheduler: decides what is due and hands it to the runner, in exactly one place.

Every worker process offers to schedule; a named lease in the database lets exactly one do it
at a time (another takes over when the holder stops renewing). Each tick submits the sources
that are due and sweeps the task rows nobody holds (media waiting for a scan, URLs waiting to
be fetched, crawl pages waiting to be read) so that a lost message or a dead worker delays work
but never loses it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from safeeye.db.models import Batch, CrawlPage, Media, NamedLease, Notice, Source, TaskRow, UrlState
from safeeye.db.states import BatchStatus, MediaStatus, PageStatus
from safeeye.db.types import utcnow
from safeeye.tasks import Runner, worker_token

if TYPE_CHECKING:
    from safeeye.app import SafeEye

log = logging.getLogger(__name__)
NAME = "scheduler"
SWEEP_LIMIT = 500
#: Tasks whose rows carry no queue mark: the scheduler remembers what it handed over.
REMEMBERED = frozenset({"visit_source", "compose_notices"})
#: The takedown tasks: what a process that discovers by itself (``safeeye discover``) still
#: needs a scheduler for.
TAKEDOWN_TASKS = frozenset({"compose_notices", "dispatch_batch", "recheck_notice"})


class Scheduler:
    """Submits due sources and stranded task rows; ``tick`` is one round."""

    def __init__(
        self,
        app: SafeEye,
        runner: Runner,
        *,
        interval: float = 2.0,
        lease: timedelta | None = None,
        tasks: frozenset[str] | None = None,
    ) -> None:
        self.app = app
        self.runner = runner
        self.interval = interval
        #: Only these tasks are scheduled (None: all), under a lease of their own.
        self.tasks = tasks
        self.name = NAME if tasks is None else f"{NAME}:{','.join(sorted(tasks))}"[:64]
        #: How soon another process takes over when this one stops (or dies).
        self.lease = lease or timedelta(seconds=min(30.0, app.settings.task_lease_seconds))
        self.owner = worker_token()
        #: (task, row) handed over lately -> when, for the tasks in ``REMEMBERED``.
        self._submitted: dict[tuple[str, int], float] = {}
        #: A row queued this long ago and still untouched was lost (or waits behind a long
        #: queue: then a second message costs one refused claim).
        self._grace = 4 * app.settings.task_lease_seconds

    def hold(self) -> bool:
        """Take or keep the scheduler's lease; False while another process holds it."""
        now = utcnow()
        with self.app.db.session() as session:
            taken = session.execute(
                update(NamedLease)
                .where(
                    NamedLease.name == self.name,
                    or_(
                        NamedLease.owner == self.owner,
                        NamedLease.until.is_(None),
                        NamedLease.until < now,
                    ),
                )
                .values(owner=self.owner, until=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:
                return True
            if session.get(NamedLease, self.name) is not None:
                return False
        try:
            with self.app.db.session() as session:
                session.add(NamedLease(name=self.name, owner=self.owner, until=now + self.lease))
            return True
        except DBIntegrityError:  # another process created it first
            return False

    def release(self) -> None:
        """Give the job up at once (a clean stop), so another process takes over quickly."""
        try:
            with self.app.db.session() as session:
                session.execute(
                    update(NamedLease)
                    .where(NamedLease.name == self.name, NamedLease.owner == self.owner)
                    .values(owner=None, until=None)
                    .execution_options(synchronize_session=False)
                )
        except SQLAlchemyError:
            pass

    def tick(self) -> dict[str, int]:
        """One round: what was submitted, by task; nothing when another process schedules."""
        if not self.hold():
            return {}
        now = utcnow()
        with self.app.db.session(read_only=True) as session:
            sources = session.execute(
                select(Source.id)
                .where(
                    Source.enabled.is_(True),
                    Source.next_due_at <= now,
                    or_(Source.lease_until.is_(None), Source.lease_until < now),
                )
                .order_by(Source.next_due_at, Source.id)
                .limit(SWEEP_LIMIT)
            ).scalars()
            due = {"visit_source": list(sources)}
            lost = now - timedelta(seconds=self._grace)
            due["scan_media"] = list(
                session.execute(
                    select(Media.id)
                    .where(
                        Media.status == MediaStatus.PENDING,
                        Media.blob_address.is_not(None),
                        _stranded(Media, now, lost),
                    )
                    .order_by(Media.id)
                    .limit(SWEEP_LIMIT)
                ).scalars()
            )
            due["fetch_media"] = list(
                session.execute(
                    select(UrlState.id)
                    .where(UrlState.status == "pending", _stranded(UrlState, now, lost))
                    .order_by(UrlState.id)
                    .limit(SWEEP_LIMIT)
                ).scalars()
            )
            due["fetch_page"] = list(
                session.execute(
                    select(CrawlPage.id)
                    .where(CrawlPage.status == PageStatus.PENDING, _stranded(CrawlPage, now, lost))
                    .order_by(CrawlPage.id)
                    .limit(SWEEP_LIMIT)
                ).scalars()
            )
            due.update(self._takedown(session, now, lost))
        if self.tasks is not None:
            due = {task: ids if task in self.tasks else [] for task, ids in due.items()}
        with self.app.db.session() as session:  # handed to the queue again now
            swept = (
                (Media, "scan_media"),
                (UrlState, "fetch_media"),
                (CrawlPage, "fetch_page"),
                (Batch, "dispatch_batch"),
                (Notice, "recheck_notice"),
            )
            for model, task in swept:
                if due[task]:
                    session.execute(
                        update(model)
                        .where(model.id.in_(due[task]))
                        .values(queued_at=now)
                        .execution_options(synchronize_session=False)
                    )
        return {task: self._submit(task, ids) for task, ids in due.items() if ids}

    def _takedown(self, session: Session, now: datetime, lost: datetime) -> dict[str, list[int]]:
        """Takedown work that is due: confirmed matches still needing notices (new ones and
        re-uploads), approved batches not sent, sent notices to check again."""
        from safeeye.takedown.follow_up import OPEN, unreported_matches

        return {
            "compose_notices": unreported_matches(session, SWEEP_LIMIT),
            "dispatch_batch": list(
                session.execute(
                    select(Batch.id)
                    .where(Batch.status == BatchStatus.APPROVED, _stranded(Batch, now, lost))
                    .limit(SWEEP_LIMIT)
                ).scalars()
            ),
            "recheck_notice": list(
                session.execute(
                    select(Notice.id)
                    .where(
                        Notice.status.in_(OPEN),
                        Notice.next_check_at <= now,
                        _stranded(Notice, now, lost),
                    )
                    .order_by(Notice.next_check_at)
                    .limit(SWEEP_LIMIT)
                ).scalars()
            ),
        }

    def _submit(self, task: str, ids: list[int]) -> int:
        """Hand ``ids`` to the runner. A due source (or a match to compose notices for) is
        handed over again only after a while (its task may wait behind others); the other
        rows were marked queued in the database."""
        if task not in REMEMBERED:
            for row_id in ids:
                self.runner.submit(task, row_id)
            return len(ids)
        clock = time.monotonic()
        due = {(task, row_id) for row_id in ids}
        self._submitted = {
            key: t
            for key, t in self._submitted.items()
            if (key[0] != task or key in due) and clock - t < self._grace
        }
        count = 0
        for row_id in ids:
            if (task, row_id) not in self._submitted:
                self.runner.submit(task, row_id)
                self._submitted[(task, row_id)] = clock
                count += 1
        return count

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; a database outage only delays the next tick."""
        while not stop.is_set():
            try:
                submitted = self.tick()
                if submitted:
                    log.info("scheduled %s", submitted)
            except SQLAlchemyError as exc:
                log.warning("scheduler cannot reach the database: %s", type(exc).__name__)
            except Exception as exc:  # a bug must not stop scheduling for good
                log.error("scheduler tick failed: %s", type(exc).__name__)
            stop.wait(self.interval)
        self.release()


def follow_up_in_process(app: SafeEye, actor: Any, stop: threading.Event) -> None:
    """Run the takedown tasks in this process until ``stop`` is set: notices for re-uploads,
    approved batches, rechecks (what ``safeeye discover`` needs without Celery workers)."""
    from safeeye.tasks.runner import InProcessRunner

    runner = InProcessRunner(app, actor)
    scheduler = Scheduler(app, runner, tasks=TAKEDOWN_TASKS)
    try:
        while not stop.is_set():
            try:
                if scheduler.tick():
                    runner.drain()
            except SQLAlchemyError as exc:
                log.warning("follow-up cannot reach the database: %s", type(exc).__name__)
            except Exception as exc:  # a bug must not stop the follow-up for good
                log.error("follow-up round failed: %s", type(exc).__name__)
            stop.wait(scheduler.interval)
    finally:
        scheduler.release()
        runner.close()


def _stranded(model: type[TaskRow], now: datetime, lost: datetime) -> Any:
    """Rows nobody holds, due, and handed to the queue long enough ago that the message was
    probably lost (its worker died, the broker forgot it)."""
    return and_(
        or_(model.lease_until.is_(None), model.lease_until < now),
        or_(model.not_before.is_(None), model.not_before <= now),
        or_(model.queued_at.is_(None), model.queued_at < lost),
    )
