"""The per-host request interval kept in the database, shared by every process and machine."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from safeeye.db.models import HostSlot
from safeeye.db.session import Database
from safeeye.db.types import utcnow


class SharedSpacing:
    """``HostLimits``'s ``Spacing`` on the ``host_slots`` table: each request reserves the next
    start time of its host in a short transaction (the row is locked on PostgreSQL; SQLite has
    one writer at a time), so N workers keep one site's interval together."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def reserve(self, host: str, interval: float) -> float:
        for _ in range(3):
            try:
                return self._reserve(host, interval)
            except DBIntegrityError:  # two processes met a new host at once: the row exists now
                continue
        return self._reserve(host, interval)

    def _reserve(self, host: str, interval: float) -> float:
        step = timedelta(seconds=interval)
        with self.db.session() as session:
            now = utcnow()
            slot = session.execute(
                select(HostSlot).where(HostSlot.host == host).with_for_update()
            ).scalar_one_or_none()
            if slot is None:
                session.add(HostSlot(host=host, next_at=now + step))
                return 0.0
            start = max(now, slot.next_at)
            slot.next_at = start + step
            return (start - now).total_seconds()
