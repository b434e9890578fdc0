"""Accounts and authentication: who may log in to the workbench, and as what.

The web layer calls these services and knows nothing of hashes or tokens: ``authenticate``
then ``start_session`` at login, ``resolve_session`` (or ``resolve_api_token``) and
``actor_for`` on each request, ``check_csrf`` on each form, ``end_session`` at logout.
See docs/accounts.md.
"""

from safeeye.accounts.bootstrap import FirstAdmin, ensure_first_admin
from safeeye.accounts.errors import LoginFailed, LoginThrottled, SecondFactorRequired
from safeeye.accounts.login import ANONYMOUS, authenticate
from safeeye.accounts.model import ASSIGNABLE_ROLES, Account, BlurLevel, Client, Language
from safeeye.accounts.sessions import (
    SessionInfo,
    SessionSummary,
    StartedSession,
    check_csrf,
    end_session,
    list_sessions,
    resolve_session,
    revoke_session,
    start_session,
)
from safeeye.accounts.tokens import (
    ApiTokenSummary,
    NewApiToken,
    create_api_token,
    list_api_tokens,
    resolve_api_token,
    revoke_api_token,
)
from safeeye.accounts.totp import TotpEnrolment, confirm_totp, disable_totp, enrol_totp
from safeeye.accounts.users import (
    IssuedPassword,
    actor_for,
    change_password,
    count_users,
    create_user,
    get_user,
    list_users,
    reset_password,
    update_user,
)

__all__ = [
    "ANONYMOUS",
    "ASSIGNABLE_ROLES",
    "Account",
    "ApiTokenSummary",
    "BlurLevel",
    "Client",
    "FirstAdmin",
    "IssuedPassword",
    "Language",
    "LoginFailed",
    "LoginThrottled",
    "NewApiToken",
    "SecondFactorRequired",
    "SessionInfo",
    "SessionSummary",
    "StartedSession",
    "TotpEnrolment",
    "actor_for",
    "authenticate",
    "change_password",
    "check_csrf",
    "confirm_totp",
    "count_users",
    "create_api_token",
    "create_user",
    "disable_totp",
    "end_session",
    "enrol_totp",
    "ensure_first_admin",
    "get_user",
    "list_api_tokens",
    "list_sessions",
    "list_users",
    "reset_password",
    "resolve_api_token",
    "resolve_session",
    "revoke_api_token",
    "revoke_session",
    "start_session",
    "update_user",
]
