"""The recipients directory: who gets deletion requests, through which connector, in which
language.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, Field

from safeeye.errors import ConflictError, NotFoundError, ValidationError
from safeeye.takedown.model import RecipientKind
from safeeye.takedown.recipients import (
    CONNECTOR_NAMES,
    RecipientEntry,
    add_recipient,
    show_recipient,
    update_recipient,
)
from safeeye.takedown.reports import MAX_PAGE, RecipientPage, recipients_page
from safeeye.web.auth import Principal, ServicesFor, require_role
from safeeye.web.rendering import render
from safeeye.work import Role

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["recipients"])

Reader = Annotated[Principal, Depends(require_role(Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR))]
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]
#: A recipient's key as the directory writes them (any case; the service lowercases it).
KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}$"
#: One line of text: no control character (PostgreSQL keeps no NUL; a name is one line).
LINE = r"^[^\x00-\x1f\x7f]*$"
#: Lines of text (a list in a text box): no NUL.
LINES = r"^[^\x00]*$"
Key = Annotated[str, Path(max_length=64, pattern=KEY_PATTERN, description="The recipient's key.")]
Kind = Literal[tuple(k.value for k in RecipientKind)]  # type: ignore[valid-type]
Connector = Literal[CONNECTOR_NAMES]  # type: ignore[valid-type]
Short = Annotated[str, Field(max_length=64, pattern=LINE)]
Cover = Annotated[str, Field(min_length=1, max_length=253, pattern=LINE)]
Language = Annotated[str, Field(min_length=1, max_length=8, pattern=LINE)]
Token = Annotated[str, Field(min_length=1, max_length=40)]
KINDS = tuple(k.value for k in RecipientKind)
#: The form's fields, as the add and edit forms show them again after a refusal.
FIELDS = (
    "key",
    "name",
    "kind",
    "connector",
    "address",
    "languages",
    "deadline_hours",
    "covers",
    "jurisdiction",
    "escalates_to",
)


def _items(text: str) -> tuple[str, ...]:
    """A form's list field (commas, spaces or lines between items)."""
    return tuple(part for part in text.replace(",", " ").split() if part)


