"""Source leases: one monitor at a time visits a source, and only it writes the visit's results.

A visit takes its source with a conditional UPDATE that succeeds only while no unexpired lease
is held, renews the lease from a background heartbeat while it works, and makes every write of
its results conditional on still holding it. Conditional updates serialise on the row (SQLite's
write lock, PostgreSQL's row lock), so this holds on both databases and across processes
(and, on PostgreSQL, hosts: their clocks should agree to well within a lease).
"""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from safeeye.app import SafeEye
from safeeye.db.models import Source
from safeeye.db.types import utcnow
from safeeye.errors import SafeEyeError

log = logging.getLogger(__name__)

#: How long a lease lasts without renewal: a killed monitor's source waits this long at most.
LEASE = timedelta(minutes=2)
#: How often a working visit renews its lease.
HEARTBEAT_SECONDS = 30.0


class LeaseLost(SafeEyeError):
    """Another monitor took the source over (this one's lease had expired): the visit stops."""

    code = "lease_lost"


def lease_is_free(now: datetime) -> ColumnElement[bool]:
    """The SQL condition "no monitor holds the source's lease at ``now``"."""
    return or_(Source.lease_until.is_(None), Source.lease_until <= now)


def take_lease(
    session: Session, source_id: int, length: timedelta, *, due_only: bool = True
) -> Lease | None:
    """Take the source's lease if it is free (and, with ``due_only``, due); None otherwise."""
    now = utcnow()
    token = secrets.token_hex(16)
    # A paused source is never due (an operator may still visit it on purpose).
    due = (
        and_(Source.next_due_at <= now, Source.enabled.is_(True))
        if due_only
        else Source.id.is_not(None)
    )
    taken = session.execute(
        update(Source)
        .where(Source.id == source_id, due, lease_is_free(now))
        .values(lease_owner=token, lease_until=now + length)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        return None
    return Lease(source_id, token, length)


class Lease:
    """A visit's hold on its source: ``hold`` renews it inside a unit of work (or raises
    ``LeaseLost``); ``heartbeat`` renews it in the background while the visit works."""

    def __init__(self, source_id: int, token: str, length: timedelta) -> None:
        self.source_id = source_id
        self.token = token
        self.length = length
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, session: Session) -> None:
        """Renew the lease in ``session``'s transaction, so that what the transaction writes
        commits only while this visit still owns the source; raises ``LeaseLost`` otherwise."""
        renewed = session.execute(
            update(Source)
            .where(Source.id == self.source_id, Source.lease_owner == self.token)
            .values(lease_until=utcnow() + self.length)
            .execution_options(synchronize_session=False)
        )
        if renewed.rowcount != 1:
            self.lost.set()
            raise LeaseLost("another monitor took this source over; this visit stopped")

    def release(self, session: Session, **values: object) -> None:
        """Give the source back with ``values`` written in the same conditional update."""
        released = session.execute(
            update(Source)
            .where(Source.id == self.source_id, Source.lease_owner == self.token)
            .values(lease_owner=None, lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )
        if released.rowcount != 1:
            self.lost.set()
            raise LeaseLost("another monitor took this source over; this visit stopped")

    def heartbeat(self, app: SafeEye, every: float) -> None:
        """Renew the lease every ``every`` seconds until ``stop`` (or until it is lost)."""

        def beat() -> None:
            while not self._stop.wait(every):
                try:
                    with app.db.session() as session:
                        self.hold(session)
                except LeaseLost:
                    return
                except SQLAlchemyError as exc:  # the database is away: the next beat retries
                    log.warning("lease renewal failed (%s)", type(exc).__name__)

        self._thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
