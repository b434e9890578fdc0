"""Sending batches exactly once: through an outbox, by a task over batch rows.

An approved batch gets its outbox items in one transaction (one send for the batch, or one per
notice for e-mail) before anything goes out; each item carries an idempotency key derived from
the batch's. The ``dispatch_batch`` task claims the batch, then sends each pending item and
records the result in the same unit of work that marks its notices sent. A dispatcher killed
after a send and before that commit leaves the item pending: the next try sends it again with
the same key, and the recipient's system answers "duplicate" (e-mail cannot: see the e-mail
connector), so nothing is lost and nothing is acted on twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from safeeye.db.models import Batch, Case, Notice, OutboxItem, Recipient
from safeeye.db.states import BatchStatus, NoticeStatus, OutboxStatus, allowed, move
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, NotFoundError, error_text
from safeeye.takedown.connectors import connector_named
from safeeye.takedown.connectors.base import ConnectorError
from safeeye.takedown.drafting import open_content
from safeeye.takedown.model import (
    Category,
    EvidenceRef,
    NoticeFacts,
    OutgoingNotice,
    RecipientInfo,
    RenderedNotice,
    Requester,
    SendResult,
)
from safeeye.tasks import TASKS, Results, TaskContext, task
from safeeye.tasks.leases import give_back, holds, release
from safeeye.work import Role, Work

log = logging.getLogger(__name__)

#: Connectors that send each notice on its own (one outbox item each).
PER_NOTICE = frozenset({"email"})


@dataclass(frozen=True)
class BatchSummary:
    id: int
    reference: str
    recipient: str
    connector: str
    status: str
    notices: int
    created_at: str
    sent_at: str | None


def recipient_info(recipient: Recipient) -> RecipientInfo:
    return RecipientInfo(
        id=recipient.id,
        key=recipient.key,
        name=recipient.name,
        kind=recipient.kind,
        connector=recipient.connector,
        address=recipient.address,
        languages=tuple(recipient.languages or ("en",)),
        deadline_hours=recipient.deadline_hours,
        jurisdiction=recipient.jurisdiction,
        legal_routes=tuple(recipient.legal_routes or ()),
        requires=tuple(recipient.requires or ()),
    )


def approve_batch(work: Work, batch_id: int) -> BatchSummary:
    """An officer approves a draft batch: its draft notices are approved, and it is ready to
    be sent (``dispatch_batch``)."""
    work.require(Role.REVIEWER, action="approve deletion requests")
    batch = work.session.get(Batch, batch_id)
    if batch is None:
        raise NotFoundError(f"no batch {batch_id}")
    if batch.status != BatchStatus.APPROVED:
        move(batch, BatchStatus.APPROVED)
        batch.approved_at, batch.approved_by = utcnow(), work.actor.name
        assert allowed(NoticeStatus.DRAFT, NoticeStatus.APPROVED)
        approved = work.session.execute(
            update(Notice)
            .where(Notice.batch_id == batch.id, Notice.status == NoticeStatus.DRAFT)
            .values(
                status=NoticeStatus.APPROVED,
                approved_at=batch.approved_at,
                approved_by=work.actor.name,
            )
            .execution_options(synchronize_session="fetch")
        ).rowcount
        work.audit("batch.approved", "batch", batch.id, {"notices": approved})
    return summarize_batch(work, batch)


def list_batches(work: Work, status: str | None = None) -> list[BatchSummary]:
    work.require(Role.REVIEWER, Role.AUDITOR, Role.COUNSELOR, action="list batches")
    query = select(Batch).order_by(Batch.id.desc())
    if status is not None:
        query = query.where(Batch.status == status)
    return [summarize_batch(work, b) for b in work.session.execute(query).scalars()]


def summarize_batch(work: Work, batch: Batch) -> BatchSummary:
    recipient = work.session.get(Recipient, batch.recipient_id)
    assert recipient is not None
    return BatchSummary(
        id=batch.id,
        reference=batch.idempotency_key,
        recipient=recipient.key,
        connector=batch.connector,
        status=batch.status,
        notices=_count(work, batch.id),
        created_at=batch.created_at.isoformat(),
        sent_at=batch.sent_at.isoformat() if batch.sent_at else None,
    )


@task("dispatch_batch", max_attempts=8)
def dispatch_batch(ctx: TaskContext, batch_ids: list[int]) -> Results:
    """Send each approved batch this worker can claim, item by item through the outbox."""
    results: Results = {}
    for batch_id in batch_ids:
        with ctx.app.work(ctx.actor) as work:
            batch = ctx.claim(work.session, Batch, batch_id, Batch.status == BatchStatus.APPROVED)
            if batch is None:
                results[batch_id] = None
                continue
            _fill_outbox(work, batch)
        results[batch_id] = _send_items(ctx, batch_id)
    return results


def _fill_outbox(work: Work, batch: Batch) -> None:
    """The batch's outbox items, made once (before anything is sent)."""
    session = work.session
    if session.execute(select(OutboxItem.id).where(OutboxItem.batch_id == batch.id)).first():
        return
    notices = list(
        session.scalars(
            select(Notice.id)
            .where(Notice.batch_id == batch.id, Notice.status == NoticeStatus.APPROVED)
            .order_by(Notice.id)
        )
    )
    if batch.connector in PER_NOTICE:
        units = [(f"{batch.idempotency_key}.{n}", [n]) for n in notices]
    else:
        units = [(batch.idempotency_key, notices)]
    for key, ids in units:
        session.add(
            OutboxItem(
                batch_id=batch.id,
                idempotency_key=key,
                status=OutboxStatus.PENDING,
                notice_ids=ids,
                attempts=0,
                queued_at=utcnow(),
            )
        )
    session.flush()


