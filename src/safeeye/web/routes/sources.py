"""Sources: add, pause and resume, last visit and errors.

From the web a source is a place on the web (a page or feed, ``url``; a whole site, ``crawl``):
the kinds that read files on the server itself (``folder``, ``telegram``, ``upload``) name paths
only the server's operator should choose, so they stay with ``safeeye source`` on its console.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from safeeye.errors import NotFoundError, ValidationError
from safeeye.ingest.service import (
    SourcePage,
    SourceSummary,
    add_source,
    list_sources_page,
    make_due,
    parse_interval,
    pause_source,
    resume_source,
)
from safeeye.web.auth import Principal, Services, ServicesFor, require_role
from safeeye.web.errors import status_of
from safeeye.web.rendering import render
from safeeye.work import Role

#: The largest row id (the id columns are 32-bit integers on PostgreSQL).
MAX_ID = 2**31 - 1
router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["sources"])

READERS = (Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR)
Reader = Annotated[Principal, Depends(require_role(*READERS))]
Counselor = Annotated[Principal, Depends(require_role(Role.COUNSELOR))]
WebKind = Literal["url", "crawl"]
SourceId = Annotated[int, Path(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
#: Path patterns a crawl follows or skips, at most this many each.
MAX_PATTERNS = 100


# -- pages -----------------------------------------------------------------------------------


@router.get("/sources", response_class=HTMLResponse)
def sources_page(
    request: Request,
    me: Reader,
    services: ServicesFor,
    limit: Limit = 50,
    offset: Offset = 0,
    done: Annotated[str | None, Query(pattern=r"^[a-z_]{1,20}$")] = None,
) -> HTMLResponse:
    return _page(request, services, limit=limit, offset=offset, done=done)


@router.post("/sources", dependencies=[Depends(require_role(Role.COUNSELOR))])
def add_form(
    request: Request,
    services: ServicesFor,
    kind: Annotated[WebKind, Form()],
    locator: Annotated[str, Form(max_length=2000)],
    every: Annotated[str, Form(max_length=16)] = "",
    depth: Annotated[str, Form(max_length=4)] = "",
    max_pages: Annotated[str, Form(max_length=7)] = "",
    include: Annotated[str, Form(max_length=20_000)] = "",
    exclude: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    form = {
        "kind": kind,
        "locator": locator,
        "every": every,
        "depth": depth,
        "max_pages": max_pages,
        "include": include,
        "exclude": exclude,
    }
    try:
        config: dict[str, Any] = {}
        if kind == "crawl":
            config = _crawl_config(
                _number(depth, "depth"),
                _number(max_pages, "max_pages"),
                include.splitlines(),
                exclude.splitlines(),
            )
        _add(services, kind, locator, every.strip() or None, config)
    except (ValidationError, NotFoundError) as refusal:
        return _page(request, services, refusal=refusal, form=form)
    return RedirectResponse("/sources?done=added", status_code=303)


@router.post("/sources/{source_id}/pause", dependencies=[Depends(require_role(Role.COUNSELOR))])
def pause_form(services: ServicesFor, source_id: SourceId) -> Response:
    services.call(pause_source, source_id)
    return RedirectResponse("/sources?done=paused", status_code=303)


@router.post("/sources/{source_id}/resume", dependencies=[Depends(require_role(Role.COUNSELOR))])
def resume_form(services: ServicesFor, source_id: SourceId) -> Response:
    services.call(resume_source, source_id)
    return RedirectResponse("/sources?done=resumed", status_code=303)


@router.post("/sources/{source_id}/visit", dependencies=[Depends(require_role(Role.COUNSELOR))])
def visit_form(services: ServicesFor, source_id: SourceId) -> Response:
    services.call(make_due, source_id)
    return RedirectResponse("/sources?done=due", status_code=303)


# -- API -------------------------------------------------------------------------------------


class NewSource(BaseModel):
    """A place on the web to watch: a page, feed or media URL (``url``) or a whole site
    (``crawl``, with its depth, page limit and path patterns)."""

    kind: WebKind
    locator: str = Field(min_length=1, max_length=2000)
    every: str | None = Field(
        default=None, max_length=16, description="Visit again after this long: 30s, 10m, 2h, 1d."
    )
    depth: int | None = Field(default=None, ge=0, le=1000)
    max_pages: int | None = Field(default=None, ge=1, le=1_000_000)
    include: list[str] = Field(default=[], max_length=MAX_PATTERNS)
    exclude: list[str] = Field(default=[], max_length=MAX_PATTERNS)


class SourceOut(BaseModel):
    id: int
    kind: str
    locator: str
    description: str
    config: dict[str, Any]
    interval_seconds: int | None
    enabled: bool
    paused: bool
    next_due_at: str | None
    last_visit_at: str | None
    last_status: str | None
    last_error: str | None
    sightings: int


class SourcePageOut(BaseModel):
    items: list[SourceOut]
    total: int
    limit: int
    offset: int


@api.get("/sources", response_model=SourcePageOut)
def api_sources(
    me: Reader, services: ServicesFor, limit: Limit = 50, offset: Offset = 0
) -> SourcePageOut:
    """One page of sources, newest first, with the count of all."""
    page: SourcePage = services.call(list_sources_page, limit=limit, offset=offset, read_only=True)
    return SourcePageOut(
        items=[_out(s) for s in page.items], total=page.total, limit=page.limit, offset=page.offset
    )


@api.post("/sources", status_code=201, response_model=SourceOut)
def api_add(me: Counselor, services: ServicesFor, body: NewSource) -> SourceOut:
    """Watch a page, feed or site; it is visited at once, then every ``every`` (or once)."""
    config: dict[str, Any] = {}
    if body.kind == "crawl":
        config = _crawl_config(body.depth, body.max_pages, body.include, body.exclude)
    elif body.depth is not None or body.max_pages is not None or body.include or body.exclude:
        raise ValidationError("depth, max_pages, include and exclude are for a crawl")
    return _out(_add(services, body.kind, body.locator, body.every, config))


@api.post("/sources/{source_id}/pause", response_model=SourceOut)
def api_pause(me: Counselor, services: ServicesFor, source_id: SourceId) -> SourceOut:
    """Stop visiting the source until it is resumed."""
    return _out(services.call(pause_source, source_id))


@api.post("/sources/{source_id}/resume", response_model=SourceOut)
def api_resume(me: Counselor, services: ServicesFor, source_id: SourceId) -> SourceOut:
    """Visit a paused source again (due at once)."""
    return _out(services.call(resume_source, source_id))


@api.post("/sources/{source_id}/visit", status_code=202)
def api_visit(me: Counselor, services: ServicesFor, source_id: SourceId) -> dict[str, Any]:
    """Make the source due now: the monitor visits it next (a paused source: 409)."""
    services.call(make_due, source_id)
    return {"id": source_id, "due": True}


# -- shared ----------------------------------------------------------------------------------


def _add(
    services: Services, kind: str, locator: str, every: str | None, config: dict[str, Any]
) -> SourceSummary:
    interval = parse_interval(every) if every else None
    return services.call(
        add_source, kind, locator.strip(), config=config, interval_seconds=interval
    )


def _crawl_config(
    depth: int | None, max_pages: int | None, include: list[str], exclude: list[str]
) -> dict[str, Any]:
    """The settings a person gave for a crawl (the kind validates them and fills in the rest)."""
    given: dict[str, Any] = {"depth": depth, "max_pages": max_pages}
    config = {name: value for name, value in given.items() if value is not None}
    for name, lines in (("include", include), ("exclude", exclude)):
        patterns = [line.strip() for line in lines if line.strip()]
        if len(patterns) > MAX_PATTERNS:
            raise ValidationError(f"at most {MAX_PATTERNS} {name} patterns")
        if patterns:
            config[name] = patterns
    return config


def _number(text: str, name: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isascii() or not text.isdigit():
        raise ValidationError(f"{name} is a whole number")
    return int(text)


def _out(source: SourceSummary) -> SourceOut:
    return SourceOut(
        id=source.id,
        kind=source.kind,
        locator=source.locator,
        description=source.description,
        config=source.config,
        interval_seconds=source.interval_seconds,
        enabled=source.enabled,
        paused=source.paused,
        next_due_at=source.next_due_at,
        last_visit_at=source.last_visit_at,
        last_status=source.last_status,
        last_error=source.last_error,
        sightings=source.sightings,
    )


def _page(
    request: Request,
    services: Services,
    *,
    limit: int = 50,
    offset: int = 0,
    done: str | None = None,
    refusal: ValidationError | NotFoundError | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    page = services.call(list_sources_page, limit=limit, offset=offset, read_only=True)
    empty = dict.fromkeys(("locator", "every", "depth", "max_pages", "include", "exclude"), "")
    context = {
        "page": page,
        "done": done,
        "refusal": refusal,
        "form": form or {**empty, "kind": "url", "every": "1d"},
    }
    status = status_of(refusal) if refusal else 200
    return render(request, "sources.html", context, status_code=status)
