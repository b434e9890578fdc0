"""Web sessions kept on the server: a random cookie token of which only the SHA-256 is stored.

A session ends at the first of: logout, ``session_idle_minutes`` without a request (a sliding
timeout), ``session_lifetime_hours`` after login (an absolute one), a password change or reset,
or its account being disabled. Each session has a CSRF token derived from it, for every form.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from safeeye.accounts import bearer
from safeeye.accounts.model import Account, Client, account_of
from safeeye.accounts.rows import own_or_admin, secrets_key
from safeeye.crypto import derive_key, keyed_digest
from safeeye.db.models import User, WebSession
from safeeye.db.types import utcnow
from safeeye.errors import NotFoundError, PermissionDenied
from safeeye.work import Work

#: ``last_seen_at`` is written at most this often (not on every request); the idle timeout is
#: that much less exact.
TOUCH_EVERY = timedelta(seconds=60)
#: Sessions over for this long are deleted when new ones start.
KEEP_ENDED = timedelta(days=7)


@dataclass(frozen=True)
class StartedSession:
    """A new session: ``token`` goes into the cookie (HttpOnly, Secure, SameSite) and nowhere
    else; ``max_age_seconds`` is the cookie's Max-Age."""

    token: str
    session_id: int
    csrf_token: str
    expires_at: str
    max_age_seconds: int


@dataclass(frozen=True)
class SessionInfo:
    """A live session and its account, as each request sees it."""

    session_id: int
    account: Account
    csrf_token: str
    created_at: str
    expires_at: str  # the absolute end; the idle end moves with each request


@dataclass(frozen=True)
class SessionSummary:
    """A session as its owner (or an administrator) lists it."""

    session_id: int
    username: str
    client: str | None
    created_at: str
    last_seen_at: str
    expires_at: str
    active: bool
    #: The session of the request that lists them (``list_sessions(current=token)``).
    current: bool = False


def start_session(work: Work, account: Account, client: Client | None = None) -> StartedSession:
    """A session for ``account`` (just returned by ``authenticate``)."""
    user = work.session.get(User, account.id)
    if user is None or user.disabled:
        raise PermissionDenied("this account may not log in")
    settings = work.app.settings
    now = utcnow()
    lifetime = timedelta(hours=settings.session_lifetime_hours)
    token = bearer.new_secret()
    row = WebSession(
        token_digest=bearer.digest(token),
        user_id=account.id,
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        client=client.summary() if client else None,
    )
    work.session.execute(delete(WebSession).where(WebSession.expires_at < now - KEEP_ENDED))
    work.session.add(row)
    work.session.flush()
    work.app.audit.append(
        work.session, account.actor_name, "account.session_started", "web_session", row.id
    )
    return StartedSession(
        token,
        row.id,
        csrf_token(work, row.token_digest),
        row.expires_at.isoformat(),
        int(lifetime.total_seconds()),
    )


def resolve_session(work: Work, token: str | None) -> SessionInfo | None:
    """The live session whose cookie holds ``token``, or None (unknown, ended, idle too long,
    past its lifetime, or its account disabled). Call it in a unit of work that may write: it
    notes the request time about once a minute."""
    if not token:
        return None
    digest = bearer.digest(token)
    found = work.session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_digest == digest)
    ).one_or_none()
    if found is None:
        return None
    row, user = found
    now = utcnow()
    if not _live(work, row, now) or user.disabled:
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    return SessionInfo(
        row.id,
        account_of(user),
        csrf_token(work, digest),
        row.created_at.isoformat(),
        row.expires_at.isoformat(),
    )


def end_session(work: Work, token: str | None) -> bool:
    """Log out: the session of ``token`` ends (False when it was not live)."""
    if not token:
        return False
    row = work.session.execute(
        select(WebSession).where(WebSession.token_digest == bearer.digest(token))
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    user = work.session.get(User, row.user_id)
    assert user is not None
    work.app.audit.append(
        work.session, f"user:{user.username}", "account.logout", "web_session", row.id
    )
    return True


def list_sessions(
    work: Work, username: str | None = None, *, current: str | None = None
) -> list[SessionSummary]:
    """The live sessions of one's own account (or, for an administrator, of ``username``);
    the one whose cookie token is ``current`` is marked so."""
    user = own_or_admin(work, username, "list sessions")
    now = utcnow()
    rows = work.session.execute(
        select(WebSession)
        .where(WebSession.user_id == user.id, WebSession.revoked_at.is_(None))
        .order_by(WebSession.id.desc())
    ).scalars()
    mine = bearer.digest(current) if current else None
    return [
        replace(_summary(work, row, user.username, now), current=row.token_digest == mine)
        for row in rows
        if _live(work, row, now)
    ]


def revoke_session(work: Work, session_id: int) -> None:
    """End one session: one's own, or anyone's as an administrator."""
    row = work.session.get(WebSession, session_id)
    user = work.session.get(User, row.user_id) if row else None
    if row is None or user is None:
        raise NotFoundError(f"no session {session_id}")
    own_or_admin(work, user.username, "end sessions")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        work.audit("account.session_revoked", "web_session", row.id)


def revoke_sessions(session: Session, user_id: int, keep: str | None = None) -> int:
    """End every session of an account, but the one whose token is ``keep``; how many ended."""
    query = update(WebSession).where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
    if keep:
        query = query.where(WebSession.token_digest != bearer.digest(keep))
    result = session.execute(query.values(revoked_at=utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def csrf_token(work: Work, session_digest: str) -> str:
    """The session's CSRF token: derived from it under a service key (nothing more stored)."""
    return keyed_digest(derive_key(secrets_key(work), "csrf"), session_digest)


def check_csrf(info: SessionInfo, submitted: str | None) -> bool:
    """Whether a form's CSRF token is the session's (in constant time)."""
    return bool(submitted) and hmac.compare_digest(info.csrf_token, str(submitted))


def _live(work: Work, row: WebSession, now: datetime) -> bool:
    idle = timedelta(minutes=work.app.settings.session_idle_minutes)
    return row.revoked_at is None and now < row.expires_at and now < row.last_seen_at + idle


def _summary(work: Work, row: WebSession, username: str, now: datetime) -> SessionSummary:
    return SessionSummary(
        row.id,
        username,
        row.client,
        row.created_at.isoformat(),
        row.last_seen_at.isoformat(),
        row.expires_at.isoformat(),
        _live(work, row, now),
    )
