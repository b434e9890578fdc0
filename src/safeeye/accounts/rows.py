"""Finding the account a service acts on: by name, or the acting person's own."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from safeeye.accounts.model import ACTOR_PREFIX
from safeeye.db.models import User
from safeeye.errors import NotFoundError, PermissionDenied
from safeeye.work import Actor, Role, Work

#: The service key that seals TOTP secrets and keys the throttle's digests.
SECRETS_KEY = "account-secrets"


def secrets_key(work: Work) -> bytes:
    return work.app.keys.service(SECRETS_KEY)


def username_of(actor: Actor) -> str | None:
    """The username behind an actor made by ``actor_for``; None for consoles and processes."""
    if actor.name.startswith(ACTOR_PREFIX):
        return actor.name.removeprefix(ACTOR_PREFIX)
    return None


def find_user(session: Session, username: str) -> User:
    """The account named ``username`` (NotFoundError when there is none)."""
    user = session.execute(
        select(User).where(User.username == str(username).strip().lower())
    ).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no account {str(username)[:64]!r}")
    return user


def own_user(work: Work, action: str) -> User:
    """The acting person's own account (PermissionDenied for an actor that is not a person)."""
    name = username_of(work.actor)
    if name is None:
        raise PermissionDenied(f"{work.actor.name} may not {action}: only a logged-in person may")
    return find_user(work.session, name)


def own_or_admin(work: Work, username: str | None, action: str) -> User:
    """The actor's own account when ``username`` is None or theirs, else (for an administrator)
    the account named."""
    own = username_of(work.actor)
    if username is None or (own is not None and username.strip().lower() == own):
        return own_user(work, action)
    work.require(Role.ADMIN, action=f"{action} for another account")
    return find_user(work.session, username)