def _send_items(ctx: TaskContext, batch_id: int) -> dict[str, Any]:
    app = ctx.app
    with app.db.session(read_only=True) as session:
        batch = session.get(Batch, batch_id)
        assert batch is not None
        recipient = session.get(Recipient, batch.recipient_id)
        assert recipient is not None
        info = recipient_info(recipient)
        items = list(
            session.execute(
                select(OutboxItem.id).where(
                    OutboxItem.batch_id == batch_id, OutboxItem.status == OutboxStatus.PENDING
                )
            ).scalars()
        )
    connector = connector_named(info.connector)(app)
    sent = failed = 0
    retry_in: float | None = None
    try:
        for item_id in items:
            outcome = _send_one(ctx, connector, info, item_id)
            if outcome == "sent":
                sent += 1
            elif outcome == "failed":
                failed += 1
            elif isinstance(outcome, float):
                retry_in = outcome if retry_in is None else min(retry_in, outcome)
    finally:
        connector.close()
    _settle_batch(ctx, batch_id, retry_in)
    return {"sent": sent, "failed": failed, "retry_in": retry_in}


def _send_one(
    ctx: TaskContext, connector: Any, info: RecipientInfo, item_id: int
) -> str | float | None:
    """Send one outbox item; "sent", "failed", a delay before the next try, or None when
    another worker has it."""
    app = ctx.app
    with app.db.session() as session:
        item = ctx.claim(session, OutboxItem, item_id, OutboxItem.status == OutboxStatus.PENDING)
        if item is None:
            return None
        key, notice_ids = item.idempotency_key, list(item.notice_ids)
    with app.db.session(read_only=True) as session:
        outgoing = _outgoing(app, session, notice_ids)
    try:
        with ctx.heartbeat(OutboxItem, [item_id]):
            result = connector.send(key, info, outgoing)
    except ConnectorError as exc:
        return _failed_try(ctx, item_id, exc.as_text(), exc.retryable)
    except Exception as exc:  # a bug in a connector: tried again, then failed for good
        return _failed_try(ctx, item_id, error_text(exc, "a connector's send"), True)
    _record_sent(ctx, item_id, info, result)
    return "sent"


