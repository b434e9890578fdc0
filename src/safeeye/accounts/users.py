"""Accounts: create, list, change (roles, disabled, language, blur level), passwords, and the
``Actor`` a logged-in account acts as.

Administrators manage accounts; auditors may read the list; everyone changes their own
password, language and blur level. The last enabled administrator cannot be disabled or lose
the role, so nobody locks the centre out of its own workbench.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError

from safeeye.accounts import throttle
from safeeye.accounts.errors import LoginFailed, LoginThrottled
from safeeye.accounts.model import (
    Account,
    account_of,
    normal_username,
    role_names,
    valid_blur_level,
    valid_language,
)
from safeeye.accounts.passwords import (
    check_new_password,
    hash_password,
    one_time_password,
    verify_password,
)
from safeeye.accounts.rows import find_user, own_user, secrets_key, username_of
from safeeye.accounts.sessions import revoke_sessions
from safeeye.db.models import User
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, ValidationError
from safeeye.work import Actor, Role, Work


@dataclass(frozen=True)
class IssuedPassword:
    """An account and the one-time password made for it (None when the caller gave one):
    shown once to whoever hands it over, never stored or logged."""

    account: Account
    password: str | None


def actor_for(account: Account) -> Actor:
    """Who a logged-in account acts as in the services: ``user:<name>`` with its roles; none
    while it must change its password or is disabled (then only its own password may change)."""
    if account.disabled or account.must_change_password:
        return Actor(account.actor_name, frozenset())
    return Actor(account.actor_name, frozenset(Role(role) for role in account.roles))


def create_user(
    work: Work,
    username: str,
    roles: Iterable[str | Role],
    *,
    display_name: str = "",
    password: str | None = None,
    language: str = "ko",
    blur_level: str = "strong",
    must_change_password: bool | None = None,
) -> IssuedPassword:
    """A new account (administrators only). Without ``password`` a one-time password is made
    and returned, to be changed at first login (``must_change_password`` defaults to that)."""
    work.require(Role.ADMIN, action="create accounts")
    name = normal_username(username)
    role_list = role_names(roles)
    settings = work.app.settings
    issued = None
    if password is None:
        issued = password = one_time_password()
    else:
        check_new_password(password, username=name, min_length=settings.password_min_length)
    if work.session.execute(select(User.id).where(User.username == name)).first():
        raise ConflictError(f"the username {name!r} is taken")
    user = User(
        username=name,
        display_name=_display_name(display_name),
        roles=role_list,
        password_hash=hash_password(password),
        must_change_password=issued is not None
        if must_change_password is None
        else must_change_password,
        language=valid_language(language),
        blur_level=valid_blur_level(blur_level),
    )
    work.session.add(user)
    try:
        work.session.flush()
    except DBIntegrityError as exc:  # created by someone else meanwhile
        raise ConflictError(f"the username {name!r} is taken") from exc
    work.audit(
        "account.created",
        "user",
        user.id,
        {"username": name, "roles": role_list, "one_time_password": issued is not None},
    )
    return IssuedPassword(account_of(user), issued)


def list_users(work: Work, *, limit: int | None = None, offset: int = 0) -> list[Account]:
    """Every account, by username (administrators and auditors); a page of ``limit`` from
    ``offset`` when asked."""
    work.require(Role.ADMIN, Role.AUDITOR, action="list accounts")
    query = select(User).order_by(User.username).offset(max(0, offset))
    if limit is not None:
        query = query.limit(max(0, limit))
    return [account_of(user) for user in work.session.execute(query).scalars()]


def count_users(work: Work) -> int:
    """How many accounts there are (administrators and auditors), for paging."""
    work.require(Role.ADMIN, Role.AUDITOR, action="list accounts")
    return int(work.session.execute(select(func.count()).select_from(User)).scalar_one())


def get_user(work: Work, username: str) -> Account:
    """One account: one's own, or any for administrators and auditors."""
    if username_of(work.actor) != str(username).strip().lower():
        work.require(Role.ADMIN, Role.AUDITOR, action="read other accounts")
    return account_of(find_user(work.session, username))


