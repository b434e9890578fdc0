"""Claiming a row for a task: a lease with an owner and an expiry, taken atomically.

A task claims its row before working on it; nobody else claims it until the lease expires, so a
worker that dies mid-task leaves a row that is taken over once its lease runs out, and two
deliveries of one message do the work once. On PostgreSQL the claim locks the row with
``FOR UPDATE SKIP LOCKED`` (a second claimer skips it instead of waiting); on SQLite, which has
one writer at a time, a conditional ``UPDATE`` does the same.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, or_, select, true, update
from sqlalchemy.orm import Session

from safeeye.db.session import Database
from safeeye.db.types import utcnow

log = logging.getLogger(__name__)

Row = TypeVar("Row")


def _free(model: Any) -> ColumnElement[bool]:
    now = utcnow()
    return and_(
        or_(model.lease_until.is_(None), model.lease_until < now),
        or_(model.not_before.is_(None), model.not_before <= now),
    )


def claim(
    session: Session,
    model: type[Row],
    row_id: int,
    owner: str,
    lease: timedelta,
    ready: ColumnElement[bool] | None = None,
) -> Row | None:
    """Take row ``row_id`` of ``model`` for ``owner`` until now + ``lease`` if it is ``ready``
    and nobody holds it; None otherwise. Counts the attempt. Commit soon after, so that others
    see the lease."""
    m: Any = model
    condition = and_(m.id == row_id, _free(m), ready if ready is not None else true())
    until = utcnow() + lease
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(
            select(model).where(condition).with_for_update(skip_locked=True)
        ).scalar_one_or_none()
        if row is None:
            return None
        r: Any = row
        r.lease_owner, r.lease_until, r.attempts = owner, until, (r.attempts or 0) + 1
        session.flush()
        return row
    taken = session.execute(
        update(model)
        .where(condition)
        .values(lease_owner=owner, lease_until=until, attempts=m.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        return None
    return session.get(model, row_id, populate_existing=True)


def renew(session: Session, model: type[Row], row_id: int, owner: str, lease: timedelta) -> bool:
    """Extend ``owner``'s lease on the row; False when it is no longer theirs."""
    m: Any = model
    done = session.execute(
        update(model)
        .where(m.id == row_id, m.lease_owner == owner)
        .values(lease_until=utcnow() + lease)
        .execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def holds(row: Any, owner: str) -> bool:
    """Whether ``owner`` still holds the row's lease (read in the caller's transaction)."""
    return row.lease_owner == owner and row.lease_until is not None and row.lease_until > utcnow()


def release(row: Any, *, retry_in: float | None = None) -> None:
    """Give the row back: done (``retry_in`` None) or to be tried again after ``retry_in`` s."""
    row.lease_owner, row.lease_until = None, None
    row.not_before = None if retry_in is None else utcnow() + timedelta(seconds=retry_in)


class Heartbeat:
    """Renews ``owner``'s leases on rows while a long step works on them (a long video, a
    batch of slow pages), so that they are not taken over while this worker is alive."""

    def __init__(
        self, db: Database, model: type[Any], row_ids: list[int], owner: str, lease: timedelta
    ) -> None:
        self.db, self.model, self.row_ids, self.owner, self.lease = db, model, row_ids, owner, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        interval = max(1.0, self.lease.total_seconds() / 3)
        while not self._stop.wait(interval):
            try:
                with self.db.session() as session:
                    for row_id in self.row_ids:
                        renew(session, self.model, row_id, self.owner, self.lease)
            except Exception as exc:  # the next beat tries again; the lease is long enough
                log.warning("lease heartbeat failed: %s", type(exc).__name__)


def give_back(row: Any, error: str, max_attempts: int) -> float | None:
    """After a try that failed for a reason outside the row's content: the row is released
    with ``error`` to be tried again after the returned delay, or, when that was its last
    try, released for good (None: the caller records the failure)."""
    row.error = error[:2000]
    if row.attempts >= max_attempts:
        release(row)
        return None
    delay = backoff(row.attempts)
    release(row, retry_in=delay)
    return delay


def backoff(attempt: int, base: float = 2.0, cap: float = 300.0) -> float:
    """Seconds before try ``attempt + 1``: exponential, capped, with jitter (half to all)."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return ceiling * random.uniform(0.5, 1.0)