def _record_sent(ctx: TaskContext, item_id: int, info: RecipientInfo, result: SendResult) -> None:
    """The item went out: it and its notices are marked sent in one unit of work (in bulk: a
    batch may hold thousands). A notice the recipient's system rejected is marked failed."""
    now = utcnow()
    acks = {ack.notice_id: ack for ack in result.acks}
    rejected = {i: a for i, a in acks.items() if a.status == "rejected"}
    with ctx.app.work(ctx.actor) as work:
        session = work.session
        item = session.get(OutboxItem, item_id)
        assert item is not None
        move(item, OutboxStatus.SENT)
        item.sent_at, item.error = now, None
        item.response = {
            "acks": [
                {"notice": a.notice_id, "status": a.status, "id": a.remote_id, "message": a.message}
                for a in result.acks
            ],
            **result.detail,
        }
        release(item)
        ids = list(item.notice_ids)
        approved = Notice.status == NoticeStatus.APPROVED
        assert allowed(NoticeStatus.APPROVED, NoticeStatus.FAILED)
        for notice_id, ack in rejected.items():
            session.execute(
                update(Notice)
                .where(Notice.id == notice_id, approved)
                .values(
                    status=NoticeStatus.FAILED,
                    error=(ack.message or "rejected by the recipient's system")[:2000],
                )
            )
        assert allowed(NoticeStatus.APPROVED, NoticeStatus.SENT)
        deadline = now + timedelta(hours=info.deadline_hours)
        sent = 0
        for start in range(0, len(ids), 500):
            chunk = [i for i in ids[start : start + 500] if i not in rejected]
            sent += session.execute(
                update(Notice)
                .where(Notice.id.in_(chunk), approved)
                .values(
                    status=NoticeStatus.SENT,
                    # the first sending starts the deadline; reminders don't
                    sent_at=func.coalesce(Notice.sent_at, now),
                    deadline_at=func.coalesce(Notice.deadline_at, deadline),
                    next_check_at=now + timedelta(hours=ctx.app.settings.recheck_hours),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
        statuses = dict.fromkeys((a.status for a in result.acks), 0)
        for ack in result.acks:
            statuses[ack.status] += 1
        work.audit(
            "notices.sent",
            "outbox",
            item.id,
            {
                "recipient": info.key,
                "connector": info.connector,
                "key": item.idempotency_key,
                "sent": sent,
                "rejected": sorted(rejected),
                "acks": statuses,
                "notices": ids,
            },
        )


def _failed_try(ctx: TaskContext, item_id: int, error: str, retryable: bool) -> str | float:
    with ctx.app.db.session() as session:
        item = session.get(OutboxItem, item_id)
        if item is None or not holds(item, ctx.owner):
            return "failed"
        delay = give_back(item, error, TASKS["dispatch_batch"].max_attempts) if retryable else None
        if delay is None:
            release(item)
            move(item, OutboxStatus.FAILED)
            item.error = error[:2000]
            for notice_id in item.notice_ids:
                notice = session.get(Notice, notice_id)
                if notice is not None and notice.status == NoticeStatus.APPROVED:
                    move(notice, NoticeStatus.FAILED)
                    notice.error = error[:2000]
            return "failed"
    log.warning("a send failed, tried again in %.0f s", delay)
    return delay


def _settle_batch(ctx: TaskContext, batch_id: int, retry_in: float | None) -> None:
    with ctx.app.work(ctx.actor) as work:
        batch = work.session.get(Batch, batch_id)
        if batch is None or not holds(batch, ctx.owner):
            return
        statuses = set(
            work.session.execute(
                select(OutboxItem.status).where(OutboxItem.batch_id == batch_id)
            ).scalars()
        )
        if OutboxStatus.PENDING in statuses:
            release(batch, retry_in=retry_in)
            if retry_in is not None:
                ctx.runner.submit("dispatch_batch", batch_id, delay=retry_in)
            return
        release(batch)
        rejected = _count(work, batch_id, NoticeStatus.FAILED) > 0
        if statuses == {OutboxStatus.FAILED}:
            move(batch, BatchStatus.FAILED)
        else:
            move(batch, BatchStatus.PARTIAL if rejected else BatchStatus.SENT)
            batch.sent_at = utcnow()
        work.audit("batch.dispatched", "batch", batch.id, {"status": batch.status})


def _outgoing(app: Any, session: Session, notice_ids: list[int]) -> list[OutgoingNotice]:
    """The notices as they go out, opened from their sealed content (a purged case's notices
    are left out: nothing of them goes out)."""
    keys: dict[int, bytes | None] = {}
    out = []
    for notice in _rows(session, notice_ids):
        if notice.case_id not in keys:
            case = session.get(Case, notice.case_id)
            alive = case is not None and case.wrapped_key is not None
            keys[notice.case_id] = app.keys.case_key(case) if alive else None
        key = keys[notice.case_id]
        if key is None:
            continue
        content = open_content(key, notice)
        out.append(
            OutgoingNotice(
                notice_id=notice.id,
                idempotency_key=notice.idempotency_key,
                rendered=_rendered(content["rendered"]),
                facts=_facts(content["facts"]),
            )
        )
    return out


def _rows(session: Session, notice_ids: list[int]) -> list[Notice]:
    """The notices of ``notice_ids``, in that order (read in chunks)."""
    found: dict[int, Notice] = {}
    for start in range(0, len(notice_ids), 500):
        chunk = notice_ids[start : start + 500]
        found.update((n.id, n) for n in session.scalars(select(Notice).where(Notice.id.in_(chunk))))
    return [found[i] for i in notice_ids if i in found]


def _rendered(data: dict[str, Any]) -> RenderedNotice:
    return RenderedNotice(
        language=data["language"],
        subject=data["subject"],
        body=data["body"],
        english_subject=data.get("english_subject"),
        english_body=data.get("english_body"),
        legal_basis=tuple(data.get("legal_basis") or ()),
        fields=dict(data.get("fields") or {}),
    )


def _facts(data: dict[str, Any]) -> NoticeFacts:
    recipient = data["recipient"]
    evidence = data.get("evidence")
    known = {f for f in NoticeFacts.__dataclass_fields__}
    values = {k: v for k, v in data.items() if k in known}
    info_fields = RecipientInfo.__dataclass_fields__
    recipient = {k: v for k, v in recipient.items() if k in info_fields}
    values.update(
        recipient=RecipientInfo(
            **{
                **recipient,
                "languages": tuple(recipient.get("languages") or ()),
                "legal_routes": tuple(recipient.get("legal_routes") or ()),
                "requires": tuple(recipient.get("requires") or ()),
            }
        ),
        category=Category(data["category"]),
        urls=tuple(data["urls"]),
        requester=Requester(**data["requester"]),
        evidence=EvidenceRef(**evidence) if evidence else None,
        cites=tuple(data.get("cites") or ()),
    )
    return NoticeFacts(**values)


def _count(work: Work, batch_id: int, status: str | None = None) -> int:
    """How many notices the batch holds (in ``status``)."""
    query = select(func.count()).select_from(Notice).where(Notice.batch_id == batch_id)
    if status is not None:
        query = query.where(Notice.status == status)
    return int(work.session.scalar(query) or 0)


def queue_approved(work: Work, runner: Any) -> list[int]:
    """Submit every approved batch that has not gone out (for the CLI and the scheduler)."""
    ids = list(
        work.session.execute(select(Batch.id).where(Batch.status == BatchStatus.APPROVED)).scalars()
    )
    for batch_id in ids:
        runner.submit("dispatch_batch", batch_id)
    return ids


def check_sendable(work: Work, batch_id: int) -> None:
    batch = work.session.get(Batch, batch_id)
    if batch is None:
        raise NotFoundError(f"no batch {batch_id}")
    if batch.status != BatchStatus.APPROVED:
        raise ConflictError(f"batch {batch_id} is {batch.status}: approve it first")
