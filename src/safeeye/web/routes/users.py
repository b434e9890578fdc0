"""Accounts (administrators only): list, create, change roles and name, disable and enable,
reset passwords, turn off a lost second factor, revoke tokens.

The accounts services decide (and refuse: the last enabled administrator, one's own roles);
these routes only ask and show. A one-time password is in the answer of the POST that made
it and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from safeeye.accounts import (
    IssuedPassword,
    LoginFailed,
    count_users,
    create_user,
    disable_totp,
    get_user,
    list_api_tokens,
    list_users,
    reset_password,
    revoke_api_token,
    update_user,
)
from safeeye.errors import ConflictError, ValidationError
from safeeye.web.auth import ServicesFor, bearer_token, require_role
from safeeye.web.rendering import render
from safeeye.web.routes.account import (
    REFUSALS,
    AccountOut,
    BlurName,
    DisplayName,
    ItemId,
    LanguageCode,
    Strict,
    TokenOut,
    Unicode,
    login_refusal,
)
from safeeye.work import Role

ADMINS_ONLY = [Depends(require_role(Role.ADMIN))]
router = APIRouter(dependencies=ADMINS_ONLY)
api = APIRouter(prefix="/api/v1", tags=["users"], dependencies=ADMINS_ONLY)

RoleName = Literal["admin", "counselor", "reviewer", "auditor"]
#: A username as stored (``find_user`` lowers and trims it); anything else is no account.
Username = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
PAGE_SIZE = 50
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


class UserPageOut(BaseModel):
    users: list[AccountOut]
    total: int
    limit: int
    offset: int


class IssuedOut(BaseModel):
    """An account and its one-time password: in this answer only, to hand over; it must be
    changed at the first sign-in."""

    user: AccountOut
    one_time_password: str

    @classmethod
    def of(cls, issued: IssuedPassword) -> IssuedOut:
        assert issued.password is not None  # made by the service, never given here
        return cls(user=AccountOut.of(issued.account), one_time_password=issued.password)


class NewUserIn(Strict):
    username: Annotated[str, Field(min_length=2, max_length=64), Unicode]
    display_name: DisplayName = ""
    roles: list[RoleName] = Field(min_length=1, max_length=4)
    language: LanguageCode = "ko"
    blur_level: BlurName = "strong"


class UserChangeIn(Strict):
    """Fields left out stay as they are."""

    display_name: DisplayName | None = None
    roles: list[RoleName] | None = Field(default=None, min_length=1, max_length=4)
    language: LanguageCode | None = None
    blur_level: BlurName | None = None


# --- pages --------------------------------------------------------------------------------


def users_page(
    request: Request,
    services: ServicesFor,
    limit: int = PAGE_SIZE,
    offset: int = 0,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    with services.work(read_only=True) as work:
        users = list_users(work, limit=limit, offset=offset)
        total = count_users(work)
    values = {
        "users": users,
        "total": total,
        "limit": limit,
        "offset": offset,
        "problem": None,
        "form": {},
        **context,
    }
    return render(request, "users.html", values, status_code=status_code)


@router.get("/users", response_class=HTMLResponse)
def users(
    request: Request, services: ServicesFor, limit: Limit = PAGE_SIZE, offset: Offset = 0
) -> HTMLResponse:
    return users_page(request, services, limit, offset)


@router.post("/users", response_class=HTMLResponse)
def user_create(
    request: Request,
    services: ServicesFor,
    username: Annotated[str, Form(max_length=64)],
    display_name: Annotated[str, Form(max_length=200)] = "",
    roles: Annotated[list[RoleName], Form(max_length=4)] = [],  # noqa: B006 - FastAPI copies
    language: Annotated[LanguageCode, Form()] = "ko",
) -> HTMLResponse:
    """Makes the account and shows its one-time password in this answer, once."""
    form = {
        "username": username,
        "display_name": display_name,
        "roles": roles,
        "language": language,
    }
    try:
        issued = services.call(
            create_user, username, roles, display_name=display_name, language=language
        )
    except ValidationError as refusal:
        problem = "no_role" if not roles else "username" if "username" in str(refusal) else "name"
        return users_page(request, services, status_code=422, problem=problem, form=form)
    except ConflictError:
        return users_page(request, services, status_code=409, problem="taken", form=form)
    context = {"account": issued.account, "password": issued.password, "created": True}
    return render(request, "users_password.html", context, status_code=201)


def user_page(
    request: Request,
    services: ServicesFor,
    username: str,
    *,
    status_code: int = 200,
    problem: str | None = None,
) -> HTMLResponse:
    with services.work(read_only=True) as work:
        account = get_user(work, username)
        tokens = list_api_tokens(work, account.username)
    context = {
        "account": account,
        "tokens": tokens,
        "problem": problem,
        "done": request.query_params.get("done"),
        "myself": account.username == services.principal.username,
    }
    return render(request, "users_detail.html", context, status_code=status_code)


@router.get("/users/{username}", response_class=HTMLResponse)
def user_detail(request: Request, services: ServicesFor, username: Username) -> HTMLResponse:
    return user_page(request, services, username)


def refused_change(
    request: Request, services: ServicesFor, username: str, refusal: ConflictError
) -> HTMLResponse:
    """The detail page again, saying why: the last administrator, or one's own account."""
    problem = "last_admin" if refusal.code == "last_admin" else "own"
    return user_page(request, services, username, status_code=409, problem=problem)


