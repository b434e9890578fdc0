"""One's own account: password, language, blur level, second factor, API tokens, sessions.

Every signed-in person may open these pages (and a person on a one-time password only the
password form). The routes call the accounts services as the person; a refusal of a form is
shown as the form again with a plain message, a refusal on the API is its status with a
JSON error. Secrets (a new token, a second factor's key) are in the answer of the POST that
made them and nowhere else: nothing is stored to show them again.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from safeeye.accounts import (
    Account,
    ApiTokenSummary,
    LoginFailed,
    LoginThrottled,
    NewApiToken,
    SessionSummary,
    change_password,
    confirm_totp,
    create_api_token,
    disable_totp,
    enrol_totp,
    get_user,
    list_api_tokens,
    list_sessions,
    revoke_api_token,
    revoke_session,
    update_user,
)
from safeeye.errors import ConflictError, ValidationError
from safeeye.web.auth import ServicesFor, SignedIn, bearer_token, session_cookie
from safeeye.web.errors import error_response
from safeeye.web.rendering import render

router = APIRouter()
api = APIRouter(prefix="/api/v1", tags=["account"])

LanguageCode = Literal["ko", "en"]
BlurName = Literal["strong", "medium", "light"]
#: How long a token made on the page lasts (days; "never": until revoked).
TOKEN_LIFETIMES = {"30": 30, "90": 90, "365": 365, "never": None}
MAX_ID = 2**31 - 1
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
Secret = Annotated[str, Form(max_length=1024)]


# --- what the API answers -----------------------------------------------------------------


class AccountOut(BaseModel):
    """An account as the API shows it (never a password hash or a second factor's key)."""

    username: str
    display_name: str
    roles: list[str]
    language: str
    blur_level: str
    disabled: bool
    must_change_password: bool
    totp_enabled: bool
    created_at: str
    last_login_at: str | None

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            username=account.username,
            display_name=account.display_name,
            roles=list(account.roles),
            language=account.language,
            blur_level=account.blur_level,
            disabled=account.disabled,
            must_change_password=account.must_change_password,
            totp_enabled=account.totp_enabled,
            created_at=account.created_at,
            last_login_at=account.last_login_at,
        )


class TokenOut(BaseModel):
    """An API token as it is listed (its first characters only)."""

    id: int
    username: str
    name: str
    prefix: str
    created_at: str
    created_by: str
    last_used_at: str | None
    expires_at: str | None
    status: Literal["active", "expired", "revoked"]

    @classmethod
    def of(cls, token: ApiTokenSummary) -> TokenOut:
        return cls.model_validate(token, from_attributes=True)


class NewTokenOut(BaseModel):
    """A token just made: ``token`` is in this answer and never again."""

    id: int
    username: str
    name: str
    prefix: str
    expires_at: str | None
    token: str

    @classmethod
    def of(cls, token: NewApiToken) -> NewTokenOut:
        return cls.model_validate(token, from_attributes=True)


class SessionOut(BaseModel):
    id: int
    client: str | None
    created_at: str
    last_seen_at: str
    expires_at: str

    @classmethod
    def of(cls, session: SessionSummary) -> SessionOut:
        return cls(
            id=session.session_id,
            client=session.client,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            expires_at=session.expires_at,
        )


class TotpOut(BaseModel):
    """A second factor being set up: the key for the authenticator app, shown once."""

    secret: str
    uri: str


