"""The victim's side, without an account: the SOS report form and the status page (tracking code
and PIN); and the counselors' intake list of what came in through them.

The public pages act as ``safeeye.intake.PUBLIC`` (no role); the service checks the code and
PIN, throttles guesses and reports, and keeps nothing in the clear. The code and PIN travel only
in POST bodies, never in a URL, and no answer redirects with them: the status page is the
answer of the POST that sent them. Its forms (withdraw consent, ask for contact) carry a
short-lived grant bound to this browser's CSRF secret instead of the PIN (docs/web-public.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from safeeye.errors import ConflictError, NotFoundError, ValidationError
from safeeye.intake import (
    PUBLIC,
    IntakeItem,
    IntakePage,
    IntakeThrottled,
    NotRecognised,
    Photo,
    Progress,
    Report,
    accept_intake,
    list_intake,
    mark_contact_handled,
    report_status,
    request_contact,
    submit_report,
    withdraw_consent,
)
from safeeye.intake.service import (
    MAX_CONTACT_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_NOTE_CHARS,
    MAX_PAGE,
    MAX_PHOTOS,
    MAX_URLS,
)
from safeeye.web import csrf
from safeeye.web.auth import Principal, ServicesFor, client_of, require_role
from safeeye.web.rendering import page_language, render
from safeeye.work import Role

if TYPE_CHECKING:
    from safeeye.app import SafeEye

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["intake"])

Counselor = Annotated[Principal, Depends(require_role(Role.COUNSELOR))]
CaseCode = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$", max_length=64)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
#: The public pages are never indexed (base.html says so too).
NOINDEX = {"X-Robots-Tag": "noindex, nofollow"}
#: Room for 50 long URLs, one a line; the service checks each.
URLS_CHARS = MAX_URLS * 2100


# -- the SOS form ------------------------------------------------------------------------------


@router.get("/sos", response_class=HTMLResponse)
def sos_page(request: Request) -> HTMLResponse:
    return _sos_form(request)


@router.post("/sos", response_class=HTMLResponse)
def sos_submit(
    request: Request,
    reporter: Annotated[str, Form(max_length=16)] = "",
    urls: Annotated[str, Form(max_length=URLS_CHARS)] = "",
    consent_face_matching: Annotated[bool, Form()] = False,
    consent_hash_sharing: Annotated[bool, Form()] = False,
    contact: Annotated[str, Form(max_length=MAX_CONTACT_CHARS * 2)] = "",
    note: Annotated[str, Form(max_length=MAX_NOTE_CHARS * 2)] = "",
    photos: Annotated[list[UploadFile], File()] = [],  # noqa: B006 (FastAPI copies defaults)
) -> HTMLResponse:
    """On success the tracking code and PIN, shown this once (as this POST's answer)."""
    given = [photo for photo in photos if photo.filename]
    report = Report(
        reporter=reporter,
        urls=urls,
        consent_face_matching=consent_face_matching,
        consent_hash_sharing=consent_hash_sharing,
        contact=contact,
        note=note,
        language=page_language(request),
        photos=[Photo(photo.file) for photo in given],
    )
    try:
        receipt = _safe(request).call(PUBLIC, submit_report, report, client_of(request))
    except ValidationError as refusal:
        return _sos_form(request, report, refusal.code, status_code=422)
    except IntakeThrottled as refusal:
        headers = {**NOINDEX, "Retry-After": str(refusal.retry_after)}
        return _sos_form(request, report, "throttled", status_code=429, headers=headers)
    finally:
        for photo in photos:
            photo.file.close()
    return render(request, "public_sos_done.html", {"receipt": receipt}, headers=NOINDEX)


def _sos_form(
    request: Request,
    report: Report | None = None,
    failure: str | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    context = {
        "form": report or Report(reporter=""),
        "failure": failure,
        "max_urls": MAX_URLS,
        "max_photos": MAX_PHOTOS,
        "max_contact": MAX_CONTACT_CHARS,
        "max_note": MAX_NOTE_CHARS,
    }
    return render(
        request, "public_sos.html", context, status_code=status_code, headers=headers or NOINDEX
    )


# -- the status page ---------------------------------------------------------------------------


@router.get("/status", response_class=HTMLResponse)
def status_page(request: Request) -> HTMLResponse:
    return _status_form(request)


@router.post("/status", response_class=HTMLResponse)
def status_check(
    request: Request,
    code: Annotated[str, Form(max_length=64)] = "",
    pin: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    try:
        progress = _safe(request).call(
            PUBLIC,
            report_status,
            code,
            pin,
            client=client_of(request),
            binding=csrf.page_token(request),
        )
    except (NotRecognised, IntakeThrottled) as refusal:
        return _status_refused(request, refusal)
    return _progress_page(request, progress)


@router.post("/status/withdraw", response_class=HTMLResponse)
def status_withdraw(
    request: Request,
    grant: Annotated[str, Form(max_length=300)] = "",
    confirmed: Annotated[bool, Form()] = False,
) -> HTMLResponse:
    """First a confirmation page, then (``confirmed``) the withdrawal."""
    if not confirmed:
        return render(request, "public_status_withdraw.html", {"grant": grant}, headers=NOINDEX)
    try:
        progress = _safe(request).call(
            PUBLIC, withdraw_consent, grant=grant, binding=csrf.page_token(request)
        )
    except (NotRecognised, IntakeThrottled) as refusal:
        return _status_refused(request, refusal, expired=True)
    return _progress_page(request, progress, done="withdrawn")


@router.post("/status/contact", response_class=HTMLResponse)
def status_contact(
    request: Request,
    grant: Annotated[str, Form(max_length=300)] = "",
    message: Annotated[str, Form(max_length=MAX_MESSAGE_CHARS * 2)] = "",
) -> HTMLResponse:
    try:
        progress = _safe(request).call(
            PUBLIC, request_contact, message=message, grant=grant, binding=csrf.page_token(request)
        )
    except (NotRecognised, IntakeThrottled) as refusal:
        return _status_refused(request, refusal, expired=True)
    except ValidationError:
        return _status_refused(request, None, expired=False, failure="long")
    return _progress_page(request, progress, done="contact")


def _status_form(
    request: Request,
    failure: str | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        "public_status.html",
        {"failure": failure},
        status_code=status_code,
        headers=headers or NOINDEX,
    )


def _status_refused(
    request: Request,
    refusal: NotRecognised | IntakeThrottled | None,
    *,
    expired: bool = False,
    failure: str | None = None,
) -> HTMLResponse:
    """The code-and-PIN form again, with one message whatever was wrong."""
    if isinstance(refusal, IntakeThrottled):
        headers = {**NOINDEX, "Retry-After": str(refusal.retry_after)}
        return _status_form(request, "throttled", status_code=429, headers=headers)
    if failure is not None:
        return _status_form(request, failure, status_code=422)
    return _status_form(request, "expired" if expired else "not_recognised", status_code=401)


def _progress_page(request: Request, progress: Progress, done: str | None = None) -> HTMLResponse:
    zone = ZoneInfo(_safe(request).settings.workday_timezone)

    def day(moment: datetime | None) -> str | None:
        return moment.astimezone(zone).strftime("%Y-%m-%d") if moment else None

    context = {
        "progress": progress,
        "reported_on": day(progress.reported_at),
        "updated_on": day(progress.last_update_at),
        "withdrawn_on": day(progress.consent_withdrawn_at),
        "contact_on": day(progress.contact_requested_at),
        "done": done,
        "max_message": MAX_MESSAGE_CHARS,
    }
    return render(request, "public_status_progress.html", context, headers=NOINDEX)


# -- the counselors' intake list ---------------------------------------------------------------


@router.get("/intake", response_class=HTMLResponse)
def intake_page(
    request: Request,
    me: Counselor,
    services: ServicesFor,
    limit: Limit = 50,
    offset: Offset = 0,
    accepted: Annotated[str | None, Query(max_length=64)] = None,
    contacted: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    return _intake_list(request, services, limit, offset, accepted=accepted, contacted=contacted)


@router.post("/intake/{case_code}/accept", dependencies=[Depends(require_role(Role.COUNSELOR))])
def intake_accept(request: Request, services: ServicesFor, case_code: CaseCode) -> Response:
    try:
        services.call(accept_intake, case_code)
    except (ConflictError, NotFoundError) as refusal:
        return _intake_list(request, services, 50, 0, refused=refusal.code, status_code=409)
    return RedirectResponse(f"/intake?{urlencode({'accepted': case_code})}", status_code=303)


@router.post(
    "/intake/{case_code}/contact-handled",
    dependencies=[Depends(require_role(Role.COUNSELOR))],
)
def intake_contact_handled(
    request: Request, services: ServicesFor, case_code: CaseCode
) -> Response:
    try:
        services.call(mark_contact_handled, case_code)
    except (ConflictError, NotFoundError) as refusal:
        return _intake_list(request, services, 50, 0, refused=refusal.code, status_code=409)
    return RedirectResponse(f"/intake?{urlencode({'contacted': case_code})}", status_code=303)


def _intake_list(
    request: Request,
    services: ServicesFor,
    limit: int,
    offset: int,
    *,
    accepted: str | None = None,
    contacted: str | None = None,
    refused: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    page = services.call(list_intake, limit=limit, offset=offset, read_only=True)
    context: dict[str, Any] = {
        "page": page,
        "accepted": accepted,
        "contacted": contacted,
        "refused": refused,
    }
    return render(request, "intake.html", context, status_code=status_code)


# -- API ---------------------------------------------------------------------------------------


# The service's own dataclasses are the answers' models (FastAPI reads them as they are).


@api.get("/intake", response_model=IntakePage)
def api_intake(me: Counselor, services: ServicesFor, limit: Limit = 50, offset: Offset = 0) -> Any:
    """SOS reports, the latest event first (a report, a withdrawn consent, a contact request)."""
    return services.call(list_intake, limit=limit, offset=offset, read_only=True)


@api.post("/intake/{case_code}/accept", response_model=IntakeItem)
def api_intake_accept(me: Counselor, services: ServicesFor, case_code: CaseCode) -> Any:
    """Take the SOS case on: pending -> open (409 when it is not pending)."""
    return services.call(accept_intake, case_code)


@api.post("/intake/{case_code}/contact-handled", response_model=IntakeItem)
def api_intake_contact_handled(me: Counselor, services: ServicesFor, case_code: CaseCode) -> Any:
    """The victim's request for contact was handled (409 when none is waiting)."""
    return services.call(mark_contact_handled, case_code)


def _safe(request: Request) -> SafeEye:
    return request.app.state.safe  # type: ignore[no-any-return]