@router.post("/users/{username}", response_class=HTMLResponse)
def user_change(
    request: Request,
    services: ServicesFor,
    username: Username,
    display_name: Annotated[str, Form(max_length=200)] = "",
    roles: Annotated[list[RoleName], Form(max_length=4)] = [],  # noqa: B006 - FastAPI copies
) -> Response:
    try:
        account = services.call(update_user, username, roles=roles, display_name=display_name)
    except ValidationError:
        problem = "no_role" if not roles else "name"
        return user_page(request, services, username, status_code=422, problem=problem)
    except ConflictError as refusal:
        return refused_change(request, services, username, refusal)
    return RedirectResponse(f"/users/{account.username}?done=saved", status_code=303)


@router.post("/users/{username}/disable", response_class=HTMLResponse)
def user_disable(request: Request, services: ServicesFor, username: Username) -> Response:
    return switch(request, services, username, disabled=True)


@router.post("/users/{username}/enable", response_class=HTMLResponse)
def user_enable(request: Request, services: ServicesFor, username: Username) -> Response:
    return switch(request, services, username, disabled=False)


def switch(request: Request, services: ServicesFor, username: str, *, disabled: bool) -> Response:
    try:
        account = services.call(update_user, username, disabled=disabled)
    except ConflictError as refusal:
        return refused_change(request, services, username, refusal)
    done = "disabled" if disabled else "enabled"
    return RedirectResponse(f"/users/{account.username}?done={done}", status_code=303)


@router.post("/users/{username}/reset", response_class=HTMLResponse)
def user_reset(request: Request, services: ServicesFor, username: Username) -> HTMLResponse:
    """A new one-time password, in this answer once; the person's sessions end."""
    try:
        issued = services.call(reset_password, username)
    except ConflictError as refusal:
        return refused_change(request, services, username, refusal)
    context = {"account": issued.account, "password": issued.password, "created": False}
    return render(request, "users_password.html", context)


@router.post("/users/{username}/totp/disable", response_class=HTMLResponse)
def user_totp_disable(request: Request, services: ServicesFor, username: Username) -> Response:
    try:
        account = services.call(disable_totp, username)
    except LoginFailed:  # one's own needs the password: the account page asks for it
        return user_page(request, services, username, status_code=403, problem="own_totp")
    return RedirectResponse(f"/users/{account.username}?done=totp_off", status_code=303)


