"""Who is asking: the signed-in ``Principal``, found from the session cookie or an
``Authorization: Bearer`` token through the accounts service, and the cookie that carries a
session.

The accounts package owns users, passwords, sessions (and their CSRF tokens) and API tokens; the
web sees it only through ``AccountsGateway`` (four calls), so no route touches a session table or
a password. A request
names its credential once: a bearer token when it sends one (then the cookie is ignored), else
the session cookie.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import Depends, Request

from safeeye.accounts import (
    ANONYMOUS,
    Account,
    Client,
    actor_for,
    authenticate,
    end_session,
    resolve_api_token,
    resolve_session,
    start_session,
)
from safeeye.errors import PermissionDenied
from safeeye.web.i18n import choose_language
from safeeye.work import Actor, Role

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager

    from safeeye.app import SafeEye
    from safeeye.work import Work

T = TypeVar("T")

Credential = Literal["session", "token"]
SESSION_COOKIE = "safeeye_session"
#: Where the JSON API lives: it answers in JSON, never redirects to a page.
API_PREFIX = "/api/"


@dataclass(frozen=True)
class Principal:
    """The signed-in person of one request, as the pages and the API need them. ``roles``
    are the roles they act with now: none while they must change their password."""

    account_id: int
    username: str
    display_name: str
    roles: frozenset[Role]
    language: str
    blur_level: str
    must_change_password: bool
    credential: Credential

    @property
    def actor(self) -> Actor:
        """Whom the audit log names for what this person does (``user:<username>``)."""
        return Actor(f"user:{self.username}", self.roles)

    def may(self, *roles: Role) -> bool:
        return self.actor.may(*roles)


class NotSignedIn(Exception):
    """No valid credential: 401 on the API, the sign-in page for a page (see ``errors``)."""

    def __init__(self, *, stale_session: bool = False) -> None:
        super().__init__("sign in first")
        #: A session cookie was sent but no longer works: the answer clears it.
        self.stale_session = stale_session


class PasswordChangeRequired(Exception):
    """A person on a one-time password asked for a page other than the password form: they
    are sent there first (see ``errors``). The API answers as usual: such a person has no
    role, so every service refuses them."""


#: The page a person on a one-time password may open (besides signing out).
PASSWORD_PAGE = "/account/password"


@dataclass(frozen=True)
class LiveSession:
    """The signed-in person of a session cookie and the session's CSRF token."""

    principal: Principal
    csrf_token: str


@dataclass(frozen=True)
class SignIn:
    """A session that has just started: the cookie's value and how long it may be kept."""

    token: str
    max_age_seconds: int
    principal: Principal


class AccountsGateway:
    """The accounts service (``safeeye.accounts``) as the web uses it; each call is a unit
    of work of its own, as ``web:anonymous`` (nobody is known yet)."""

    def __init__(self, safe: SafeEye) -> None:
        self.safe = safe

    def by_session(self, token: str) -> LiveSession | None:
        with self.safe.work(ANONYMOUS) as work:
            info = resolve_session(work, token)
        if info is None:
            return None
        return LiveSession(principal_of(info.account, "session"), info.csrf_token)

    def by_api_token(self, token: str) -> Principal | None:
        with self.safe.work(ANONYMOUS) as work:
            account = resolve_api_token(work, token)
        return None if account is None else principal_of(account, "token")

    def sign_in(
        self, username: str, password: str, totp_code: str | None, client: Client
    ) -> SignIn:
        """Check the credentials and start a session in one unit of work; a refusal is the
        accounts service's typed error (``LoginFailed``, ``LoginThrottled``,
        ``SecondFactorRequired``), unchanged."""
        with self.safe.work(ANONYMOUS) as work:
            account = authenticate(work, username, password, totp_code, client)
            started = start_session(work, account, client)
        return SignIn(started.token, started.max_age_seconds, principal_of(account, "session"))

    def sign_out(self, token: str) -> None:
        with self.safe.work(ANONYMOUS) as work:
            end_session(work, token)


def principal_of(account: Account, credential: Credential) -> Principal:
    """An ``accounts.Account`` as the web's ``Principal``; its roles are those
    ``accounts.actor_for`` lets it act with."""
    return Principal(
        account_id=account.id,
        username=account.username,
        display_name=account.display_name or account.username,
        roles=actor_for(account).roles,
        language=account.language,
        blur_level=account.blur_level,
        must_change_password=account.must_change_password,
        credential=credential,
    )


