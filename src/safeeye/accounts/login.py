"""Logging in: a name and password (and a TOTP code where the account has one) become the
account, or a typed refusal that tells a guesser nothing.

An unknown name, a wrong password and a disabled account give the same ``LoginFailed``, and
take as long (a dummy hash is verified for unknown names). Before anything is checked the
throttle is asked (``LoginThrottled`` with the seconds to wait); each failure is counted and
committed even though the login is refused.
"""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy import select

from safeeye.accounts import throttle
from safeeye.accounts.errors import LoginFailed, LoginThrottled, SecondFactorRequired
from safeeye.accounts.model import ACTOR_PREFIX, Account, Client, account_of
from safeeye.accounts.passwords import hash_password, needs_rehash, verify_password
from safeeye.accounts.rows import secrets_key
from safeeye.accounts.totp import accept_code
from safeeye.db.models import User
from safeeye.db.types import utcnow
from safeeye.work import Actor, Work

#: Who acts before anyone has logged in (a login form, an API call without a token).
ANONYMOUS = Actor("web:anonymous", frozenset())
MAX_NAME_CHARS = 200


def authenticate(
    work: Work,
    username: str,
    password: str,
    totp_code: str | None = None,
    client: Client | None = None,
) -> Account:
    """The account ``username`` and ``password`` (and ``totp_code``) prove, or: LoginFailed
    (wrong credentials, or code ``bad_totp``), LoginThrottled (``retry_after`` seconds), or
    SecondFactorRequired (the password was right; ask for the code and try again with it).

    An account that must change its password is returned with ``must_change_password`` set;
    ``actor_for`` gives it no role until it has."""
    client = client or Client()
    name = str(username).strip().lower()[:MAX_NAME_CHARS]
    policy = throttle.ThrottlePolicy.from_settings(work.app.settings)
    keys = throttle.attempt_keys(secrets_key(work), name, client.address)
    throttle.serialise(work.session, keys)
    now = utcnow()
    wait = throttle.seconds_to_wait(work.session, policy, keys, now)
    if wait:
        raise LoginThrottled(wait)
    user = work.session.execute(select(User).where(User.username == name)).scalar_one_or_none()
    right = verify_password(user.password_hash if user else None, password)
    if user is None or not right or user.disabled:
        reason = "unknown" if user is None else "disabled" if right else "password"
        _refuse(work, policy, keys, user, reason, client, LoginFailed())
    if user.totp_enabled:
        if not totp_code:
            raise SecondFactorRequired()
        if not accept_code(work, user, totp_code, now):
            refusal = LoginFailed("the code is wrong or was used already", code="bad_totp")
            _refuse(work, policy, keys, user, "totp", client, refusal)
    rehashed = needs_rehash(user.password_hash)
    if rehashed:
        user.password_hash = hash_password(password)
    user.last_login_at = now
    throttle.record(work.session, policy, keys, succeeded=True, now=now)
    work.app.audit.append(
        work.session,
        ACTOR_PREFIX + user.username,
        "account.login",
        "user",
        user.id,
        {"totp": user.totp_enabled, "rehashed": rehashed, "address": client.address},
    )
    return account_of(user)


def _refuse(
    work: Work,
    policy: throttle.ThrottlePolicy,
    keys: throttle.AttemptKeys,
    user: User | None,
    reason: str,
    client: Client,
    refusal: LoginFailed,
) -> NoReturn:
    """Count the failure, note it for a known account, commit, and raise ``refusal``."""
    now = utcnow()
    throttle.record(work.session, policy, keys, succeeded=False, now=now)
    if user is not None:  # a name nobody has may be a password typed in the wrong field
        locked = throttle.seconds_to_wait(work.session, policy, keys, now) > 0
        work.audit(
            "account.login_failed",
            "user",
            user.id,
            {"reason": reason, "address": client.address, "throttled_now": locked},
        )
    work.commit()
    raise refusal
