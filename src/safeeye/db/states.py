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


class CaseStatus(StrEnum):
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
    CaseStatus: {
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