def session_cookie_name(request: Request) -> str:
    """Over HTTPS the cookie takes the ``__Host-`` prefix: the browser then keeps it to this
    host, secure, path ``/``, so no sibling subdomain can plant a session of its choosing."""
    return f"__Host-{SESSION_COOKIE}" if request.url.scheme == "https" else SESSION_COOKIE


def session_cookie(request: Request) -> str | None:
    return request.cookies.get(session_cookie_name(request)) or None


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header (``""`` for a bearer header without
    one); None without such a header."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def client_of(request: Request) -> Client:
    """Where the request comes from, as the accounts service throttles and records it (the
    proxy's address unless uvicorn is told to trust its forwarded headers)."""
    agent = request.headers.get("user-agent")
    return Client(request.client.host if request.client else None, agent[:200] if agent else None)


def gateway(request: Request) -> AccountsGateway:
    return request.app.state.accounts  # type: ignore[no-any-return]


def current_principal(request: Request) -> Principal | None:
    """The signed-in person, or None (resolved once per request). A bearer token that does
    not work is ``NotSignedIn`` at once: it never falls back to the cookie. Sets
    ``request.state``: ``principal``, ``language``, ``csrf_token`` (a live session's) and
    ``stale_session`` (a session cookie was sent that no longer works)."""
    state = request.state
    if hasattr(state, "principal"):
        return state.principal  # type: ignore[no-any-return]
    accounts = gateway(request)
    principal: Principal | None = None
    state.csrf_token = None
    state.stale_session = False
    bearer = bearer_token(request)
    if bearer is not None:
        principal = accounts.by_api_token(bearer) if bearer else None
        if principal is None:
            raise NotSignedIn()
    elif (token := session_cookie(request)) is not None:
        live = accounts.by_session(token)
        if live is None:
            state.stale_session = True
        else:
            principal, state.csrf_token = live.principal, live.csrf_token
    state.principal = principal
    state.language = choose_language(request, principal.language if principal else None)
    return principal


MaybeSignedIn = Annotated[Principal | None, Depends(current_principal)]


def signed_in(request: Request, principal: MaybeSignedIn) -> Principal:
    """The signed-in person; ``NotSignedIn`` otherwise. On a page, a person who must still
    choose their own password is ``PasswordChangeRequired`` except on the password page."""
    if principal is None:
        raise NotSignedIn(stale_session=getattr(request.state, "stale_session", False))
    path = request.url.path
    if principal.must_change_password and path != PASSWORD_PAGE and not path.startswith(API_PREFIX):
        raise PasswordChangeRequired()
    return principal


SignedIn = Annotated[Principal, Depends(signed_in)]


def require_role(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency: the signed-in person when they hold one of ``roles`` (an admin holds
    all), else ``PermissionDenied`` (403). ``Annotated[Principal, Depends(require_role(...))]``."""

    def check(principal: SignedIn) -> Principal:
        if not principal.may(*roles):
            raise PermissionDenied(f"{principal.actor.name} may not open this page")
        return principal

    return check


class Services:
    """How a route calls a domain service: ``services.call(list_cases)`` runs
    ``list_cases(work)`` in one unit of work as the signed-in person (whose roles the service
    checks with ``work.require``); typed errors reach the error handlers unchanged."""

    def __init__(self, safe: SafeEye, principal: Principal) -> None:
        self.safe = safe
        self.principal = principal

    def call(
        self,
        service: Callable[..., T],
        *args: Any,
        read_only: bool = False,
        **kwargs: Any,
    ) -> T:
        with self.safe.work(self.principal.actor, read_only=read_only) as work:
            return service(work, *args, **kwargs)

    def work(self, *, read_only: bool = False) -> AbstractContextManager[Work]:
        """One unit of work as the signed-in person, for a route that makes several calls
        that must commit together (``with services.work() as work: ...``)."""
        return self.safe.work(self.principal.actor, read_only=read_only)


def services(request: Request, principal: SignedIn) -> Services:
    return Services(request.app.state.safe, principal)


ServicesFor = Annotated[Services, Depends(services)]
__all__ = [
    "PASSWORD_PAGE",
    "AccountsGateway",
    "MaybeSignedIn",
    "NotSignedIn",
    "PasswordChangeRequired",
    "Principal",
    "Services",
    "ServicesFor",
    "SignedIn",
    "require_role",
]
