"""Cases: list, create, consent, face photos and known media, the victim's allow-list, matches and
notices per case, purge.

The routes only move requests to the services of ``safeeye.cases`` and ``safeeye.review`` and
back: every rule (who may, what a code looks like, what a purge destroys) is the services'. An
upload is written to a private temporary file of this process (``safeeye.tempfiles``) for as
long as the service reads it, and removed at once afterwards.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from safeeye.cases.details import (
    CaseDetail,
    CasePage,
    CaseRow,
    case_detail,
    case_notices,
    list_case_rows,
    outcome_kind,
    purge_preview,
)
from safeeye.cases.service import (
    CODE_PATTERN,
    MAX_CONSENT_CHARS,
    PurgeReport,
    ReferenceOutcome,
    add_faces,
    add_known,
    create_case,
    purge_case,
    record_consent,
    set_minor,
    withdraw_consent,
)
from safeeye.errors import ConflictError, ValidationError
from safeeye.ingest.sightings import MAX_LIMIT
from safeeye.review.decisions import (
    AllowedPlaceSummary,
    allow_place,
    list_allowed,
    remove_allowed,
)
from safeeye.review.matches import MatchSummary, list_matches
from safeeye.takedown.drafting import NoticeSummary
from safeeye.tempfiles import process_temp_dir
from safeeye.web.auth import Principal, Services, ServicesFor, require_role
from safeeye.web.errors import status_of
from safeeye.web.rendering import render
from safeeye.work import Role

#: The largest row id (the id columns are 32-bit integers on PostgreSQL).
MAX_ID = 2**31 - 1
router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["cases"])

#: Who reads cases, and who changes them (an administrator holds every role).
READERS = (Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR)
Reader = Annotated[Principal, Depends(require_role(*READERS))]
Counselor = Annotated[Principal, Depends(require_role(Role.COUNSELOR))]

#: A case code as a path segment: what ``create_case`` accepts (the service checks it too).
Code = Annotated[str, Path(pattern=CODE_PATTERN.pattern, min_length=2, max_length=64)]
StatusFilter = Annotated[
    str | None,
    Query(pattern=r"^[a-z_]{0,16}$", description="Only cases in this state (empty: all)."),
]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Before = Annotated[int | None, Query(ge=1, le=MAX_ID)]
PlaceKindName = Literal["url", "host", "account"]
#: At most this many files in one upload (each is reported on its own).
MAX_FILES = 50
MATCHES_SHOWN = 20
NOTICES_SHOWN = 20
OUTCOMES = ("added", "duplicate", "no_face", "not_a_photo", "unreadable")
_RESULT = re.compile(r"^[a-z_]+(,[a-z_]+){0,49}$")
_UNSAFE_NAME = re.compile(r"[^\w.\- ]")


# -- pages -----------------------------------------------------------------------------------


@router.get("/cases", response_class=HTMLResponse)
def cases_page(
    request: Request,
    me: Reader,
    services: ServicesFor,
    status: StatusFilter = None,
    limit: Limit = 50,
    offset: Offset = 0,
    purged: Annotated[str | None, Query(pattern=CODE_PATTERN.pattern, max_length=64)] = None,
    references: Annotated[int | None, Query(ge=0)] = None,
) -> HTMLResponse:
    return _list_page(
        request,
        services,
        status=status or None,  # the filter form's "all" sends an empty value
        limit=limit,
        offset=offset,
        purged=(purged, references) if purged else None,
    )


@router.post("/cases", dependencies=[Depends(require_role(Role.COUNSELOR))])
def new_case(
    request: Request,
    services: ServicesFor,
    code: Annotated[str, Form(max_length=64)],
    consent_basis: Annotated[str, Form(max_length=MAX_CONSENT_CHARS)] = "",
    minor: Annotated[bool, Form()] = False,
) -> Response:
    code = code.strip()
    try:
        services.call(create_case, code, consent_basis.strip() or None, minor=minor)
    except (ValidationError, ConflictError) as refusal:
        form = {"code": code, "consent_basis": consent_basis, "minor": minor}
        return _list_page(request, services, refusal=refusal, form=form)
    return RedirectResponse(f"/cases/{code}?done=created", status_code=303)


@router.get("/cases/{code}", response_class=HTMLResponse)
def case_page(
    request: Request,
    me: Reader,
    services: ServicesFor,
    code: Code,
    matches_before: Before = None,
    notices_before: Before = None,
    done: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}$")] = None,
    kind: Annotated[Literal["face", "known"] | None, Query()] = None,
    result: Annotated[str | None, Query(max_length=800)] = None,
) -> HTMLResponse:
    outcomes = None
    if kind and result and _RESULT.match(result):
        outcomes = [r for r in result.split(",") if r in OUTCOMES]
    return _case_page(
        request,
        services,
        code,
        matches_before=matches_before,
        notices_before=notices_before,
        done=done,
        uploaded=(kind, outcomes) if outcomes else None,
    )


@router.post("/cases/{code}/consent", dependencies=[Depends(require_role(Role.COUNSELOR))])
def consent_form(
    request: Request,
    services: ServicesFor,
    code: Code,
    basis: Annotated[str, Form(max_length=MAX_CONSENT_CHARS)] = "",
) -> Response:
    try:
        services.call(record_consent, code, basis)
    except (ValidationError, ConflictError) as refusal:
        return _case_page(request, services, code, refusal=refusal, section="consent")
    return _back(code, done="consent")


@router.post("/cases/{code}/consent/withdraw", dependencies=[Depends(require_role(Role.COUNSELOR))])
def consent_withdraw_form(
    request: Request,
    services: ServicesFor,
    code: Code,
    confirmed: Annotated[bool, Form()] = False,
) -> Response:
    """Withdraws the recorded consent once the counselor ticked that the victim asked for it."""
    if not confirmed:
        refusal = ValidationError("tick the box to say the victim withdrew her consent")
        return _case_page(request, services, code, refusal=refusal, section="withdraw")
    try:
        services.call(withdraw_consent, code)
    except ConflictError as refusal:
        return _case_page(request, services, code, refusal=refusal, section="withdraw")
    return _back(code, done="withdrawn")


@router.post("/cases/{code}/minor", dependencies=[Depends(require_role(Role.COUNSELOR))])
def minor_form(
    services: ServicesFor, code: Code, minor: Annotated[bool, Form()] = False
) -> Response:
    services.call(set_minor, code, minor)
    return _back(code, done="minor")


@router.post("/cases/{code}/faces", dependencies=[Depends(require_role(Role.COUNSELOR))])
def faces_form(
    request: Request,
    services: ServicesFor,
    code: Code,
    files: Annotated[list[UploadFile], File(description="Face photos of the victim.")],
) -> Response:
    outcomes = _upload(request, services, add_faces, code, files)
    return _back(code, kind="face", result=",".join(outcome_kind(o) for o in outcomes))


@router.post("/cases/{code}/known", dependencies=[Depends(require_role(Role.COUNSELOR))])
def known_form(
    request: Request,
    services: ServicesFor,
    code: Code,
    files: Annotated[list[UploadFile], File(description="Known images or videos.")],
) -> Response:
    outcomes = _upload(request, services, add_known, code, files)
    return _back(code, kind="known", result=",".join(outcome_kind(o) for o in outcomes))


@router.post("/cases/{code}/allowlist", dependencies=[Depends(require_role(Role.COUNSELOR))])
def allow_form(
    request: Request,
    services: ServicesFor,
    code: Code,
    kind: Annotated[PlaceKindName, Form()],
    pattern: Annotated[str, Form(max_length=2000)],
) -> Response:
    try:
        _allow(services, code, kind, pattern)
    except (ValidationError, ConflictError) as refusal:
        return _case_page(request, services, code, refusal=refusal, section="allowlist")
    return _back(code, done="allowed")


@router.post(
    "/cases/{code}/allowlist/{place_id}/remove",
    dependencies=[Depends(require_role(Role.COUNSELOR))],
)
def disallow_form(
    services: ServicesFor, code: Code, place_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    services.call(remove_allowed, code, place_id)
    return _back(code, done="removed")


@router.get("/cases/{code}/purge", response_class=HTMLResponse)
def purge_page(request: Request, me: Counselor, services: ServicesFor, code: Code) -> Response:
    preview = services.call(purge_preview, code, read_only=True)
    return render(request, "case_purge.html", {"preview": preview, "refused": False})


@router.post("/cases/{code}/purge", dependencies=[Depends(require_role(Role.COUNSELOR))])
def purge_form(
    request: Request,
    services: ServicesFor,
    code: Code,
    confirm: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    if confirm.strip() != code:
        preview = services.call(purge_preview, code, read_only=True)
        context = {"preview": preview, "refused": True}
        return render(request, "case_purge.html", context, status_code=422)
    report = services.call(purge_case, code)
    query = urlencode({"purged": report.code, "references": report.references})
    return RedirectResponse(f"/cases?{query}", status_code=303)


# -- API -------------------------------------------------------------------------------------


class NewCase(BaseModel):
    code: str = Field(min_length=2, max_length=64, pattern=CODE_PATTERN.pattern)
    consent_basis: str | None = Field(default=None, max_length=MAX_CONSENT_CHARS)
    minor: bool = False


class Consent(BaseModel):
    basis: str = Field(min_length=1, max_length=MAX_CONSENT_CHARS)


class Minor(BaseModel):
    minor: bool


class NewPlace(BaseModel):
    kind: PlaceKindName
    pattern: str = Field(min_length=1, max_length=2000)


class PurgeConfirmation(BaseModel):
    confirm: str = Field(max_length=64, description="The case code, typed again.")


class Uploaded(BaseModel):
    """What became of one uploaded file: ``added``, ``duplicate``, ``no_face``,
    ``not_a_photo`` or ``unreadable`` (``error`` says why, without the file's content)."""

    file: str
    outcome: str
    reference_id: int | None
    note: str | None
    error: str | None


class CaseDetailOut(BaseModel):
    case: CaseRow
    purged_at: str | None
    references: list[dict[str, Any]]
    matches: list[MatchSummary]
    matches_next_before: int | None
    notices: list[NoticeSummary]
    notices_next_before: int | None


@api.get("/cases", response_model=CasePage)
def api_cases(
    me: Reader, services: ServicesFor, status: StatusFilter = None, limit: Limit = 50,
    offset: Offset = 0,
) -> CasePage:  # fmt: skip
    """One page of cases, newest first, with the count of all."""
    return services.call(
        list_case_rows, status=status or None, limit=limit, offset=offset, read_only=True
    )


@api.post("/cases", status_code=201, response_model=CaseRow)
def api_new_case(me: Counselor, services: ServicesFor, body: NewCase) -> CaseRow:
    """Open a case under a pseudonymous code (never a name)."""
    basis = (body.consent_basis or "").strip() or None
    with services.work() as work:
        create_case(work, body.code, basis, minor=body.minor)
        return case_detail(work, body.code).row


@api.get("/cases/{code}", response_model=CaseDetailOut)
def api_case(
    me: Reader,
    services: ServicesFor,
    code: Code,
    matches_limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = MATCHES_SHOWN,
    matches_before: Before = None,
    notices_limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = NOTICES_SHOWN,
    notices_before: Before = None,
) -> CaseDetailOut:
    """The case, one page of its matches and one of its notices (newest first; the next page
    is ``*_before`` the ``*_next_before`` given)."""
    with services.work(read_only=True) as work:
        detail = case_detail(work, code)
        matches = list_matches(work, case=code, limit=matches_limit, before=matches_before)
        notices = case_notices(work, code, limit=notices_limit, before=notices_before)
    return CaseDetailOut(
        case=detail.row,
        purged_at=detail.purged_at,
        references=[asdict(r) for r in detail.references],
        matches=matches,
        matches_next_before=matches[-1].match_id if len(matches) == matches_limit else None,
        notices=notices,
        notices_next_before=notices[-1].id if len(notices) == notices_limit else None,
    )


@api.post("/cases/{code}/consent", response_model=CaseRow)
def api_consent(me: Counselor, services: ServicesFor, code: Code, body: Consent) -> CaseRow:
    """Record the victim's consent (replacing any recorded before)."""
    with services.work() as work:
        record_consent(work, code, body.basis)
        return case_detail(work, code).row


@api.post("/cases/{code}/consent/withdraw", response_model=CaseRow)
def api_consent_withdraw(me: Counselor, services: ServicesFor, code: Code) -> CaseRow:
    """The victim withdrew her consent: her face references are deleted and face matching
    stops (409 when no consent is recorded)."""
    with services.work() as work:
        withdraw_consent(work, code)
        return case_detail(work, code).row


@api.post("/cases/{code}/minor", response_model=CaseRow)
def api_minor(me: Counselor, services: ServicesFor, code: Code, body: Minor) -> CaseRow:
    """Mark the victim as a minor, or not."""
    with services.work() as work:
        set_minor(work, code, body.minor)
        return case_detail(work, code).row


@api.post("/cases/{code}/faces", response_model=list[Uploaded])
def api_faces(
    request: Request,
    me: Counselor,
    services: ServicesFor,
    code: Code,
    files: Annotated[list[UploadFile], File(description="Face photos of the victim.")],
) -> list[Uploaded]:
    """Add face photos; each file is reported on its own."""
    return _reported(files, _upload(request, services, add_faces, code, files))


@api.post("/cases/{code}/known", response_model=list[Uploaded])
def api_known(
    request: Request,
    me: Counselor,
    services: ServicesFor,
    code: Code,
    files: Annotated[list[UploadFile], File(description="Known images or videos.")],
) -> list[Uploaded]:
    """Add known images or videos of the victim; each file is reported on its own."""
    return _reported(files, _upload(request, services, add_known, code, files))


@api.get("/cases/{code}/allowlist", response_model=list[AllowedPlaceSummary])
def api_allowed(
    me: Annotated[Principal, Depends(require_role(Role.COUNSELOR, Role.REVIEWER))],
    services: ServicesFor,
    code: Code,
) -> list[AllowedPlaceSummary]:
    """The victim's own places: what is seen there is never reported."""
    return services.call(list_allowed, code, read_only=True)


@api.post("/cases/{code}/allowlist", status_code=201, response_model=AllowedPlaceSummary)
def api_allow(
    me: Counselor, services: ServicesFor, code: Code, body: NewPlace
) -> AllowedPlaceSummary:
    """Add one of the victim's own places (a URL prefix, a host or an account name)."""
    return _allow(services, code, body.kind, body.pattern)


@api.delete("/cases/{code}/allowlist/{place_id}", status_code=204)
def api_disallow(
    me: Counselor,
    services: ServicesFor,
    code: Code,
    place_id: Annotated[int, Path(ge=1, le=MAX_ID)],
) -> Response:
    services.call(remove_allowed, code, place_id)
    return Response(status_code=204)


@api.post("/cases/{code}/purge", response_model=PurgeReport)
def api_purge(
    me: Counselor, services: ServicesFor, code: Code, body: PurgeConfirmation
) -> PurgeReport:
    """Destroy the case's key, references, matches and notices; ``confirm`` must be the code."""
    if body.confirm.strip() != code:
        raise ValidationError("type the case code to confirm the purge", code="unconfirmed")
    return services.call(purge_case, code)


# -- shared ----------------------------------------------------------------------------------


def _list_page(
    request: Request,
    services: Services,
    *,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
    purged: tuple[str, int | None] | None = None,
    refusal: ValidationError | ConflictError | None = None,
    form: dict[str, Any] | None = None,
) -> HTMLResponse:
    page = services.call(list_case_rows, status=status, limit=limit, offset=offset, read_only=True)
    context = {
        "page": page,
        "status": status or "",
        "purged": purged,
        "refusal": refusal,
        "form": form or {"code": "", "consent_basis": "", "minor": False},
    }
    return render(
        request, "cases_list.html", context, status_code=status_of(refusal) if refusal else 200
    )


def _case_page(
    request: Request,
    services: Services,
    code: str,
    *,
    matches_before: int | None = None,
    notices_before: int | None = None,
    done: str | None = None,
    uploaded: tuple[str, list[str]] | None = None,
    refusal: ValidationError | ConflictError | None = None,
    section: str | None = None,
) -> HTMLResponse:
    principal = services.principal
    with services.work(read_only=True) as work:
        detail: CaseDetail = case_detail(work, code)
        live = detail.row.status != "purged"
        matches = list_matches(work, case=code, limit=MATCHES_SHOWN, before=matches_before)
        notices = case_notices(work, code, limit=NOTICES_SHOWN, before=notices_before)
        allowed = (
            list_allowed(work, code)
            if live and principal.may(Role.COUNSELOR, Role.REVIEWER)
            else None
        )
    counts: dict[str, int] = {}
    for reference in detail.references:
        counts[reference.kind] = counts.get(reference.kind, 0) + 1
    context = {
        "case": detail.row,
        "detail": detail,
        "live": live,
        "may_change": live and principal.may(Role.COUNSELOR),
        "matches": matches,
        "matches_next": matches[-1].match_id if len(matches) == MATCHES_SHOWN else None,
        "notices": notices,
        "notices_next": notices[-1].id if len(notices) == NOTICES_SHOWN else None,
        "allowed": allowed,
        "done": done,
        "uploaded": uploaded,
        "refusal": refusal,
        "section": section,
    }
    return render(request, "case.html", context, status_code=status_of(refusal) if refusal else 200)


def _back(code: str, **query: str) -> RedirectResponse:
    return RedirectResponse(f"/cases/{code}?{urlencode(query)}", status_code=303)


def _allow(services: Services, code: str, kind: str, pattern: str) -> AllowedPlaceSummary:
    try:
        return services.call(allow_place, code, kind, pattern)
    except ValueError:  # a URL the standard library cannot even split (``http://[x``)
        raise ValidationError("not a usable URL, host or account name") from None


def _upload(
    request: Request,
    services: Services,
    add: Any,
    code: str,
    files: list[UploadFile],
) -> list[ReferenceOutcome]:
    """Hand the uploads to ``add`` (``add_faces`` or ``add_known``) as private temporary files,
    removed as soon as it returns (or fails)."""
    if not files or len(files) > MAX_FILES:
        raise ValidationError(f"choose 1 to {MAX_FILES} files")
    with _saved(request, files) as paths:
        return services.call(add, code, paths)  # type: ignore[no-any-return]


@contextmanager
def _saved(request: Request, files: list[UploadFile]) -> Iterator[list[FilePath]]:
    """Each upload as a 0600 file in a 0700 folder of this process's own temporary folder
    (under the data dir, never the shared system one), named as uploaded (the name becomes
    the reference's sealed label); the folder goes when the block ends, whatever happens."""
    settings = request.app.state.safe.settings
    folder = FilePath(
        tempfile.mkdtemp(prefix="upload-", dir=process_temp_dir(settings.ensure_data_dir()))
    )
    try:
        paths = []
        for index, upload in enumerate(files):
            own = folder / str(index)
            own.mkdir(mode=0o700)
            path = own / _file_name(upload.filename, index)
            with path.open("xb") as out:
                path.chmod(0o600)
                shutil.copyfileobj(upload.file, out, 1024 * 1024)
            paths.append(path)
        yield paths
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for upload in files:
            upload.file.close()


def _file_name(name: str | None, index: int) -> str:
    """The uploaded file's own name, reduced to a harmless one (no folders, no odd characters)."""
    base = _UNSAFE_NAME.sub("_", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip(". ")
    return base[-100:] or f"file-{index + 1}"


def _reported(files: list[UploadFile], outcomes: list[ReferenceOutcome]) -> list[Uploaded]:
    return [
        Uploaded(
            file=_file_name(upload.filename, index),
            outcome=outcome_kind(outcome),
            reference_id=outcome.reference_id,
            note=outcome.note,
            error=outcome.error,
        )
        for index, (upload, outcome) in enumerate(zip(files, outcomes, strict=True))
    ]