def _encodable(value: str) -> str:
    """Text that can be stored and hashed: JSON may carry lone surrogates, which UTF-8 cannot."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("the text is not valid Unicode") from exc
    return value


#: Text fields of the API's bodies: bounded, and encodable as UTF-8.
Unicode = AfterValidator(_encodable)
PasswordText = Annotated[str, Field(max_length=1024), Unicode]
DisplayName = Annotated[str, Field(max_length=200), Unicode]
TokenName = Annotated[str, Field(min_length=1, max_length=100), Unicode]
CodeText = Annotated[str, Field(max_length=20), Unicode]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PreferencesIn(Strict):
    language: LanguageCode | None = None
    blur_level: BlurName | None = None
    display_name: DisplayName | None = None


class PasswordChangeIn(Strict):
    current_password: PasswordText
    new_password: PasswordText


class TokenIn(Strict):
    name: TokenName
    expires_days: int | None = Field(default=90, ge=1, le=3650)


class TotpCodeIn(Strict):
    code: CodeText


class PasswordIn(Strict):
    password: PasswordText


REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {"description": "a wrong password, or not allowed"},
    409: {"description": "conflicts with the account's state"},
    422: {"description": "invalid input"},
    429: {"description": "too many wrong passwords lately (Retry-After)"},
}


def login_refusal(request: Request, refusal: LoginFailed | LoginThrottled) -> Response:
    """A wrong password (403: the caller's credential still works) or too many of them (429)."""
    if isinstance(refusal, LoginThrottled):
        headers = {"Retry-After": str(refusal.retry_after)}
        return error_response(request, 429, refusal.code, refusal.message, headers=headers)
    return error_response(request, 403, refusal.code, refusal.message)


# --- pages --------------------------------------------------------------------------------


def account_page(
    request: Request,
    services: ServicesFor,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The account page: settings, tokens and sessions (each person has a handful)."""
    me = services.principal
    with services.work(read_only=True) as work:
        account = get_user(work, me.username)
        tokens = list_api_tokens(work, me.username)
        sessions = list_sessions(work, current=session_cookie(request))
    values = {
        "account": account,
        "tokens": tokens,
        "sessions": sessions,
        "lifetimes": TOKEN_LIFETIMES,
        "done": request.query_params.get("done"),
        "problem": None,
        "new_token": None,
        **context,
    }
    return render(request, "account.html", values, status_code=status_code)


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, services: ServicesFor) -> HTMLResponse:
    return account_page(request, services)


@router.post("/account/preferences", response_class=HTMLResponse)
def save_preferences(
    request: Request,
    services: ServicesFor,
    language: Annotated[LanguageCode, Form()],
    blur_level: Annotated[BlurName, Form()],
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    me = services.principal
    try:
        services.call(
            update_user,
            me.username,
            language=language,
            blur_level=blur_level,
            display_name=display_name,
        )
    except ValidationError:
        return account_page(request, services, status_code=422, problem="display_name")
    return RedirectResponse("/account?done=preferences", status_code=303)


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, me: SignedIn) -> HTMLResponse:
    return render(request, "account_password.html", password_context(request, None))


def password_context(request: Request, problem: str | None) -> dict[str, Any]:
    settings = request.app.state.safe.settings
    return {"problem": problem, "min_length": settings.password_min_length}


@router.post("/account/password", response_class=HTMLResponse)
def password_change(
    request: Request,
    services: ServicesFor,
    current_password: Secret,
    new_password: Secret,
    new_password_again: Secret,
) -> Response:
    me = services.principal
    problem, status = None, 200
    if new_password != new_password_again:
        problem, status = "mismatch", 422
    else:
        try:
            services.call(
                change_password,
                current_password,
                new_password,
                keep_session=session_cookie(request),
            )
        except LoginThrottled:
            problem, status = "throttled", 429
        except LoginFailed:
            problem, status = "bad_password", 403
        except ConflictError:
            problem, status = "same", 409
        except ValidationError:
            problem, status = "weak", 422
    if problem is not None:
        context = password_context(request, problem)
        return render(request, "account_password.html", context, status_code=status)
    # A person who was on a one-time password may now start work.
    target = "/" if me.must_change_password else "/account?done=password"
    return RedirectResponse(target, status_code=303)


@router.get("/account/totp", response_class=HTMLResponse)
def totp_page(request: Request, services: ServicesFor) -> HTMLResponse:
    account = services.call(get_user, services.principal.username, read_only=True)
    context = {
        "account": account,
        "enrolment": None,
        "problem": None,
        "done": request.query_params.get("done"),
    }
    return render(request, "account_totp.html", context)


@router.post("/account/totp/enrol", response_class=HTMLResponse)
def totp_enrol(request: Request, services: ServicesFor) -> HTMLResponse:
    """A new key for the authenticator app, in this answer only (a reload of a GET must not
    replace a key someone has just scanned)."""
    enrolment = services.call(enrol_totp)
    return totp_setup(request, services, enrolment.secret, enrolment.uri)


def qr_modules(text: str) -> list[list[bool]] | None:
    """``text`` as a QR code: rows of modules, True for dark, with a quiet zone; None where
    OpenCV (already in use for media) cannot make one."""
    import cv2  # imported here: only this page needs it

    try:
        matrix = cv2.QRCodeEncoder.create().encode(text)
    except (AttributeError, cv2.error):
        return None
    return [[value == 0 for value in row] for row in matrix.tolist()]


def qr_svg_path(modules: list[list[bool]]) -> str:
    """An SVG path drawing the dark modules, one rectangle per run of them in a row."""
    parts = []
    for y, row in enumerate(modules):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            parts.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    return "".join(parts)


def totp_setup(
    request: Request,
    services: ServicesFor,
    secret: str,
    uri: str,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    account = services.call(get_user, services.principal.username, read_only=True)
    groups = [secret[i : i + 4] for i in range(0, len(secret), 4)]
    modules = qr_modules(uri) if uri.startswith("otpauth://") else None
    qr = {"size": len(modules), "path": qr_svg_path(modules)} if modules else None
    context = {
        "account": account,
        "enrolment": {"secret": secret, "groups": groups, "uri": uri, "qr": qr},
        "problem": problem,
        "done": None,
    }
    return render(request, "account_totp.html", context, status_code=status_code)


@router.post("/account/totp", response_class=HTMLResponse)
def totp_confirm(
    request: Request,
    services: ServicesFor,
    code: Annotated[str, Form(max_length=20)],
    secret: Annotated[str, Form(max_length=64)] = "",
    uri: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    """Turns the second factor on. ``secret`` and ``uri`` come back from the set-up page only
    to show them again after a wrong code (the service checks the key it keeps)."""
    try:
        services.call(confirm_totp, code)
    except ValidationError:
        return totp_setup(request, services, secret, uri, "bad_code", 422)
    return RedirectResponse("/account/totp?done=on", status_code=303)


@router.post("/account/totp/disable", response_class=HTMLResponse)
def totp_disable(request: Request, services: ServicesFor, password: Secret) -> Response:
    try:
        services.call(disable_totp, password=password)
    except LoginFailed:
        account = services.call(get_user, services.principal.username, read_only=True)
        context = {"account": account, "enrolment": None, "problem": "bad_password", "done": None}
        return render(request, "account_totp.html", context, status_code=403)
    return RedirectResponse("/account/totp?done=off", status_code=303)


@router.post("/account/tokens", response_class=HTMLResponse)
def token_create(
    request: Request,
    services: ServicesFor,
    name: Annotated[str, Form(max_length=100)],
    lifetime: Annotated[Literal["30", "90", "365", "never"], Form()] = "90",
) -> HTMLResponse:
    """The new token is in this answer, once (no redirect: nothing keeps it to show again)."""
    try:
        token = services.call(create_api_token, name, expires_days=TOKEN_LIFETIMES[lifetime])
    except ValidationError:
        return account_page(request, services, status_code=422, problem="token_name")
    return account_page(request, services, status_code=201, new_token=token)


@router.post("/account/tokens/{token_id}/revoke")
def token_revoke(services: ServicesFor, token_id: ItemId) -> RedirectResponse:
    services.call(revoke_api_token, token_id)
    return RedirectResponse("/account?done=token_revoked", status_code=303)


@router.post("/account/sessions/{session_id}/revoke")
def session_revoke(services: ServicesFor, session_id: ItemId) -> RedirectResponse:
    services.call(revoke_session, session_id)
    return RedirectResponse("/account?done=session_revoked", status_code=303)


# --- API ----------------------------------------------------------------------------------


@api.get("/account")
def api_account(services: ServicesFor) -> AccountOut:
    """The signed-in person (or the bearer token's owner) with their preferences."""
    return AccountOut.of(services.call(get_user, services.principal.username, read_only=True))


@api.patch("/account", responses=REFUSALS)
def api_preferences(
    services: ServicesFor, preferences: Annotated[PreferencesIn, Body()]
) -> AccountOut:
    """Change one's language, blur level or display name (fields left out stay)."""
    account = services.call(
        update_user,
        services.principal.username,
        language=preferences.language,
        blur_level=preferences.blur_level,
        display_name=preferences.display_name,
    )
    return AccountOut.of(account)


@api.post("/account/password", responses=REFUSALS, response_model=AccountOut)
def api_password(
    request: Request, services: ServicesFor, change: Annotated[PasswordChangeIn, Body()]
) -> Any:
    """Change one's own password with the current one; every session of the account ends
    (API tokens go on working)."""
    try:
        account = services.call(change_password, change.current_password, change.new_password)
    except (LoginFailed, LoginThrottled) as refusal:
        return login_refusal(request, refusal)
    return AccountOut.of(account)


@api.get("/account/tokens")
def api_tokens(services: ServicesFor) -> list[TokenOut]:
    """One's own API tokens, revoked and expired ones included."""
    tokens = services.call(list_api_tokens, services.principal.username, read_only=True)
    return [TokenOut.of(token) for token in tokens]


@api.post("/account/tokens", status_code=201, responses=REFUSALS)
def api_token_create(services: ServicesFor, token: Annotated[TokenIn, Body()]) -> NewTokenOut:
    """A new token for one's own account; ``token`` is in this answer only."""
    made = services.call(create_api_token, token.name, expires_days=token.expires_days)
    return NewTokenOut.of(made)


@api.delete("/account/tokens/{token_id}", responses=REFUSALS)
def api_token_revoke(request: Request, services: ServicesFor, token_id: ItemId) -> TokenOut:
    """Revoke a token (one's own; an administrator's, anyone's). The token a request comes
    with cannot revoke itself."""
    revoked = services.call(revoke_api_token, token_id, in_use=bearer_token(request))
    return TokenOut.of(revoked)


@api.get("/account/sessions")
def api_sessions(services: ServicesFor) -> list[SessionOut]:
    """One's own live sessions (signed-in browsers)."""
    return [SessionOut.of(s) for s in services.call(list_sessions, read_only=True)]


@api.delete("/account/sessions/{session_id}", status_code=204, responses=REFUSALS)
def api_session_revoke(services: ServicesFor, session_id: ItemId) -> Response:
    """End a session (one's own; an administrator's, anyone's)."""
    services.call(revoke_session, session_id)
    return Response(status_code=204)


@api.post("/account/totp/enrol", responses=REFUSALS)
def api_totp_enrol(services: ServicesFor) -> TotpOut:
    """A new second-factor key (shown once), in force after a code confirms it."""
    enrolment = services.call(enrol_totp)
    return TotpOut(secret=enrolment.secret, uri=enrolment.uri)


@api.post("/account/totp", responses=REFUSALS)
def api_totp_confirm(services: ServicesFor, body: Annotated[TotpCodeIn, Body()]) -> AccountOut:
    """Turn the second factor on with a current code from the new key."""
    return AccountOut.of(services.call(confirm_totp, body.code))


@api.post("/account/totp/disable", responses=REFUSALS, response_model=AccountOut)
def api_totp_disable(
    request: Request, services: ServicesFor, body: Annotated[PasswordIn, Body()]
) -> Any:
    """Turn one's own second factor off, with the password."""
    try:
        account = services.call(disable_totp, password=body.password)
    except LoginFailed as refusal:
        return login_refusal(request, refusal)
    return AccountOut.of(account)