@router.post("/users/{username}/tokens/{token_id}/revoke")
def user_token_revoke(
    services: ServicesFor, username: Username, token_id: ItemId
) -> RedirectResponse:
    token = services.call(revoke_api_token, token_id, owner=username)
    return RedirectResponse(f"/users/{token.username}?done=token_revoked", status_code=303)


# --- API ----------------------------------------------------------------------------------


@api.get("/users")
def api_users(services: ServicesFor, limit: Limit = PAGE_SIZE, offset: Offset = 0) -> UserPageOut:
    """The accounts, by username, a page at a time."""
    with services.work(read_only=True) as work:
        users = list_users(work, limit=limit, offset=offset)
        total = count_users(work)
    return UserPageOut(
        users=[AccountOut.of(a) for a in users], total=total, limit=limit, offset=offset
    )


@api.post("/users", status_code=201, responses=REFUSALS)
def api_user_create(services: ServicesFor, new: Annotated[NewUserIn, Body()]) -> IssuedOut:
    """A new account with a one-time password (in this answer only)."""
    issued = services.call(
        create_user,
        new.username,
        new.roles,
        display_name=new.display_name,
        language=new.language,
        blur_level=new.blur_level,
    )
    return IssuedOut.of(issued)


@api.get("/users/{username}", responses=REFUSALS)
def api_user(services: ServicesFor, username: Username) -> AccountOut:
    return AccountOut.of(services.call(get_user, username, read_only=True))


@api.patch("/users/{username}", responses=REFUSALS)
def api_user_change(
    services: ServicesFor, username: Username, change: Annotated[UserChangeIn, Body()]
) -> AccountOut:
    """Change roles, name, language or blur level (not one's own roles; never the last
    administrator's)."""
    account = services.call(
        update_user,
        username,
        roles=change.roles,
        display_name=change.display_name,
        language=change.language,
        blur_level=change.blur_level,
    )
    return AccountOut.of(account)


@api.post("/users/{username}/disable", responses=REFUSALS)
def api_user_disable(services: ServicesFor, username: Username) -> AccountOut:
    """Disable an account: its sessions end and its tokens stop working."""
    return AccountOut.of(services.call(update_user, username, disabled=True))


@api.post("/users/{username}/enable", responses=REFUSALS)
def api_user_enable(services: ServicesFor, username: Username) -> AccountOut:
    return AccountOut.of(services.call(update_user, username, disabled=False))


@api.post("/users/{username}/reset", responses=REFUSALS)
def api_user_reset(services: ServicesFor, username: Username) -> IssuedOut:
    """A new one-time password (in this answer only); the account's sessions end."""
    return IssuedOut.of(services.call(reset_password, username))


@api.post("/users/{username}/totp/disable", responses=REFUSALS, response_model=AccountOut)
def api_user_totp_disable(request: Request, services: ServicesFor, username: Username) -> Any:
    """Turn another person's second factor off (a lost phone); one's own needs the password
    (``POST /api/v1/account/totp/disable``)."""
    try:
        return AccountOut.of(services.call(disable_totp, username))
    except LoginFailed as refusal:
        return login_refusal(request, refusal)


@api.get("/users/{username}/tokens", responses=REFUSALS)
def api_user_tokens(services: ServicesFor, username: Username) -> list[TokenOut]:
    with services.work(read_only=True) as work:
        tokens = list_api_tokens(work, get_user(work, username).username)
    return [TokenOut.of(token) for token in tokens]


@api.delete("/users/{username}/tokens/{token_id}", responses=REFUSALS, status_code=204)
def api_user_token_revoke(
    request: Request, services: ServicesFor, username: Username, token_id: ItemId
) -> Response:
    """Revoke one of the account's tokens (not the one this request came with)."""
    services.call(revoke_api_token, token_id, owner=username, in_use=bearer_token(request) or None)
    return Response(status_code=204)
