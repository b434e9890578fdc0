"""The hash-chained audit log: append an event for every state change, verify the chain."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from safeeye.crypto import derive_key
from safeeye.db.models import AuditEvent, AuditHead
from safeeye.db.types import utcnow

GENESIS = "0" * 64


def event_hash(
    prev_hash: str,
    event_id: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | None,
    details: dict[str, Any],
) -> str:
    """The SHA-256 that chains one event to the one before it (canonical JSON of all fields)."""
    body = json.dumps(
        {
            "prev": prev_hash,
            "id": event_id,
            "at": at.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    """Appends and verifies events; the head checkpoint is MAC'd with a key from the master key."""

    def __init__(self, master_key: bytes) -> None:
        self._mac_key = derive_key(master_key, "audit-head")

    def _head_mac(self, last_id: int, last_hash: str, count: int) -> str:
        message = f"{last_id}:{last_hash}:{count}".encode()
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()

    def append(
        self,
        session: Session,
        actor: str,
        action: str,
        object_type: str,
        object_id: str | int | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one event in the caller's transaction (it commits with the change it records).

        The head row is locked first, so concurrent writers on PostgreSQL serialise and the
        chain never forks; SQLite serialises writers by itself.
        """
        head = session.execute(
            select(AuditHead).where(AuditHead.id == 1).with_for_update()
        ).scalar_one_or_none()
        if head is None:
            head = AuditHead(id=1, last_id=0, last_hash=GENESIS, count=0, mac="")
            session.add(head)
            session.flush()
        event_id = head.last_id + 1
        at = utcnow()
        oid = None if object_id is None else str(object_id)
        clean = json.loads(json.dumps(details or {}, default=str))
        digest = event_hash(head.last_hash, event_id, at, actor, action, object_type, oid, clean)
        event = AuditEvent(
            id=event_id,
            at=at,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=oid,
            details=clean,
            prev_hash=head.last_hash,
            hash=digest,
        )
        session.add(event)
        head.last_id, head.last_hash, head.count = event_id, digest, head.count + 1
        head.mac = self._head_mac(head.last_id, head.last_hash, head.count)
        session.flush()
        return event

    def verify(self, session: Session) -> AuditReport:
        """Walk the whole chain; report the first event that was edited, removed or reordered."""
        head = session.get(AuditHead, 1)
        expected_prev = GENESIS
        expected_id = 1
        count = 0
        rows = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars()
        for event in rows:
            count += 1
            if event.id != expected_id:
                return AuditReport(
                    False, count - 1, event.id, f"event {expected_id} is missing before {event.id}"
                )
            if event.prev_hash != expected_prev:
                return AuditReport(
                    False,
                    count - 1,
                    event.id,
                    f"event {event.id} does not follow event {event.id - 1} "
                    "(an event before it was removed, reordered or edited)",
                )
            digest = event_hash(
                event.prev_hash,
                event.id,
                event.at,
                event.actor,
                event.action,
                event.object_type,
                event.object_id,
                event.details,
            )
            if digest != event.hash:
                return AuditReport(
                    False, count - 1, event.id, f"event {event.id} was edited after it was written"
                )
            expected_prev, expected_id = event.hash, event.id + 1
        if head is None:
            if count:
                return AuditReport(False, count, None, "the chain's head checkpoint is missing")
            return AuditReport(True, 0, None, "the audit log is empty")
        if not hmac.compare_digest(
            head.mac, self._head_mac(head.last_id, head.last_hash, head.count)
        ):
            return AuditReport(False, count, None, "the chain's head checkpoint was altered")
        if head.count != count or head.last_hash != expected_prev:
            return AuditReport(
                False,
                count,
                head.last_id if head.last_id > count else None,
                f"the log ends at event {expected_id - 1} but the checkpoint says "
                f"{head.last_id}: events at the end were removed",
            )
        return AuditReport(True, count, None, f"{count} events verified")


@dataclass(frozen=True)
class AuditReport:
    """The outcome of a verification; ``first_broken`` is the id of the first bad event."""

    ok: bool
    verified: int
    first_broken: int | None
    message: str
