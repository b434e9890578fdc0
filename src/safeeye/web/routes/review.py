"""The review queue: blurred previews, face crops side by side, confirm / reject / escalate, one by
one or in bulk; the same under /api/v1 (``review/queue``, ``matches/...``).

Reviewers (and administrators) only. Every picture is made in memory at the person's blur
level (greyscale unless asked otherwise); ``reveal`` asks for it sharp, and each sharp picture
is a ``media.revealed`` audit event (``review.previews``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Body, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from safeeye.cases.service import CODE_PATTERN
from safeeye.errors import ConflictError, ValidationError
from safeeye.review.decisions import Decision, RejectReason, confirm, escalate, reject, reopen
from safeeye.review.exposure import RevealCount, reveals_today
from safeeye.review.previews import (
    Picture,
    face_crop,
    frame_strip,
    match_frame,
    match_preview,
)
from safeeye.review.queue import (
    PAGE,
    MatchDetail,
    QueuePage,
    match_detail,
    next_in_queue,
    review_queue,
)
from safeeye.takedown.model import Category
from safeeye.web.auth import Principal, Services, ServicesFor, require_role
from safeeye.web.errors import status_of
from safeeye.web.rendering import render
from safeeye.work import Role

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["review"])

Reviewer = Annotated[Principal, Depends(require_role(Role.REVIEWER))]

#: Ids are database integers: anything larger is no match (and never reaches the database).
MAX_ID = 2**31 - 1
MAX_OFFSET = 10_000_000
MAX_BULK = 500
MAX_NOTE = 2000
MatchId = Annotated[int, Path(ge=1, le=MAX_ID, description="The match's id.")]
QueueStatus = Literal["pending", "escalated"]
#: A case code as ``cases`` makes them, or nothing (an empty filter field): no NUL reaches
#: PostgreSQL, which keeps none in text.
MAYBE_CODE = rf"^({CODE_PATTERN.pattern.strip('^$')})?$"
CaseCode = Annotated[
    str | None, Query(max_length=64, pattern=MAYBE_CODE, description="Only this case's matches.")
]
CaseField = Annotated[str, Form(max_length=64, pattern=MAYBE_CODE)]
Reveal = Annotated[
    bool, Query(description="The picture sharp (each sharp picture is an audit event).")
]
Greyscale = Annotated[bool, Query(description="A blurred picture in greyscale.")]
FaceSide = Literal["reference", "found"]
FrameNumber = Annotated[int, Path(ge=0, le=99, description="The frame's place in the strip.")]
CategoryName = Literal["illegally_filmed", "synthetic", "minor"]
ReasonName = Literal["not_victim", "not_sexual", "own_publication", "other"]
BulkDecision = Literal["confirm", "reject", "escalate"]
#: A picture is made for one look and kept nowhere (the middleware says ``no-store`` too).
JPEG_HEADERS = {"Cache-Control": "no-store"}


# -- what the pages and the API share ------------------------------------------------------


def _picture(picture: Picture) -> Response:
    return Response(picture.jpeg, media_type="image/jpeg", headers=JPEG_HEADERS)


def _decide(
    services: Services,
    match_ids: list[int],
    decision: str,
    category: str | None,
    reason: str | None,
    note: str | None,
) -> list[Decision]:
    """One decision on ``match_ids``, through the decisions service (which checks the rest)."""
    note = (note or "").strip() or None
    if decision == "confirm":
        return services.call(confirm, match_ids, note, category or Category.ILLEGALLY_FILMED)
    if decision == "reject":
        return services.call(reject, match_ids, reason or "", note)
    if decision == "escalate":
        return services.call(escalate, match_ids, note)
    if decision == "reopen":
        return services.call(reopen, match_ids, note)
    raise ValidationError("the decision is confirm, reject, escalate or reopen")


def _queue_query(case: str | None, status: str, offset: int = 0) -> str:
    """The query string that keeps a reviewer in the same queue (case, status, page)."""
    params: dict[str, str | int] = {}
    if case:
        params["case"] = case
    if status != "pending":
        params["status"] = status
    if offset:
        params["offset"] = offset
    return f"?{urlencode(params)}" if params else ""


# -- pages ---------------------------------------------------------------------------------


def _queue_page(
    request: Request,
    services: Services,
    *,
    case: str | None,
    status: str,
    offset: int,
    refusal: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with services.work(read_only=True) as work:
        page: QueuePage = review_queue(work, case=case, status=status, limit=PAGE, offset=offset)
        looks: RevealCount = reveals_today(work)
    context = {
        "page": page,
        "looks": looks,
        "case": case or "",
        "status": status,
        "offset": offset,
        "limit": PAGE,
        "refusal": refusal,
        "queue_query": _queue_query(case, status),
        "previous_query": _queue_query(case, status, max(0, offset - PAGE)),
        "next_query": _queue_query(case, status, offset + PAGE),
    }
    return render(request, "review.html", context, status_code=status_code)


@router.get("/review", response_class=HTMLResponse)
def queue_page(
    request: Request,
    me: Reviewer,
    services: ServicesFor,
    case: CaseCode = None,
    status: QueueStatus = "pending",
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> HTMLResponse:
    """The queue, a page of ``PAGE`` at a time, what hurts most first."""
    return _queue_page(request, services, case=case or None, status=status, offset=offset)


@router.post("/review/decisions")
def bulk_decision(
    request: Request,
    me: Reviewer,
    services: ServicesFor,
    decision: Annotated[BulkDecision, Form()],
    match_id: Annotated[list[Annotated[int, Field(ge=1, le=MAX_ID)]], Form()] = [],  # noqa: B006
    category: Annotated[CategoryName | Literal[""], Form()] = "",
    reason: Annotated[ReasonName | Literal[""], Form()] = "",
    note: Annotated[str, Form(max_length=MAX_NOTE)] = "",
    case: CaseField = "",
    status: Annotated[QueueStatus, Form()] = "pending",
    offset: Annotated[int, Form(ge=0, le=MAX_OFFSET)] = 0,
) -> Response:
    """The checked rows of the queue, confirmed (in a category), rejected (for a reason) or
    escalated together; back to the same queue page."""
    if len(match_id) > MAX_BULK:
        raise ValidationError(f"decide on at most {MAX_BULK} matches at once")
    try:
        _decide(services, match_id, decision, category or None, reason or None, note)
    except (ValidationError, ConflictError) as refusal:
        return _queue_page(
            request,
            services,
            case=case or None,
            status=status,
            offset=offset,
            refusal=refusal.message,
            status_code=status_of(refusal),
        )
    return RedirectResponse(f"/review{_queue_query(case or None, status, offset)}", 303)


def _match_page(
    request: Request,
    services: Services,
    match_id: int,
    *,
    case: str | None,
    status: str,
    reveal: bool = False,
    refusal: str | None = None,
    chosen: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with services.work(read_only=True) as work:
        detail: MatchDetail = match_detail(work, match_id)
        looks: RevealCount = reveals_today(work)
    context = {
        "detail": detail,
        "view": detail.view,
        "strip": frame_strip(detail.view),
        "looks": looks,
        "reveal": reveal,
        "case": case or "",
        "status": status,
        "queue_query": _queue_query(case, status),
        "refusal": refusal,
        "chosen": chosen or {},
        "categories": [c.value for c in Category],
        "reasons": [r.value for r in RejectReason],
    }
    return render(request, "review_match.html", context, status_code=status_code)


@router.get("/review/{match_id}", response_class=HTMLResponse)
def match_page(
    request: Request,
    me: Reviewer,
    services: ServicesFor,
    match_id: MatchId,
    case: CaseCode = None,
    status: QueueStatus = "pending",
    reveal: Reveal = False,
) -> HTMLResponse:
    """One match: the faces side by side, the picture (or a video's frames), blurred unless
    ``reveal``; why it matched; where it was seen; the decision form."""
    return _match_page(request, services, match_id, case=case or None, status=status, reveal=reveal)


@router.post("/review/{match_id}/decision")
def match_decision(
    request: Request,
    me: Reviewer,
    services: ServicesFor,
    match_id: MatchId,
    decision: Annotated[Literal["confirm", "reject", "escalate", "skip"], Form()],
    category: Annotated[CategoryName | Literal[""], Form()] = "",
    reason: Annotated[ReasonName | Literal[""], Form()] = "",
    note: Annotated[str, Form(max_length=MAX_NOTE)] = "",
    case: CaseField = "",
    status: Annotated[QueueStatus, Form()] = "pending",
) -> Response:
    """Decide on one match (or skip it), then the next match in the same queue."""
    if decision != "skip":
        try:
            _decide(services, [match_id], decision, category or None, reason or None, note)
        except (ValidationError, ConflictError) as refusal:
            chosen = {"decision": decision, "category": category, "reason": reason, "note": note}
            return _match_page(
                request,
                services,
                match_id,
                case=case or None,
                status=status,
                refusal=refusal.message,
                chosen=chosen,
                status_code=status_of(refusal),
            )
    following = services.call(
        next_in_queue, match_id, case=case or None, status=status, read_only=True
    )
    where = f"/review/{following}" if following is not None else "/review"
    return RedirectResponse(f"{where}{_queue_query(case or None, status)}", 303)


@router.get("/review/{match_id}/preview.jpg", response_class=Response)
def preview_image(
    me: Reviewer,
    services: ServicesFor,
    match_id: MatchId,
    reveal: Reveal = False,
    greyscale: Greyscale = True,
) -> Response:
    """The matched picture (a video's best frame), blurred unless ``reveal``."""
    picture = services.call(
        match_preview,
        match_id,
        reveal=reveal,
        level=me.blur_level,
        greyscale=greyscale,
        read_only=not reveal,
    )
    return _picture(picture)


@router.get("/review/{match_id}/faces/{side}.jpg", response_class=Response)
def face_image(
    me: Reviewer,
    services: ServicesFor,
    match_id: MatchId,
    side: FaceSide,
    reveal: Reveal = False,
    greyscale: Greyscale = True,
) -> Response:
    """The victim's reference face or the face found, cropped, blurred unless ``reveal``."""
    picture = services.call(
        face_crop,
        match_id,
        side,
        reveal=reveal,
        level=me.blur_level,
        greyscale=greyscale,
        read_only=not reveal,
    )
    return _picture(picture)


@router.get("/review/{match_id}/frames/{number}.jpg", response_class=Response)
def frame_image(
    me: Reviewer,
    services: ServicesFor,
    match_id: MatchId,
    number: FrameNumber,
    reveal: Reveal = False,
    greyscale: Greyscale = True,
) -> Response:
    """Frame ``number`` of a video match's strip, blurred unless ``reveal``."""
    _time, picture = services.call(
        match_frame,
        match_id,
        number,
        reveal=reveal,
        level=me.blur_level,
        greyscale=greyscale,
        read_only=not reveal,
    )
    return _picture(picture)


# -- API -----------------------------------------------------------------------------------


class QueueItemOut(BaseModel):
    match_id: int
    case: str
    minor: bool
    kind: str
    distance: float
    threshold: float | None
    strength: float = Field(description="distance / threshold: 0 is certain, 1 at the threshold")
    sexual_score: float | None
    media_type: str | None
    status: str
    first_seen: str | None
    sightings: int


class QueueOut(BaseModel):
    items: list[QueueItemOut]
    total: int
    offset: int
    limit: int


class FrameOut(BaseModel):
    time: float
    distance: float
    reference_id: int
    box: tuple[int, int, int, int] | None


class MatchViewOut(BaseModel):
    match_id: int
    case: str
    kind: str
    exact: bool
    distance: float
    threshold: float | None
    frame_count: int
    frames: list[FrameOut]
    media_type: str | None
    sexual_score: float | None
    status: str
    why: str = Field(description="The match in one English sentence.")


class SightingOut(BaseModel):
    sighting_id: int
    location: str
    page_url: str | None
    chat: str | None
    message_id: int | None
    first_seen: str
    last_seen: str
    times_seen: int
    http_status: int | None


class MatchOut(BaseModel):
    view: MatchViewOut
    minor: bool
    strip: list[float] = Field(description="A video's frame times, as /frames/{n} serves them.")
    first_seen: str | None
    last_seen: str | None
    sightings_total: int
    sightings: list[SightingOut]


class DecisionIn(BaseModel):
    match_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=MAX_BULK
    )
    decision: Literal["confirm", "reject", "escalate", "reopen"]
    category: CategoryName | None = None
    reason: ReasonName | None = None
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class DecisionOut(BaseModel):
    review_id: int
    match_id: int
    case: str
    decision: str
    reason: str | None
    status: str
    actor: str
    at: str


class RevealsOut(BaseModel):
    username: str
    count: int = Field(description="Unblurred looks since the start of today.")
    limit: int = Field(description="Looks after which a break is suggested.")
    past_limit: bool
    since: str


def _frame(frame: Any) -> FrameOut:
    return FrameOut(
        time=frame.time, distance=frame.distance, reference_id=frame.reference_id, box=frame.box
    )


@api.get("/review/queue", response_model=QueueOut)
def api_queue(
    me: Reviewer,
    services: ServicesFor,
    case: CaseCode = None,
    status: QueueStatus = "pending",
    limit: Annotated[int, Query(ge=1, le=500)] = PAGE,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> QueueOut:
    """Matches waiting for a decision, what hurts most first (a minor's case, then the
    strongest match, the sexual-content score, the newest)."""
    page = services.call(
        review_queue, case=case or None, status=status, limit=limit, offset=offset, read_only=True
    )
    items = [QueueItemOut(**vars(item)) for item in page.items]
    return QueueOut(items=items, total=page.total, offset=page.offset, limit=limit)


@api.get("/matches/{match_id}", response_model=MatchOut)
def api_match(me: Reviewer, services: ServicesFor, match_id: MatchId) -> MatchOut:
    """One match: why it matched (in numbers), its scores, and where the file was seen."""
    detail = services.call(match_detail, match_id, read_only=True)
    view = detail.view
    return MatchOut(
        view=MatchViewOut(
            match_id=view.match_id,
            case=view.case,
            kind=view.kind,
            exact=view.exact,
            distance=view.distance,
            threshold=view.threshold,
            frame_count=view.frame_count,
            frames=[_frame(f) for f in view.frames],
            media_type=view.media_type,
            sexual_score=view.sexual_score,
            status=view.status,
            why=view.why(),
        ),
        minor=detail.minor,
        strip=list(frame_strip(view)),
        first_seen=detail.first_seen,
        last_seen=detail.last_seen,
        sightings_total=detail.sightings_total,
        sightings=[
            SightingOut(
                sighting_id=s.sighting_id,
                location=s.location,
                page_url=s.page_url,
                chat=s.chat,
                message_id=s.message_id,
                first_seen=s.first_seen,
                last_seen=s.last_seen,
                times_seen=s.times_seen,
                http_status=s.http_status,
            )
            for s in detail.sightings
        ],
    )


JPEG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {}}, "description": "A JPEG made for this look."}
}