def update_user(
    work: Work,
    username: str,
    *,
    roles: Iterable[str | Role] | None = None,
    disabled: bool | None = None,
    display_name: str | None = None,
    language: str | None = None,
    blur_level: str | None = None,
) -> Account:
    """Change an account: roles and disabled by administrators; display name, language and
    blur level by administrators or the account itself. Disabling ends its sessions."""
    user = find_user(work.session, username)
    changes: dict[str, Any] = {}
    own = username_of(work.actor) == user.username
    if roles is not None or disabled is not None:
        work.require(Role.ADMIN, action="change roles or disable accounts")
    elif not own:
        work.require(Role.ADMIN, action="change other accounts")
    if roles is not None and role_names(roles) != user.roles:
        changes["roles"] = role_names(roles)
    if disabled is not None and disabled != user.disabled:
        changes["disabled"] = disabled
    if display_name is not None and _display_name(display_name) != user.display_name:
        changes["display_name"] = _display_name(display_name)
    if language is not None and valid_language(language) != user.language:
        changes["language"] = valid_language(language)
    if blur_level is not None and valid_blur_level(blur_level) != user.blur_level:
        changes["blur_level"] = valid_blur_level(blur_level)
    if not changes:
        return account_of(user)
    if _loses_admin(user, changes) and _other_admins(work, user) == 0:
        raise ConflictError(
            "this is the last enabled administrator: make another one first", code="last_admin"
        )
    if own and ("roles" in changes or "disabled" in changes):
        # Nobody takes away their own access by a slip (or a script holding their token).
        raise ConflictError(
            "you cannot change your own roles or disable your own account: ask another "
            "administrator",
            code="own_account",
        )
    for field, value in changes.items():
        setattr(user, field, value)
    ended = revoke_sessions(work.session, user.id) if changes.get("disabled") else 0
    details = {k: v for k, v in changes.items() if k != "display_name"}
    work.audit(
        "account.updated",
        "user",
        user.id,
        {**details, "display_name_changed": "display_name" in changes, "sessions_ended": ended},
    )
    return account_of(user)


def change_password(
    work: Work, current_password: str, new_password: str, *, keep_session: str | None = None
) -> Account:
    """Change one's own password, given the current one; every other session of the account
    ends (the one whose token is ``keep_session`` stays). Wrong current passwords count
    towards the login throttle."""
    user = own_user(work, "change a password")
    settings = work.app.settings
    policy = throttle.ThrottlePolicy.from_settings(settings)
    keys = throttle.attempt_keys(secrets_key(work), user.username, None)
    now = utcnow()
    throttle.serialise(work.session, keys)
    wait = throttle.seconds_to_wait(work.session, policy, keys, now)
    if wait:
        raise LoginThrottled(wait)
    if not verify_password(user.password_hash, current_password):
        throttle.record(work.session, policy, keys, succeeded=False, now=now)
        work.audit("account.password_change_refused", "user", user.id, {"reason": "password"})
        work.commit()  # the failure counts even though the change is refused
        raise LoginFailed("the current password is wrong", code="bad_password")
    minimum = settings.password_min_length
    check_new_password(new_password, username=user.username, min_length=minimum)
    if verify_password(user.password_hash, new_password):
        raise ConflictError("the new password is the current one")
    _set_password(user, new_password, must_change=False)
    ended = revoke_sessions(work.session, user.id, keep=keep_session)
    work.audit("account.password_changed", "user", user.id, {"sessions_ended": ended})
    return account_of(user)


def reset_password(work: Work, username: str, new_password: str | None = None) -> IssuedPassword:
    """An administrator sets a new password (a one-time one unless given), which must be
    changed at the next login; every session of the account ends."""
    work.require(Role.ADMIN, action="reset passwords")
    user = find_user(work.session, username)
    if username_of(work.actor) == user.username:
        raise ConflictError(
            "change your own password with your current one, not by a reset", code="own_account"
        )
    issued = None
    if new_password is None:
        issued = new_password = one_time_password()
    else:
        check_new_password(
            new_password, username=user.username, min_length=work.app.settings.password_min_length
        )
    _set_password(user, new_password, must_change=True)
    ended = revoke_sessions(work.session, user.id)
    work.audit(
        "account.password_reset",
        "user",
        user.id,
        {"one_time_password": issued is not None, "sessions_ended": ended},
    )
    return IssuedPassword(account_of(user), issued)


def _set_password(user: User, password: str, *, must_change: bool) -> None:
    user.password_hash = hash_password(password)
    user.must_change_password = must_change
    user.password_changed_at = utcnow()


def _display_name(value: str) -> str:
    text = " ".join(str(value).split())
    if len(text) > 200 or not text.isprintable():
        raise ValidationError("a display name is at most 200 printable characters")
    return text


def _loses_admin(user: User, changes: dict[str, Any]) -> bool:
    is_admin = Role.ADMIN.value in user.roles and not user.disabled
    stays = Role.ADMIN.value in changes.get("roles", user.roles) and not changes.get(
        "disabled", user.disabled
    )
    return is_admin and not stays


def _other_admins(work: Work, user: User) -> int:
    enabled = work.session.execute(
        select(User.roles).where(User.id != user.id, User.disabled.is_(False))
    ).scalars()
    return sum(Role.ADMIN.value in roles for roles in enabled)
