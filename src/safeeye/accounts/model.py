"""What the accounts services hand out: accounts, clients, languages and blur levels."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from safeeye.db.models import User
from safeeye.errors import ValidationError
from safeeye.media.blur import DIVISOR
from safeeye.work import Role

#: The roles a person can be given (``system`` is for processes only).
ASSIGNABLE_ROLES: tuple[Role, ...] = tuple(role for role in Role if role is not Role.SYSTEM)
USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
#: Actor names of logged-in people: ``user:<username>``.
ACTOR_PREFIX = "user:"
MAX_CLIENT_CHARS = 300


class Language(StrEnum):
    """The workbench's language for one person."""

    KO = "ko"
    EN = "en"


class BlurLevel(StrEnum):
    """How strongly previews are blurred for one person (``strong`` hides faces and bodies)."""

    STRONG = "strong"
    MEDIUM = "medium"
    LIGHT = "light"

    @property
    def divisor(self) -> float:
        """The ``media.blur`` divisor: the radius is the picture's longest side over this."""
        return {"strong": DIVISOR, "medium": DIVISOR * 2, "light": DIVISOR * 4}[self.value]


@dataclass(frozen=True)
class Account:
    """A user as the other layers see it (never the password hash or the TOTP secret)."""

    id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    language: str
    blur_level: str
    disabled: bool
    must_change_password: bool
    totp_enabled: bool
    created_at: str
    last_login_at: str | None

    @property
    def actor_name(self) -> str:
        return ACTOR_PREFIX + self.username


@dataclass(frozen=True)
class Client:
    """Where a request comes from, as the web layer saw it."""

    address: str | None = None
    user_agent: str | None = None

    def summary(self) -> str | None:
        """The address and browser in one short line (kept on the session)."""
        parts = [part.strip() for part in (self.address, self.user_agent) if part and part.strip()]
        text = " ".join(parts)
        clean = "".join(ch if ch.isprintable() else "?" for ch in text)
        return clean[:MAX_CLIENT_CHARS] or None


def account_of(user: User) -> Account:
    return Account(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=tuple(user.roles),
        language=user.language,
        blur_level=user.blur_level,
        disabled=user.disabled,
        must_change_password=user.must_change_password,
        totp_enabled=user.totp_enabled,
        created_at=user.created_at.isoformat(),
        last_login_at=user.last_login_at.isoformat() if user.last_login_at else None,
    )


def normal_username(value: str) -> str:
    """``value`` as a stored username (lowercase), or ValidationError saying what is allowed."""
    name = str(value).strip().lower()
    if not USERNAME.match(name):
        raise ValidationError(
            "a username is 2 to 64 characters: a letter first, then letters, digits, '.', '_' "
            "or '-'"
        )
    return name


def role_names(values: Iterable[str | Role]) -> list[str]:
    """The roles given, checked and in a stable order (at least one)."""
    given = {str(value).strip().lower() for value in values}
    known = {role.value for role in ASSIGNABLE_ROLES}
    unknown = sorted(given - known)
    if unknown:
        raise ValidationError(
            f"unknown role {unknown[0]!r}: one of {', '.join(sorted(known))}", code="invalid"
        )
    if not given:
        raise ValidationError("give the account at least one role")
    return [role.value for role in ASSIGNABLE_ROLES if role.value in given]


def valid_language(value: str) -> str:
    try:
        return Language(str(value).strip().lower()).value
    except ValueError as exc:
        raise ValidationError("the language is 'ko' or 'en'") from exc


def valid_blur_level(value: str) -> str:
    try:
        return BlurLevel(str(value).strip().lower()).value
    except ValueError as exc:
        raise ValidationError("the blur level is one of strong, medium, light") from exc
