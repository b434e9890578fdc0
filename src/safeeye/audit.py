"""The hash-chained audit log: append an event for every state change, verify the chain.

Three things make the log hard to rewrite quietly: each event's hash covers the one before it;
the chain's head row carries a MAC; and after every commit that adds events, a checkpoint
(sequence number, head hash, count, time) signed with Ed25519 is written outside the database
and, where configured, sent to a witness. ``verify`` fails when the chain is broken, when the log
is empty while data exists, and when the database is behind or disagrees with a checkpoint, as
it is after a rollback to an earlier copy. What an event says about a case is sealed under the
case key, so a purge leaves no readable trace of the case in the log.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safeeye.crypto import seal, unseal
from safeeye.db.models import AuditEvent, AuditHead, Case, Media, Source
from safeeye.db.types import utcnow
from safeeye.files import write_atomically
from safeeye.work import Role

if TYPE_CHECKING:
    from safeeye.keyring import Keyring
    from safeeye.work import Work

GENESIS = "0" * 64
#: Actions whose checkpoint goes to the witness at once (others at most once a minute).
WITNESS_AT_ONCE = frozenset({"case.purged", "key.rotated", "audit.checkpoint"})
WITNESS_INTERVAL_SECONDS = 60.0

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the log held ``count`` events ending in ``head_hash`` at ``at``."""

    seq: int
    head_hash: str
    count: int
    at: str
    public_key: str  # base64 of the raw Ed25519 public key
    signature: str = ""

    def body(self) -> bytes:
        fields = asdict(self)
        fields.pop("signature")
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def to_json(self) -> dict[str, Any]:
        return {"safeeye_audit_checkpoint": 1, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            seq=int(data["seq"]),
            head_hash=str(data["head_hash"]),
            count=int(data["count"]),
            at=str(data["at"]),
            public_key=str(data["public_key"]),
            signature=str(data["signature"]),
        )

    def signed_by(self, public_key: bytes) -> bool:
        """True when the signature is valid and made by ``public_key``."""
        if base64.b64decode(self.public_key) != public_key:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(
                base64.b64decode(self.signature), self.body()
            )
        except (InvalidSignature, ValueError):
            return False
        return True


def read_checkpoint(path: Path) -> Checkpoint:
    """The checkpoint in a file; ``ValueError`` when it is not one."""
    try:
        return Checkpoint.from_json(json.loads(path.read_text()))
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path.name} is not a readable audit checkpoint") from exc


