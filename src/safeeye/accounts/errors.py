"""The errors a login can end in; the web layer maps them to statuses (401, 429)."""

from __future__ import annotations

from safeeye.errors import SafeEyeError


class LoginFailed(SafeEyeError):
    """Wrong credentials: one message whatever was wrong (an unknown name, a wrong password, a
    disabled account), so a guesser learns nothing."""

    code = "bad_credentials"

    def __init__(self, message: str = "wrong username or password", *, code: str | None = None):
        super().__init__(message, code=code)


class LoginThrottled(SafeEyeError):
    """Too many failed logins for this account name or from this address lately."""

    code = "throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins: try again in {retry_after} seconds", code="throttled"
        )
        self.retry_after = retry_after


class SecondFactorRequired(SafeEyeError):
    """The password was right and the account has TOTP on: ask for the six-digit code."""

    code = "totp_required"

    def __init__(self) -> None:
        super().__init__("enter the six-digit code from your authenticator app")
