"""Deletion requests and batches: drafts to approve and send, state, deadline, evidence, the
recipients' answers.

Approving a batch makes it ready; it is sent by the ``dispatch_batch`` task, never inside the
request: handed to the application's runner when one is set (``app.state.runner``), else picked
up by the follow-up loop that ``safeeye serve`` runs (or the Celery scheduler).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from safeeye.db.states import BatchStatus, NoticeStatus
from safeeye.errors import ConflictError, ValidationError
from safeeye.takedown.dispatch import BatchSummary, approve_batch
from safeeye.takedown.drafting import draft_notices
from safeeye.takedown.follow_up import record_answer
from safeeye.takedown.reports import (
    MAX_PAGE,
    BatchDetail,
    BatchPage,
    NoticeDetail,
    NoticePage,
    batch_detail,
    batches_page,
    notice_detail,
    notices_page,
)
from safeeye.web.auth import Principal, ServicesFor, require_role
from safeeye.web.rendering import render
from safeeye.work import Role

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["notices"])

Reader = Annotated[Principal, Depends(require_role(Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR))]
Reviewer = Annotated[Principal, Depends(require_role(Role.REVIEWER))]

MAX_ID = 2**31 - 1
NoticeId = Annotated[int, Path(ge=1, le=MAX_ID, description="The notice's id.")]
BatchId = Annotated[int, Path(ge=1, le=MAX_ID, description="The batch's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many rows.")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Rows to skip.")]
NoticeState = Literal[tuple(s.value for s in NoticeStatus)]  # type: ignore[valid-type]
BatchState = Literal[tuple(s.value for s in BatchStatus)]  # type: ignore[valid-type]
AnswerKind = Literal["acknowledged", "removed", "refused", "more_info", "other"]
#: What a case code and a recipient key may hold (anything else names nothing: refused early,
#: so no control character ever reaches the database).
CASE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$"
#: Free text: any character but NUL (PostgreSQL keeps no NUL in text).
TEXT_PATTERN = r"^[^\x00]*$"
CaseCode = Annotated[
    str | None, Query(max_length=64, pattern=CASE_PATTERN, description="A case code.")
]
RecipientKey = Annotated[
    str | None, Query(max_length=64, pattern=KEY_PATTERN, description="A recipient's key.")
]
#: The answers a reviewer may record, in the order the form offers them.
ANSWERS: tuple[str, ...] = ("removed", "refused", "acknowledged", "more_info", "other")


@dataclass(frozen=True)
class Filters:
    """What narrows the notices list (the query string, as the page keeps it in its links)."""

    state: str | None
    case: str | None
    recipient: str | None
    overdue: bool

    def query(self, **extra: Any) -> str:
        from urllib.parse import urlencode

        values: dict[str, Any] = {
            "state": self.state,
            "case": self.case,
            "recipient": self.recipient,
            "overdue": 1 if self.overdue else None,
            **extra,
        }
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def _blank(value: str | None) -> str | None:
    """A form's empty field is no filter."""
    return value.strip() or None if value is not None else None


# -- pages -------------------------------------------------------------------------------------


