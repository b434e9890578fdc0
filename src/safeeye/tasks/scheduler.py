"""The scheduler: decides what is due and hands it to the runner, in exactly one place.

Every worker process offers to schedule; a named lease in the database lets exactly one do it
at a time (another takes over when the holder stops renewing). Each tick submits the sources
that are due and sweeps the task rows nobody holds (media waiting for a scan, URLs waiting to
be fetched) so that a lost message or a dead worker delays work but never loses it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.exc import SQLAlchemyError

from safeeye.db.models import Media, NamedLease, Source, UrlState
from safeeye.db.states import MediaStatus
from safeeye.db.types import utcnow
from safeeye.tasks import Runner, worker_token

if TYPE_CHECKING:
    from safeeye.app import SafeEye

log = logging.getLogger(__name__)
NAME = "scheduler"
SWEEP_LIMIT = 500


class Scheduler:
    """Submits due sources and stranded task rows; ``tick`` is one round."""

    def __init__(
        self,
        app: SafeEye,
        runner: Runner,
        *,
        interval: float = 2.0,
        lease: timedelta = timedelta(seconds=30),
    ) -> None:
        self.app = app
        self.runner = runner
        self.interval = interval
        self.lease = lease
        self.owner = worker_token()
        #: Rows submitted lately (kind, id) -> when: not submitted again before they could run.
        self._submitted: dict[tuple[str, int], float] = {}
        self._grace = max(30.0, app.settings.task_lease_seconds)

    def hold(self) -> bool:
        """Take or keep the scheduler's lease; False while another process holds it."""
        now = utcnow()
        with self.app.db.session() as session:
            taken = session.execute(
                update(NamedLease)
                .where(
                    NamedLease.name == NAME,
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
            if session.get(NamedLease, NAME) is not None:
                return False
        try:
            with self.app.db.session() as session:
                session.add(NamedLease(name=NAME, owner=self.owner, until=now + self.lease))
            return True
        except DBIntegrityError:  # another process created it first
            return False

    def release(self) -> None:
        """Give the job up at once (a clean stop), so another process takes over quickly."""
        try:
            with self.app.db.session() as session:
                session.execute(
                    update(NamedLease)
                    .where(NamedLease.name == NAME, NamedLease.owner == self.owner)
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
            due["scan_media"] = list(
                session.execute(
                    select(Media.id)
                    .where(
                        Media.status == MediaStatus.PENDING,
                        Media.blob_address.is_not(None),
                        _free(Media, now),
                    )
                    .order_by(Media.id)
                    .limit(SWEEP_LIMIT)
                ).scalars()
            )
            due["fetch_media"] = list(
                session.execute(
                    select(UrlState.id)
                    .where(UrlState.status == "pending", _free(UrlState, now))
                    .order_by(UrlState.id)
                    .limit(SWEEP_LIMIT)
                ).scalars()
            )
        return {task: self._submit(task, ids) for task, ids in due.items() if ids}

    def _submit(self, task: str, ids: list[int]) -> int:
        clock = time.monotonic()
        self._submitted = {k: t for k, t in self._submitted.items() if clock - t < self._grace}
        count = 0
        for row_id in ids:
            if (task, row_id) in self._submitted:
                continue
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


def _free(model: type[Media] | type[UrlState], now: object) -> object:
    return and_(
        or_(model.lease_until.is_(None), model.lease_until < now),
        or_(model.not_before.is_(None), model.not_before <= now),
    )