def _hours(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError as exc:
        raise ValidationError("the deadline must be a number of hours") from exc


def _form_of(entry: RecipientEntry) -> dict[str, str]:
    return {
        "key": entry.key,
        "name": entry.name,
        "kind": entry.kind,
        "connector": entry.connector,
        "address": entry.address or "",
        "languages": ", ".join(entry.languages),
        "deadline_hours": f"{entry.deadline_hours:g}",
        "covers": "\n".join((*entry.domains, *entry.networks)),
        "jurisdiction": entry.jurisdiction or "",
        "escalates_to": entry.escalates_to or "",
        "enabled": "1" if entry.enabled else "",
    }


def _form_page(
    request: Request, form: dict[str, str], *, entry: RecipientEntry | None, refusal: str | None
) -> HTMLResponse:
    context = {
        "form": form,
        "entry": entry,
        "kinds": KINDS,
        "connectors": CONNECTOR_NAMES,
        "refusal": refusal,
    }
    status = 200 if refusal is None else 422
    return render(request, "recipients_form.html", context, status_code=status)


# -- pages -------------------------------------------------------------------------------------


@router.get("/recipients", response_class=HTMLResponse)
def recipients_list_page(
    request: Request,
    me: Reader,
    services: ServicesFor,
    kind: Annotated[str | None, Query(max_length=24, pattern=LINE)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> HTMLResponse:
    kind = kind.strip() or None if kind else None
    page = services.call(recipients_page, kind=kind, limit=limit, offset=offset, read_only=True)
    return render(request, "recipients.html", {"page": page, "kind": kind, "kinds": KINDS})


@router.get("/recipients/new", response_class=HTMLResponse)
def recipient_new_page(request: Request, me: Admin) -> HTMLResponse:
    blank = dict.fromkeys(FIELDS, "") | {"languages": "ko, en", "deadline_hours": "24"}
    return _form_page(request, blank | {"enabled": "1"}, entry=None, refusal=None)


@router.post("/recipients", response_class=HTMLResponse, response_model=None)
def recipient_add_form(
    request: Request,
    me: Admin,
    services: ServicesFor,
    key: Annotated[str, Form(max_length=64, pattern=LINE)] = "",
    name: Annotated[str, Form(max_length=200, pattern=LINE)] = "",
    kind: Annotated[str, Form(max_length=24, pattern=LINE)] = "",
    connector: Annotated[str, Form(max_length=16, pattern=LINE)] = "",
    address: Annotated[str, Form(max_length=500, pattern=LINE)] = "",
    languages: Annotated[str, Form(max_length=200, pattern=LINE)] = "",
    deadline_hours: Annotated[str, Form(max_length=20, pattern=LINE)] = "24",
    covers: Annotated[str, Form(max_length=20_000, pattern=LINES)] = "",
    jurisdiction: Annotated[str, Form(max_length=8, pattern=LINE)] = "",
    escalates_to: Annotated[str, Form(max_length=64, pattern=LINE)] = "",
) -> HTMLResponse | RedirectResponse:
    """An administrator adds a recipient; a refusal shows the form again with what to fix."""
    form = {
        "key": key,
        "name": name,
        "kind": kind,
        "connector": connector,
        "address": address,
        "languages": languages,
        "deadline_hours": deadline_hours,
        "covers": covers,
        "jurisdiction": jurisdiction,
        "escalates_to": escalates_to,
        "enabled": "1",
    }
    try:
        entry = services.call(
            add_recipient,
            name,
            key=key.strip() or None,
            kind=kind,
            connector=connector,
            address=address.strip() or None,
            covers=_items(covers),
            languages=_items(languages),
            deadline_hours=_hours(deadline_hours),
            jurisdiction=jurisdiction.strip() or None,
            escalates_to=escalates_to.strip() or None,
        )
    except (ValidationError, ConflictError, NotFoundError) as refusal:
        return _form_page(request, form, entry=None, refusal=refusal.message)
    return RedirectResponse(f"/recipients/{entry.key}?saved=1", 303)


@router.get("/recipients/{key}", response_class=HTMLResponse)
def recipient_page(request: Request, key: Key, me: Reader, services: ServicesFor) -> HTMLResponse:
    entry = services.call(show_recipient, key, read_only=True)
    return render(request, "recipients_detail.html", {"r": entry})


@router.get("/recipients/{key}/edit", response_class=HTMLResponse)
def recipient_edit_page(
    request: Request, key: Key, me: Admin, services: ServicesFor
) -> HTMLResponse:
    entry = services.call(show_recipient, key, read_only=True)
    return _form_page(request, _form_of(entry), entry=entry, refusal=None)


@router.post("/recipients/{key}", response_class=HTMLResponse, response_model=None)
def recipient_edit_form(
    request: Request,
    key: Key,
    me: Admin,
    services: ServicesFor,
    name: Annotated[str, Form(max_length=200, pattern=LINE)] = "",
    kind: Annotated[str, Form(max_length=24, pattern=LINE)] = "",
    connector: Annotated[str, Form(max_length=16, pattern=LINE)] = "",
    address: Annotated[str, Form(max_length=500, pattern=LINE)] = "",
    languages: Annotated[str, Form(max_length=200, pattern=LINE)] = "",
    deadline_hours: Annotated[str, Form(max_length=20, pattern=LINE)] = "24",
    covers: Annotated[str, Form(max_length=20_000, pattern=LINES)] = "",
    jurisdiction: Annotated[str, Form(max_length=8, pattern=LINE)] = "",
    escalates_to: Annotated[str, Form(max_length=64, pattern=LINE)] = "",
    enabled: Annotated[str, Form(max_length=5)] = "",
) -> HTMLResponse | RedirectResponse:
    """An administrator changes a recipient (every field of the form, as it was sent)."""
    entry = services.call(show_recipient, key, read_only=True)
    form = {
        "key": entry.key,
        "name": name,
        "kind": kind,
        "connector": connector,
        "address": address,
        "languages": languages,
        "deadline_hours": deadline_hours,
        "covers": covers,
        "jurisdiction": jurisdiction,
        "escalates_to": escalates_to,
        "enabled": "1" if enabled else "",
    }
    try:
        saved = services.call(
            update_recipient,
            entry.key,
            name=name,
            kind=kind,
            connector=connector,
            address=address.strip(),
            covers=_items(covers),
            languages=_items(languages),
            deadline_hours=_hours(deadline_hours),
            jurisdiction=jurisdiction.strip(),
            escalates_to=escalates_to.strip(),
            enabled=bool(enabled),
        )
    except (ValidationError, ConflictError, NotFoundError) as refusal:
        return _form_page(request, form, entry=entry, refusal=refusal.message)
    return RedirectResponse(f"/recipients/{saved.key}?saved=1", 303)


# -- API ---------------------------------------------------------------------------------------


class RecipientIn(BaseModel):
    """A new recipient; ``key`` defaults to a slug of the name."""

    name: str = Field(min_length=1, max_length=200, pattern=LINE)
    kind: Kind
    connector: Connector
    key: Short | None = None
    address: str | None = Field(default=None, max_length=500, pattern=LINE)
    covers: list[Cover] = Field(default_factory=list, max_length=1000)
    languages: list[Language] = Field(default_factory=lambda: ["en"], min_length=1, max_length=20)
    deadline_hours: float = Field(default=24.0, gt=0, le=24 * 365)
    jurisdiction: str | None = Field(default=None, max_length=8, pattern=LINE)
    legal_routes: list[Token] = Field(default_factory=list, max_length=20)
    requires: list[Token] = Field(default_factory=list, max_length=20)
    escalates_to: Short | None = None


class RecipientChange(BaseModel):
    """What to change (a field left out stays as it is; ``""`` clears an address, a
    jurisdiction or the next step of the ladder)."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=LINE)
    kind: Kind | None = None
    connector: Connector | None = None
    address: str | None = Field(default=None, max_length=500, pattern=LINE)
    covers: list[Cover] | None = Field(default=None, max_length=1000)
    languages: list[Language] | None = Field(default=None, min_length=1, max_length=20)
    deadline_hours: float | None = Field(default=None, gt=0, le=24 * 365)
    jurisdiction: str | None = Field(default=None, max_length=8, pattern=LINE)
    legal_routes: list[Token] | None = Field(default=None, max_length=20)
    requires: list[Token] | None = Field(default=None, max_length=20)
    escalates_to: Short | None = None
    enabled: bool | None = None


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


@api.get("/recipients")
def recipients_api(
    me: Reader,
    services: ServicesFor,
    kind: Annotated[Kind | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> RecipientPage:
    """The directory, by key, a page at a time."""
    return services.call(recipients_page, kind=kind, limit=limit, offset=offset, read_only=True)


@api.get("/recipients/{key}")
def recipient_api(key: Key, me: Reader, services: ServicesFor) -> RecipientEntry:
    """One recipient by key."""
    return services.call(show_recipient, key, read_only=True)


@api.post("/recipients", status_code=201)
def recipient_add_api(body: RecipientIn, me: Admin, services: ServicesFor) -> RecipientEntry:
    """Add a recipient (administrators)."""
    values = _tuples(body.model_dump())
    return services.call(add_recipient, values.pop("name"), **values)


@api.patch("/recipients/{key}")
def recipient_change_api(
    key: Key, body: RecipientChange, me: Admin, services: ServicesFor
) -> RecipientEntry:
    """Change a recipient (administrators)."""
    values = _tuples(body.model_dump(exclude_unset=True))
    return services.call(update_recipient, key, **values)
