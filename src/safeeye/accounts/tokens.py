"""API tokens for automation: a bearer token that acts as its account, shown once and stored
only as its SHA-256, with an optional expiry, revocable at any time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from safeeye.accounts import bearer
from safeeye.accounts.model import Account, account_of
from safeeye.accounts.rows import own_or_admin, username_of
from safeeye.db.models import ApiToken, User
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, NotFoundError, ValidationError
from safeeye.work import Role, Work

#: Every token starts so: secret scanners (and people) recognise a leaked one.
TOKEN_PREFIX = "sey_"
PREFIX_CHARS = 12
MAX_TOKEN_DAYS = 3650
#: ``last_used_at`` is written at most this often.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class NewApiToken:
    """A token just made: ``token`` is shown now and never again."""

    id: int
    username: str
    name: str
    token: str
    prefix: str
    expires_at: str | None


@dataclass(frozen=True)
class ApiTokenSummary:
    id: int
    username: str
    name: str
    prefix: str
    created_at: str
    created_by: str
    last_used_at: str | None
    expires_at: str | None
    status: str  # active | expired | revoked


def create_api_token(
    work: Work, name: str, username: str | None = None, *, expires_days: float | None = 90
) -> NewApiToken:
    """A token for one's own account (or, for an administrator, for ``username``), good for
    ``expires_days`` (None: until revoked)."""
    user = own_or_admin(work, username, "create API tokens")
    label = " ".join(str(name).split())
    if not label or len(label) > 100 or not label.isprintable():
        raise ValidationError("a token's name is 1 to 100 printable characters")
    if expires_days is not None and not 0 < expires_days <= MAX_TOKEN_DAYS:
        raise ValidationError(f"a token lasts between a moment and {MAX_TOKEN_DAYS} days")
    now = utcnow()
    token = bearer.new_secret(TOKEN_PREFIX)
    row = ApiToken(
        user_id=user.id,
        name=label,
        token_digest=bearer.digest(token),
        prefix=token[:PREFIX_CHARS],
        created_at=now,
        created_by=work.actor.name,
        expires_at=now + timedelta(days=expires_days) if expires_days is not None else None,
    )
    work.session.add(row)
    work.session.flush()
    work.audit(
        "account.token_created",
        "api_token",
        row.id,
        {"user": user.username, "name": label, "prefix": row.prefix, "expires_days": expires_days},
    )
    expires = row.expires_at.isoformat() if row.expires_at else None
    return NewApiToken(row.id, user.username, label, token, row.prefix, expires)


def list_api_tokens(work: Work, username: str | None = None) -> list[ApiTokenSummary]:
    """One's own tokens; an administrator or auditor sees anyone's (every account's when
    ``username`` is None)."""
    own = username_of(work.actor)
    target = username.strip().lower() if username else None
    if target is None and own is not None and not work.actor.may(Role.ADMIN, Role.AUDITOR):
        target = own
    if target is None or target != own:
        work.require(Role.ADMIN, Role.AUDITOR, action="list other accounts' tokens")
    query = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id)
    if target is not None:
        query = query.where(User.username == target)
    now = utcnow()
    rows = work.session.execute(query.order_by(ApiToken.id)).all()
    return [_summary(row, name, now) for row, name in rows]


def revoke_api_token(
    work: Work, token_id: int, *, in_use: str | None = None, owner: str | None = None
) -> ApiTokenSummary:
    """Revoke a token: one's own, or anyone's as an administrator. ``in_use``: the token the
    request came with, which may not revoke itself (the caller would lock itself out midway;
    revoke it with another token or from the account page). ``owner``: the token must be that
    account's (else it is not found)."""
    found = work.session.execute(
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.id == token_id)
    ).one_or_none()
    if found is None:
        raise NotFoundError(f"no API token {token_id}")
    row, username = found
    if owner is not None and username != owner:
        raise NotFoundError(f"no API token {token_id} of {owner}")
    own_or_admin(work, username, "revoke API tokens")
    if in_use and row.token_digest == bearer.digest(in_use):
        raise ConflictError("a token cannot revoke itself: use another token or the account page")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        work.audit("account.token_revoked", "api_token", row.id, {"user": username})
    return _summary(row, username, utcnow())


def resolve_api_token(work: Work, token: str | None) -> Account | None:
    """The account a bearer token acts as, or None (unknown, revoked, expired, or its account
    disabled). Notes its use about once a minute, so call it in a unit of work that may write."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    found = work.session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_digest == bearer.digest(token))
    ).one_or_none()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    if _status(row, now) != "active" or user.disabled:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return account_of(user)


def _status(row: ApiToken, now: datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and now >= row.expires_at:
        return "expired"
    return "active"


def _summary(row: ApiToken, username: str, now: datetime) -> ApiTokenSummary:
    return ApiTokenSummary(
        row.id,
        username,
        row.name,
        row.prefix,
        row.created_at.isoformat(),
        row.created_by,
        row.last_used_at.isoformat() if row.last_used_at else None,
        row.expires_at.isoformat() if row.expires_at else None,
        _status(row, now),
    )
