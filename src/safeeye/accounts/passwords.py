"""Password hashing (Argon2id), the rules for a new password, and one-time passwords."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from safeeye.errors import ValidationError

#: Argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile: t=3, 64 MiB, p=4).
HASHER = PasswordHasher()
#: Longer input is refused before hashing (Argon2 takes any length; nobody types this much).
MAX_PASSWORD_CHARS = 1024
#: Letters and digits that cannot be mistaken for each other when read aloud or copied.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string) to store for ``password``."""
    return HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored``; with no hash (an unknown user) a dummy hash is
    verified instead, so the answer takes as long either way."""
    if len(password) > MAX_PASSWORD_CHARS:
        password = password[:MAX_PASSWORD_CHARS]  # still spend the same time, still fail below
        stored = None
    try:
        HASHER.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with weaker parameters than ``HASHER``'s."""
    return HASHER.check_needs_rehash(stored)


def check_new_password(password: str, *, username: str, min_length: int) -> None:
    """ValidationError saying what to change, unless ``password`` may be set."""
    if len(password) < min_length:
        raise ValidationError(f"a password needs at least {min_length} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValidationError(f"a password has at most {MAX_PASSWORD_CHARS} characters")
    if password.strip().lower() == username.lower():
        raise ValidationError("a password must not be the username")
    if len(set(password)) < 4:
        raise ValidationError("a password needs more than three different characters")


def one_time_password() -> str:
    """A random password to hand over once (about 99 bits): ``xxxxx-xxxxx-xxxxx-xxxxx``."""
    groups = ("".join(secrets.choice(_ALPHABET) for _ in range(5)) for _ in range(4))
    return "-".join(groups)


@cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))