@api.get("/matches/{match_id}/preview", response_class=Response, responses=JPEG_RESPONSE)
def api_preview(
    me: Reviewer,
    services: ServicesFor,
    match_id: MatchId,
    reveal: Reveal = False,
    greyscale: Greyscale = True,
) -> Response:
    """The matched picture (a video's best frame), blurred at the caller's level unless
    ``reveal``."""
    return preview_image(me, services, match_id, reveal, greyscale)


@api.get("/matches/{match_id}/faces/{side}", response_class=Response, responses=JPEG_RESPONSE)
def api_face(
    me: Reviewer,
    services: ServicesFor,
    match_id: MatchId,
    side: FaceSide,
    reveal: Reveal = False,
    greyscale: Greyscale = True,
) -> Response:
    """The reference face or the face found, cropped, blurred unless ``reveal``."""
    return face_image(me, services, match_id, side, reveal, greyscale)


@api.get("/matches/{match_id}/frames/{number}", response_class=Response, responses=JPEG_RESPONSE)
def api_frame(
    me: Reviewer,
    services: ServicesFor,
    match_id: MatchId,
    number: FrameNumber,
    reveal: Reveal = False,
    greyscale: Greyscale = True,
) -> Response:
    """Frame ``number`` of a video match's strip (times in ``strip``), blurred unless
    ``reveal``."""
    return frame_image(me, services, match_id, number, reveal, greyscale)


@api.post("/matches/decisions", response_model=list[DecisionOut])
def api_decisions(
    me: Reviewer, services: ServicesFor, body: Annotated[DecisionIn, Body()]
) -> list[DecisionOut]:
    """Confirm (in a category), reject (for a reason; ``other`` needs a note), escalate or
    reopen the matches together."""
    decisions = _decide(
        services, body.match_ids, body.decision, body.category, body.reason, body.note
    )
    return [DecisionOut(**vars(d)) for d in decisions]


@api.get("/review/reveals", response_model=RevealsOut)
def api_reveals(me: Reviewer, services: ServicesFor) -> RevealsOut:
    """The caller's unblurred looks today and the number after which a break is suggested."""
    looks = services.call(reveals_today, read_only=True)
    return RevealsOut(
        username=looks.username,
        count=looks.count,
        limit=looks.limit,
        past_limit=looks.past_limit,
        since=looks.since,
    )
