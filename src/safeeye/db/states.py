"""The states a row moves through, and the moves allowed: one place for every status rule.

Statuses are ``StrEnum`` values stored as short strings. ``move(row, new)`` is the only way to
change a status: a move the table below does not allow is a ``ConflictError`` (a bug, or two
workers disagreeing), never a silent overwrite.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from safeeye.errors import ConflictError


class MediaStatus(StrEnum):
    """Media: stored (blob and row) and waiting to be scanned, scanned, or failed for good."""

    PENDING = "pending"
    SCANNED = "scanned"
    FAILED = "failed"


class VisitStatus(StrEnum):
    """One visit of a source by a monitor or a worker."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INCOMPLETE = "incomplete"  # ran out of its time budget; the next visit carries on
    INTERRUPTED = "interrupted"  # its monitor stopped; the lease expired and another took over
    LOST = "lost"  # it found its lease taken and stopped writing


class PageStatus(StrEnum):
    """A crawl page: waiting to be read, read, or not readable (its error says why)."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class MatchStatus(StrEnum):
    """A match waits for a person's review; the review confirms, rejects or escalates it."""

    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    ESCALATED = "escalated"


class NoticeStatus(StrEnum):
    """A deletion request from its draft to the content's verified removal."""

    DRAFT = "draft"  # written, waiting for an officer's approval
    APPROVED = "approved"  # approved, waiting in a batch to be sent
    SENT = "sent"  # the recipient has it; its deadline runs
    ACKNOWLEDGED = "acknowledged"  # the recipient said it is on it
    REMOVED = "removed"  # a recheck found the content gone (verified)
    REFUSED = "refused"  # the recipient said no (the ladder goes on)
    ESCALATED = "escalated"  # past its deadline: the next recipient of the ladder has it
    CANCELLED = "cancelled"  # withdrawn by a person (a wrong confirmation, consent withdrawn)
    FAILED = "failed"  # could not be sent after every try


class BatchStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENT = "sent"
    PARTIAL = "partial"  # some of its notices were refused by the recipient's system
    FAILED = "failed"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class CaseStatus(StrEnum):
    #: Reported on the public SOS page; a counselor has not taken it on yet.
    PENDING = "pending"
    OPEN = "open"
    CLOSED = "closed"
    PURGED = "purged"


ALLOWED: dict[type[StrEnum], dict[StrEnum, frozenset[StrEnum]]] = {
    MediaStatus: {
        # A failed scan may be tried again (an operator's retry, a new version of a decoder);
        # scanned media may be queued again when a new signal asks for it.
        MediaStatus.PENDING: frozenset({MediaStatus.SCANNED, MediaStatus.FAILED}),
        MediaStatus.FAILED: frozenset({MediaStatus.PENDING}),
        MediaStatus.SCANNED: frozenset({MediaStatus.PENDING}),
    },
    VisitStatus: {
        VisitStatus.RUNNING: frozenset(
            {
                VisitStatus.DONE,
                VisitStatus.FAILED,
                VisitStatus.INCOMPLETE,
                VisitStatus.INTERRUPTED,
                VisitStatus.LOST,
            }
        ),
    },
    MatchStatus: {
        MatchStatus.PENDING: frozenset(
            {MatchStatus.CONFIRMED, MatchStatus.REJECTED, MatchStatus.ESCALATED}
        ),
        MatchStatus.ESCALATED: frozenset({MatchStatus.CONFIRMED, MatchStatus.REJECTED}),
        # A decision can be taken back by a person (audited like the first one).
        MatchStatus.CONFIRMED: frozenset({MatchStatus.PENDING, MatchStatus.REJECTED}),
        MatchStatus.REJECTED: frozenset({MatchStatus.PENDING, MatchStatus.CONFIRMED}),
    },
    NoticeStatus: {
        NoticeStatus.DRAFT: frozenset(
            {NoticeStatus.APPROVED, NoticeStatus.CANCELLED, NoticeStatus.FAILED}
        ),
        NoticeStatus.APPROVED: frozenset(
            {NoticeStatus.SENT, NoticeStatus.CANCELLED, NoticeStatus.FAILED}
        ),
        # A reminder goes out again (approved anew, the deadline kept from the first sending).
        NoticeStatus.SENT: frozenset(
            {
                NoticeStatus.APPROVED,
                NoticeStatus.ACKNOWLEDGED,
                NoticeStatus.REMOVED,
                NoticeStatus.REFUSED,
                NoticeStatus.ESCALATED,
                NoticeStatus.CANCELLED,
            }
        ),
        NoticeStatus.ACKNOWLEDGED: frozenset(
            {
                NoticeStatus.APPROVED,
                NoticeStatus.REMOVED,
                NoticeStatus.REFUSED,
                NoticeStatus.ESCALATED,
            }
        ),
        NoticeStatus.REFUSED: frozenset({NoticeStatus.REMOVED, NoticeStatus.ESCALATED}),
        NoticeStatus.ESCALATED: frozenset({NoticeStatus.REMOVED}),
        NoticeStatus.FAILED: frozenset({NoticeStatus.APPROVED, NoticeStatus.CANCELLED}),
    },
    BatchStatus: {
        BatchStatus.DRAFT: frozenset({BatchStatus.APPROVED, BatchStatus.FAILED}),
        BatchStatus.APPROVED: frozenset(
            {BatchStatus.SENT, BatchStatus.PARTIAL, BatchStatus.FAILED}
        ),
        BatchStatus.FAILED: frozenset({BatchStatus.APPROVED}),
    },
    OutboxStatus: {
        OutboxStatus.PENDING: frozenset({OutboxStatus.SENT, OutboxStatus.FAILED}),
        OutboxStatus.FAILED: frozenset({OutboxStatus.PENDING}),
    },
    CaseStatus: {
        CaseStatus.PENDING: frozenset({CaseStatus.OPEN, CaseStatus.CLOSED, CaseStatus.PURGED}),
        CaseStatus.OPEN: frozenset({CaseStatus.CLOSED, CaseStatus.PURGED}),
        CaseStatus.CLOSED: frozenset({CaseStatus.OPEN, CaseStatus.PURGED}),
    },
}


class _HasStatus(Protocol):
    status: str


def allowed(current: StrEnum, new: StrEnum) -> bool:
    """Whether a row may move from ``current`` to ``new`` (staying put is always allowed)."""
    return current == new or new in ALLOWED[type(current)].get(current, frozenset())


def move(row: _HasStatus, new: StrEnum) -> None:
    """Set ``row.status`` to ``new`` if the move is allowed; ``ConflictError`` otherwise."""
    current = type(new)(row.status)
    if not allowed(current, new):
        raise ConflictError(
            f"{type(row).__name__} cannot go from {current.value} to {new.value}", code="state"
        )
    row.status = new.value