class CheckpointStore:
    """The newest checkpoint, in a file outside the database, and the witness it goes to."""

    def __init__(self, path: Path, witness: str = "") -> None:
        self.path = Path(path)
        self.witness = witness
        self._last_witnessed = 0.0

    def latest(self) -> Checkpoint | None:
        """The stored checkpoint, None if there is none yet (``ValueError`` if unreadable)."""
        if not self.path.exists():
            return None
        return read_checkpoint(self.path)

    def save(self, checkpoint: Checkpoint, *, witness_now: bool = False) -> None:
        """Keep ``checkpoint`` unless a newer one is kept already (several processes write)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                current = self.latest()
            except ValueError:
                current = None
            if current is not None and current.seq >= checkpoint.seq:
                return
            # fsync only for the checkpoints that matter most (a purge, a rotation, an export):
            # after a crash an older checkpoint is only weaker, never a false alarm.
            text = json.dumps(checkpoint.to_json(), indent=2) + "\n"
            write_atomically(self.path, [text.encode()], durable=witness_now)
        now = time.monotonic()
        if self.witness and (witness_now or now - self._last_witnessed >= WITNESS_INTERVAL_SECONDS):
            self._last_witnessed = now
            send_to_witness(self.witness, checkpoint)


class AuditLog:
    """Appends and verifies events; signs checkpoints of the head after each commit."""

    def __init__(self, keys: Keyring, checkpoints: CheckpointStore | None = None) -> None:
        self._mac_key = keys.audit_head
        self._signing = keys.audit_signing
        self.public_key = self._signing.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.checkpoints = checkpoints

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
        *,
        case: tuple[int, bytes] | None = None,
        private: dict[str, Any] | None = None,
    ) -> AuditEvent:
        """Append one event in the caller's transaction (it commits with the change it records).

        ``details`` are stored as they are; ``private`` details (anything that names or links a
        case: its code, the media it matched) are sealed under ``case`` = (case id, case key),
        so they can be read while the case exists and by nobody once it is purged.

        The head row is locked first, so concurrent writers on PostgreSQL serialise and the
        chain never forks; SQLite serialises writers by itself.
        """
        head = _locked_head(session)
        event_id = head.last_id + 1
        at = utcnow()
        oid = None if object_id is None else str(object_id)
        clean = json.loads(json.dumps(details or {}, default=str))
        if private:
            if case is None:
                raise ValueError("private audit details need the case key to seal them")
            clean["case_id"] = case[0]
            clean["sealed"] = _seal_details(case[1], event_id, private)
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
        self._checkpoint_after_commit(session, head, action in WITNESS_AT_ONCE)
        return event

    # -- checkpoints -------------------------------------------------------------------------

    def sign(self, seq: int, head_hash: str, count: int) -> Checkpoint:
        """A checkpoint of the given head, signed now."""
        unsigned = Checkpoint(
            seq=seq,
            head_hash=head_hash,
            count=count,
            at=utcnow().isoformat(timespec="seconds"),
            public_key=base64.b64encode(self.public_key).decode(),
        )
        signature = base64.b64encode(self._signing.sign(unsigned.body())).decode()
        return Checkpoint(**{**asdict(unsigned), "signature": signature})

    def checkpoint(self, session: Session) -> Checkpoint:
        """A signed checkpoint of the head as the database holds it now, kept and witnessed."""
        head = session.get(AuditHead, 1)
        seq, head_hash, count = (
            (head.last_id, head.last_hash, head.count) if head else (0, GENESIS, 0)
        )
        made = self.sign(seq, head_hash, count)
        if self.checkpoints is not None:
            self.checkpoints.save(made, witness_now=True)
        return made

    def _checkpoint_after_commit(self, session: Session, head: AuditHead, witness: bool) -> None:
        pending = session.info.get("audit_head")
        session.info["audit_head"] = (
            head.last_id,
            head.last_hash,
            head.count,
            witness or bool(pending and pending[3]),
        )
        if self.checkpoints is None or session.info.get("audit_hooked"):
            return
        session.info["audit_hooked"] = True
        sa_event.listen(session, "after_commit", self._on_commit)
        sa_event.listen(session, "after_rollback", _forget_head)

    def _on_commit(self, session: Session) -> None:
        pending = session.info.pop("audit_head", None)
        if pending is None or self.checkpoints is None:
            return
        seq, head_hash, count, witness = pending
        try:
            self.checkpoints.save(self.sign(seq, head_hash, count), witness_now=witness)
        except OSError as exc:  # the action is committed: a missed checkpoint is only weaker
            log.warning("audit checkpoint not written: %s", type(exc).__name__)

    # -- reading -----------------------------------------------------------------------------

    @staticmethod
    def private_details(event: AuditEvent, case_key: bytes) -> dict[str, Any]:
        """The sealed part of an event's details (``IntegrityError`` with a wrong key)."""
        sealed = event.details.get("sealed")
        if not sealed:
            return {}
        return _open_details(case_key, event.id, sealed)

    def verify(self, session: Session, extra: list[Checkpoint] | None = None) -> AuditReport:
        """Walk the whole chain; report the first event that was edited, removed or reordered,
        an empty log beside data, and any disagreement with the kept checkpoints."""
        chain = self._verify_chain(session)
        if not chain.ok:
            return chain
        checkpoints = list(extra or [])
        if self.checkpoints is not None:
            try:
                kept = self.checkpoints.latest()
            except ValueError as exc:
                return AuditReport(False, chain.verified, None, str(exc))
            if kept is not None:
                checkpoints.append(kept)
        if chain.verified == 0:
            data = _data_rows(session)
            if data:
                return AuditReport(
                    False, 0, None, f"the audit log is empty but the database holds {data}"
                )
        for checkpoint in sorted(checkpoints, key=lambda c: c.seq, reverse=True):
            problem = self._against_checkpoint(session, checkpoint, chain.verified)
            if problem:
                return AuditReport(False, chain.verified, None, problem)
        return chain

    def _against_checkpoint(self, session: Session, checkpoint: Checkpoint, last: int) -> str:
        if not checkpoint.signed_by(self.public_key):
            return (
                f"the checkpoint of {checkpoint.at} is not signed by this installation's audit "
                "key (forged, or from another installation)"
            )
        if checkpoint.seq > last:
            return (
                f"the database is behind the checkpoint of {checkpoint.at}: the log ends at event "
                f"{last} but event {checkpoint.seq} had been written (events were removed or an "
                "older copy of the database was restored)"
            )
        if checkpoint.seq == 0:
            return ""
        recorded = session.execute(
            select(AuditEvent.hash).where(AuditEvent.id == checkpoint.seq)
        ).scalar_one_or_none()
        if recorded != checkpoint.head_hash:
            return (
                f"event {checkpoint.seq} differs from the checkpoint of {checkpoint.at}: the log "
                "was rewritten from there"
            )
        return ""

    def _verify_chain(self, session: Session) -> AuditReport:
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


