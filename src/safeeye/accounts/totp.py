"""Time-based one-time codes (RFC 6238) as a second factor: enrol, confirm, check, disable.

The secret is sealed under the account-secrets service key; a code is accepted for the time
step it belongs to or one step either side (clock drift), and never for a step at or before
the last one used, so a code seen over someone's shoulder cannot be replayed.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp

from safeeye.accounts.errors import LoginFailed
from safeeye.accounts.model import Account, account_of
from safeeye.accounts.passwords import verify_password
from safeeye.accounts.rows import own_or_admin, own_user, secrets_key, username_of
from safeeye.crypto import seal, unseal
from safeeye.db.models import User
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, ValidationError
from safeeye.work import Work

ISSUER = "safeeye"
#: Steps either side of now that are still accepted (30 s each).
DRIFT_STEPS = 1


@dataclass(frozen=True)
class TotpEnrolment:
    """What the person's authenticator app needs: shown once, as text and as a QR code."""

    secret: str  # base32
    uri: str  # otpauth://totp/...


def enrol_totp(work: Work) -> TotpEnrolment:
    """A new secret for the actor's own account, not in force until ``confirm_totp``."""
    user = own_user(work, "enrol a second factor")
    if user.totp_enabled:
        raise ConflictError("the second factor is already on: turn it off first")
    secret = pyotp.random_base32()
    user.totp_sealed = _seal(work, user, secret)
    user.totp_last_step = None
    work.audit("account.totp_enrolled", "user", user.id)
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
    return TotpEnrolment(secret, uri)


def confirm_totp(work: Work, code: str) -> Account:
    """Turn the second factor on once the person shows a current code from the new secret."""
    user = own_user(work, "confirm a second factor")
    if user.totp_enabled:
        raise ConflictError("the second factor is already on")
    if user.totp_sealed is None:
        raise ConflictError("no second factor is being set up: enrol first")
    step = matching_step(_unseal(work, user), code, None, utcnow())
    if step is None:
        raise ValidationError("the code does not match: check the phone's clock and try again")
    user.totp_enabled = True
    user.totp_last_step = step
    work.audit("account.totp_enabled", "user", user.id)
    return account_of(user)


def disable_totp(work: Work, username: str | None = None, password: str | None = None) -> Account:
    """Turn the second factor off: one's own with the password, anyone's as an administrator
    (a lost phone)."""
    user = own_or_admin(work, username, "turn a second factor off")
    if username_of(work.actor) == user.username and not verify_password(
        user.password_hash, password or ""
    ):
        raise LoginFailed("the password is wrong", code="bad_password")
    user.totp_enabled = False
    user.totp_sealed = None
    user.totp_last_step = None
    work.audit("account.totp_disabled", "user", user.id)
    return account_of(user)


def accept_code(work: Work, user: User, code: str | None, now: datetime) -> bool:
    """Whether ``code`` is a fresh code of ``user``'s second factor; the step it used is
    recorded so it cannot be used again."""
    if not user.totp_enabled or user.totp_sealed is None:
        return False
    step = matching_step(_unseal(work, user), code or "", user.totp_last_step, now)
    if step is None:
        return False
    user.totp_last_step = step
    return True


def matching_step(secret: str, code: str, last_step: int | None, now: datetime) -> int | None:
    """The time step ``code`` belongs to, if it is within the drift and after ``last_step``."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        # every candidate is compared (no early exit), in constant time
        if hmac.compare_digest(totp.generate_otp(step), code) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


def _seal(work: Work, user: User, secret: str) -> bytes:
    return seal(secrets_key(work), secret.encode(), _aad(user))


def _unseal(work: Work, user: User) -> str:
    assert user.totp_sealed is not None
    return unseal(secrets_key(work), user.totp_sealed, _aad(user)).decode()


def _aad(user: User) -> bytes:
    return f"user:{user.id}:totp".encode()
