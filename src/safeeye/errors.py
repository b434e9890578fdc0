"""Typed errors that carry what a person needs to act on them (and nothing sensitive)."""

from __future__ import annotations


class SafeEyeError(Exception):
    """Base of every error safeeye raises on purpose.

    ``code`` is a short stable token for machines (JSON output, the database); the message is
    for people and must never contain victim data.
    """

    code = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)

    def as_text(self) -> str:
        """``code: message``, the form recorded on sightings and printed in JSON."""
        return f"{self.code}: {self}"


class MediaError(SafeEyeError):
    """Media that cannot or must not be decoded: empty, corrupt, truncated, hostile, too big."""

    code = "media"


class ConfigError(SafeEyeError):
    """Settings that cannot work (a bad key, an unreachable data directory)."""

    code = "config"


class NotFoundError(SafeEyeError):
    """A case, reference or other object named by a person does not exist."""

    code = "not_found"


class ConflictError(SafeEyeError):
    """The request contradicts the stored state (a case code already taken, a purged case)."""

    code = "conflict"


class FetchError(SafeEyeError):
    """A URL could not be fetched safely."""

    code = "fetch"


class IntegrityError(SafeEyeError):
    """Stored data failed its authenticity check: a wrong key, or tampering."""

    code = "integrity"