def send_to_witness(witness: str, checkpoint: Checkpoint) -> None:
    """Hand a checkpoint to the witness: an http(s) URL, ``syslog`` or ``syslog://HOST:PORT``.

    Best effort: a witness that is down is logged, never a reason to undo the action."""
    body = json.dumps(checkpoint.to_json(), sort_keys=True, separators=(",", ":"))
    try:
        if witness.startswith(("http://", "https://")):
            import httpx

            httpx.post(
                witness,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=5.0,
                trust_env=False,
            ).raise_for_status()
        elif witness == "syslog" or witness.startswith("syslog://"):
            _syslog(witness, f"safeeye audit checkpoint {body}")
        else:
            log.warning("unknown audit witness kind; checkpoints are only kept in the file")
    except Exception as exc:
        log.warning("audit witness unreachable: %s", type(exc).__name__)


def _syslog(witness: str, message: str) -> None:
    from logging.handlers import SysLogHandler

    if witness == "syslog":
        handler = SysLogHandler(address="/dev/log")
    else:
        host, _, port = witness.removeprefix("syslog://").rpartition(":")
        handler = SysLogHandler(address=(host.strip("[]"), int(port or 514)))
    try:
        record = logging.LogRecord("safeeye.audit", logging.INFO, "", 0, message, None, None)
        handler.emit(record)
    finally:
        handler.close()


def _forget_head(session: Session) -> None:
    session.info.pop("audit_head", None)


def _seal_details(case_key: bytes, event_id: int, private: dict[str, Any]) -> str:
    body = json.dumps(private, sort_keys=True, separators=(",", ":"), default=str).encode()
    return base64.b64encode(seal(case_key, body, f"audit:{event_id}".encode())).decode()


def _open_details(case_key: bytes, event_id: int, sealed: str) -> dict[str, Any]:
    raw = unseal(case_key, base64.b64decode(sealed), f"audit:{event_id}".encode())
    data: dict[str, Any] = json.loads(raw)
    return data


def _data_rows(session: Session) -> str:
    """What the database holds besides the log ('' when nothing)."""
    parts = []
    for model, name in ((Case, "cases"), (Media, "media files"), (Source, "sources")):
        n = session.execute(select(func.count()).select_from(model)).scalar_one()
        if n:
            parts.append(f"{n} {name}")
    return ", ".join(parts)


def verify_log(work: Work, extra: list[Checkpoint] | None = None) -> AuditReport:
    """The verification of the whole log (and of checkpoints an auditor kept)."""
    work.require(Role.AUDITOR, action="verify the audit log")
    return work.app.audit.verify(work.session, extra)


def export_checkpoint(work: Work) -> Checkpoint:
    """A signed checkpoint of the log as it is now, kept, witnessed and itself audited."""
    work.require(Role.AUDITOR, action="export audit checkpoints")
    made = work.app.audit.checkpoint(work.session)
    work.audit("audit.checkpoint", "audit", made.seq)
    return made