@router.get("/notices", response_class=HTMLResponse)
def notices_list_page(
    request: Request,
    me: Reader,
    services: ServicesFor,
    state: Annotated[str | None, Query(max_length=20)] = None,
    case: Annotated[str | None, Query(max_length=64, pattern=r"^$|" + CASE_PATTERN)] = None,
    recipient: Annotated[str | None, Query(max_length=64, pattern=r"^$|" + KEY_PATTERN)] = None,
    overdue: Annotated[bool, Query()] = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> HTMLResponse:
    filters = Filters(_blank(state), _blank(case), _blank(recipient), overdue)
    page = services.call(
        notices_page,
        status=filters.state,
        case=filters.case,
        recipient=filters.recipient,
        overdue=filters.overdue,
        limit=limit,
        offset=offset,
        read_only=True,
    )
    drafted = request.query_params.get("drafted")
    return render(
        request,
        "notices.html",
        {
            "page": page,
            "filters": filters,
            "states": [s.value for s in NoticeStatus],
            "drafted": drafted if drafted and drafted.isdigit() else None,
            "refusal": None,
        },
    )


@router.post("/notices/draft", response_class=HTMLResponse, response_model=None)
def notices_draft_form(
    request: Request, me: Reviewer, services: ServicesFor
) -> HTMLResponse | RedirectResponse:
    """Draft notices for every confirmed match that still needs them; they wait in draft
    batches for a reviewer's approval."""
    try:
        report = services.call(draft_notices)
    except (ValidationError, ConflictError) as refusal:
        page = services.call(notices_page, read_only=True)
        context = {
            "page": page,
            "filters": Filters(None, None, None, False),
            "states": [s.value for s in NoticeStatus],
            "drafted": None,
            "refusal": refusal.message,
        }
        return render(request, "notices.html", context, status_code=422)
    return RedirectResponse(f"/batches?state=draft&drafted={len(report.notices)}", 303)


@router.get("/notices/{notice_id}", response_class=HTMLResponse)
def notice_page(
    request: Request, notice_id: NoticeId, me: Reader, services: ServicesFor
) -> HTMLResponse:
    detail = services.call(notice_detail, notice_id, read_only=True)
    return render(request, "notice.html", _notice_context(detail))


def _notice_context(detail: NoticeDetail, **extra: Any) -> dict[str, Any]:
    return {"n": detail, "answers": ANSWERS, "refusal": None, "kind": None, "reason": "", **extra}


@router.post("/notices/{notice_id}/answers", response_class=HTMLResponse, response_model=None)
def notice_answer_form(
    request: Request,
    notice_id: NoticeId,
    me: Reviewer,
    services: ServicesFor,
    kind: Annotated[str, Form(max_length=20)] = "",
    reason: Annotated[str, Form(max_length=4000, pattern=TEXT_PATTERN)] = "",
) -> HTMLResponse | RedirectResponse:
    """Record what the recipient answered (a removal is then verified by a recheck)."""
    try:
        services.call(record_answer, notice_id, kind, reason.strip() or None)
    except ValidationError as refusal:
        detail = services.call(notice_detail, notice_id, read_only=True)
        context = _notice_context(detail, refusal=refusal.message, kind=kind, reason=reason)
        return render(request, "notice.html", context, status_code=422)
    return RedirectResponse(f"/notices/{notice_id}?answered=1", 303)


@router.get("/batches", response_class=HTMLResponse)
def batches_list_page(
    request: Request,
    me: Reader,
    services: ServicesFor,
    state: Annotated[str | None, Query(max_length=20)] = None,
    recipient: Annotated[str | None, Query(max_length=64, pattern=r"^$|" + KEY_PATTERN)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> HTMLResponse:
    state, recipient = _blank(state), _blank(recipient)
    page = services.call(
        batches_page, status=state, recipient=recipient, limit=limit, offset=offset, read_only=True
    )
    drafted = request.query_params.get("drafted")
    return render(
        request,
        "batches.html",
        {
            "page": page,
            "state": state,
            "recipient": recipient,
            "states": [s.value for s in BatchStatus],
            "drafted": drafted if drafted and drafted.isdigit() else None,
        },
    )


@router.get("/batches/{batch_id}", response_class=HTMLResponse)
def batch_page(
    request: Request,
    batch_id: BatchId,
    me: Reader,
    services: ServicesFor,
    limit: Limit = 50,
    offset: Offset = 0,
) -> HTMLResponse:
    detail = services.call(batch_detail, batch_id, limit=limit, offset=offset, read_only=True)
    return render(request, "batches_detail.html", {"b": detail, "refusal": None})


@router.post("/batches/{batch_id}/approve", response_class=HTMLResponse, response_model=None)
def batch_approve_form(
    request: Request, batch_id: BatchId, me: Reviewer, services: ServicesFor
) -> HTMLResponse | RedirectResponse:
    """Approve the batch and have it sent (by the runner, or by the follow-up loop)."""
    try:
        services.call(approve_batch, batch_id)
    except ConflictError as refusal:
        detail = services.call(batch_detail, batch_id, read_only=True)
        context = {"b": detail, "refusal": refusal.message}
        return render(request, "batches_detail.html", context, status_code=409)
    _send_later(request, batch_id)
    return RedirectResponse(f"/batches/{batch_id}?approved=1", 303)


def _send_later(request: Request, batch_id: int) -> None:
    """Hand the approved batch to the application's runner when it has one; otherwise the
    follow-up loop finds it (approved, not sent) on its next round."""
    runner = getattr(request.app.state, "runner", None)
    if runner is not None:
        runner.submit("dispatch_batch", batch_id)


# -- API ---------------------------------------------------------------------------------------


class AnswerIn(BaseModel):
    """What a recipient answered about a notice."""

    kind: AnswerKind
    reason: str | None = Field(default=None, max_length=4000, pattern=TEXT_PATTERN)


class AnswerOut(BaseModel):
    notice: int
    answer: str


class DraftIn(BaseModel):
    """Which confirmed matches to draft notices for (all that need them when neither is given)."""

    case: str | None = Field(default=None, max_length=64, pattern=CASE_PATTERN)
    match_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=1000
    )
    evidence: bool = True


class DraftOut(BaseModel):
    notices: list[int]
    batches: list[int]
    already: int
    skipped_allowed: int


@api.get("/notices")
def notices_api(
    me: Reader,
    services: ServicesFor,
    state: Annotated[NoticeState | None, Query()] = None,
    case: CaseCode = None,
    recipient: RecipientKey = None,
    batch: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    overdue: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> NoticePage:
    """Notices, newest first, narrowed by state, case, recipient, batch, or the overdue ones."""
    return services.call(
        notices_page,
        status=state,
        case=case,
        recipient=recipient,
        batch=batch,
        overdue=overdue,
        limit=limit,
        offset=offset,
        read_only=True,
    )


@api.post("/notices/draft")
def notices_draft_api(body: DraftIn, me: Reviewer, services: ServicesFor) -> DraftOut:
    """Draft notices for confirmed matches (in draft batches, to approve)."""
    report = services.call(
        draft_notices, case=body.case, match_ids=body.match_ids, evidence=body.evidence
    )
    return DraftOut(
        notices=[n.id for n in report.notices],
        batches=report.batches,
        already=report.already,
        skipped_allowed=report.skipped_allowed,
    )


@api.get("/notices/{notice_id}")
def notice_api(notice_id: NoticeId, me: Reader, services: ServicesFor) -> NoticeDetail:
    """One notice: its story, deadline, recipient, evidence, answers and text."""
    return services.call(notice_detail, notice_id, read_only=True)


@api.post("/notices/{notice_id}/answers")
def notice_answer_api(
    notice_id: NoticeId, body: AnswerIn, me: Reviewer, services: ServicesFor
) -> AnswerOut:
    """Record what the recipient answered."""
    services.call(record_answer, notice_id, body.kind, body.reason or None)
    return AnswerOut(notice=notice_id, answer=body.kind)


@api.get("/batches")
def batches_api(
    me: Reader,
    services: ServicesFor,
    state: Annotated[BatchState | None, Query()] = None,
    recipient: RecipientKey = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> BatchPage:
    """Batches, newest first, with their recipients and how many notices each holds."""
    return services.call(
        batches_page, status=state, recipient=recipient, limit=limit, offset=offset, read_only=True
    )


@api.get("/batches/{batch_id}")
def batch_api(
    batch_id: BatchId, me: Reader, services: ServicesFor, limit: Limit = 50, offset: Offset = 0
) -> BatchDetail:
    """One batch, its notices by state, and a page of them."""
    return services.call(batch_detail, batch_id, limit=limit, offset=offset, read_only=True)


@api.post("/batches/{batch_id}/approve")
def batch_approve_api(
    request: Request, batch_id: BatchId, me: Reviewer, services: ServicesFor
) -> BatchSummary:
    """Approve a draft batch; it is then sent by the runner or the follow-up loop."""
    summary = services.call(approve_batch, batch_id)
    _send_later(request, batch_id)
    return summary
