"""The audit log: read-only, filterable, with the result of verifying its chain.

Verifying walks the whole chain, so it runs when an auditor asks (POST /audit/verify) and is
itself recorded in the log; the page shows the last recorded result, never verifying on a view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from safeeye.audit import (
    MAX_EVENTS_PAGE,
    EventPage,
    Verification,
    last_verification,
    list_events,
    verify_and_record,
)
from safeeye.web.auth import Principal, ServicesFor, require_role
from safeeye.web.rendering import render
from safeeye.work import Role

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["audit"])

Auditor = Annotated[Principal, Depends(require_role(Role.AUDITOR))]
Limit = Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE, description="At most this many events.")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Events to skip.")]
#: One line of text: no control character (PostgreSQL keeps no NUL in text).
LINE = r"^[^\x00-\x1f\x7f]*$"
Action = Annotated[
    str | None,
    Query(max_length=64, pattern=LINE, description="Actions starting with this (notice. or case)."),
]
ActorName = Annotated[
    str | None, Query(max_length=200, pattern=LINE, description="Who acted (user:kim).")
]
ObjectType = Annotated[
    str | None, Query(max_length=32, pattern=LINE, description="The object's type.")
]
ObjectId = Annotated[str | None, Query(max_length=64, pattern=LINE, description="The object's id.")]
Day = Annotated[date | None, Query(description="From this day (UTC), inclusive.")]
UntilDay = Annotated[date | None, Query(description="Up to this day (UTC), inclusive.")]


@dataclass(frozen=True)
class Filters:
    action: str | None
    actor: str | None
    object_type: str | None
    object_id: str | None
    since: date | None
    until: date | None

    def service_args(self) -> dict[str, Any]:
        """The filters as ``list_events`` takes them (days as UTC times, ``until`` inclusive)."""
        return {
            "action": self.action,
            "actor": self.actor,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "since": _start(self.since),
            "until": _start(self.until + timedelta(days=1))
            if self.until and self.until < date.max
            else None,
        }

    def query(self) -> str:
        values = {
            "action": self.action,
            "actor": self.actor,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return urlencode({k: v for k, v in values.items() if v})


def _start(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def _blank(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def _day(value: str | None) -> date | None:
    """A page's date field: empty is no bound; a malformed one is refused by the service."""
    value = _blank(value)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        from safeeye.errors import ValidationError

        raise ValidationError("a date is written YYYY-MM-DD") from None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    me: Auditor,
    services: ServicesFor,
    action: Action = None,
    actor: ActorName = None,
    object_type: ObjectType = None,
    object_id: ObjectId = None,
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> HTMLResponse:
    filters = Filters(
        _blank(action),
        _blank(actor),
        _blank(object_type),
        _blank(object_id),
        _day(since),
        _day(until),
    )
    with services.work(read_only=True) as work:
        verified = last_verification(work)
        page = list_events(work, **filters.service_args(), limit=limit, offset=offset)
    return render(request, "audit.html", {"page": page, "filters": filters, "verified": verified})


@router.post("/audit/verify", response_model=None)
def audit_verify_form(me: Auditor, services: ServicesFor) -> RedirectResponse:
    """Verify the whole chain now; the audit page then shows the result at its top."""
    services.call(verify_and_record)
    return RedirectResponse("/audit?verified=1", 303)


@api.get("/audit/events")
def audit_events_api(
    me: Auditor,
    services: ServicesFor,
    action: Action = None,
    actor: ActorName = None,
    object_type: ObjectType = None,
    object_id: ObjectId = None,
    since: Day = None,
    until: UntilDay = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> EventPage:
    """Audit events, newest first (details less anything sealed under a case key)."""
    filters = Filters(action, actor, object_type, object_id, since, until)
    return services.call(
        list_events, **filters.service_args(), limit=limit, offset=offset, read_only=True
    )


@api.post("/audit/verify")
def audit_verify_api(me: Auditor, services: ServicesFor) -> Verification:
    """Verify the whole chain and the signed checkpoints now (recorded in the log)."""
    return services.call(verify_and_record)