def _locked_head(session: Session) -> AuditHead:
    """The chain's head row, locked for this transaction (selected once per transaction: many
    events appended in one unit of work cost one lock and are inserted together)."""
    transaction = session.get_transaction()
    held = session.info.get(_HEAD_KEY)
    if held is not None and transaction is not None and held[0] is transaction:
        return held[1]
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_id=0, last_hash=GENESIS, count=0, mac="")
        session.add(head)
        session.flush()
    session.info[_HEAD_KEY] = (session.get_transaction(), head)
    return head


_HEAD_KEY = "safeeye.audit_head"


# -- reading the log (the workbench's audit pages) --------------------------------------------

#: The most events one page holds.
MAX_EVENTS_PAGE = 500
#: The action that records a verification (and its outcome) in the log itself.
VERIFIED = "audit.verified"


@dataclass(frozen=True)
class EventRow:
    """One event as the audit pages show it: its details as they are stored, less the sealed
    part (``sealed`` says there was one; it stays sealed)."""

    id: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str | None
    details: dict[str, Any]
    sealed: bool
    hash: str


@dataclass(frozen=True)
class EventPage:
    events: list[EventRow]
    limit: int
    offset: int
    has_more: bool


@dataclass(frozen=True)
class Verification:
    """A verification of the whole log: its outcome, when and by whom it ran."""

    ok: bool
    verified: int
    first_broken: int | None
    message: str
    checked_at: str
    checked_by: str
    seconds: float


def list_events(
    work: Work,
    *,
    action: str | None = None,
    actor: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> EventPage:
    """Events newest first, read-only: ``action`` is a prefix (``notice.`` or ``notice``),
    ``actor``, ``object_type`` and ``object_id`` match exactly, [since, until) bounds the time."""
    from safeeye.errors import ValidationError

    work.require(Role.AUDITOR, action="read the audit log")
    if not 1 <= limit <= MAX_EVENTS_PAGE:
        raise ValidationError(f"a page holds 1 to {MAX_EVENTS_PAGE} events")
    if offset < 0:
        raise ValidationError("the offset cannot be negative")
    if since is not None and until is not None and since >= until:
        raise ValidationError("the period ends before it starts")
    query = select(AuditEvent)
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if object_type:
        query = query.where(AuditEvent.object_type == object_type)
    if object_id:
        query = query.where(AuditEvent.object_id == object_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    query = query.order_by(AuditEvent.id.desc()).limit(limit + 1).offset(offset)
    rows = list(work.session.scalars(query))
    events = [_event_row(row) for row in rows[:limit]]
    return EventPage(events, limit, offset, len(rows) > limit)


def _event_row(event: AuditEvent) -> EventRow:
    details = dict(event.details or {})
    sealed = details.pop("sealed", None) is not None
    return EventRow(
        id=event.id,
        at=event.at.isoformat(timespec="seconds"),
        actor=event.actor,
        action=event.action,
        object_type=event.object_type,
        object_id=event.object_id,
        details=details,
        sealed=sealed,
        hash=event.hash,
    )


def verify_and_record(work: Work) -> Verification:
    """Verify the whole log now, and record that it was done (and what was found) as an
    ``audit.verified`` event, so the audit page shows the last result without walking the
    chain on every view."""
    started = time.monotonic()
    report = verify_log(work)
    seconds = round(time.monotonic() - started, 3)
    outcome = asdict(report) | {"seconds": seconds}
    event = work.audit(VERIFIED, "audit", None, outcome)
    return _verification(event.at, event.actor, outcome)


def last_verification(work: Work) -> Verification | None:
    """The newest recorded verification (None when the log was never verified here)."""
    work.require(Role.AUDITOR, action="read the audit log")
    event = work.session.scalars(
        select(AuditEvent).where(AuditEvent.action == VERIFIED).order_by(AuditEvent.id.desc())
    ).first()
    if event is None:
        return None
    return _verification(event.at, event.actor, event.details or {})


def _verification(at: datetime, by: str, outcome: dict[str, Any]) -> Verification:
    broken = outcome.get("first_broken")
    return Verification(
        ok=bool(outcome.get("ok")),
        verified=int(outcome.get("verified") or 0),
        first_broken=int(broken) if isinstance(broken, int) else None,
        message=str(outcome.get("message") or ""),
        checked_at=at.isoformat(timespec="seconds"),
        checked_by=by,
        seconds=float(outcome.get("seconds") or 0.0),
    )
