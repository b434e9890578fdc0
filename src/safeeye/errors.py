"""Typed errors that carry what a person needs to act on them (and nothing sensitive)."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
E = TypeVar("E", bound="SafeEyeError")


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


class ValidationError(SafeEyeError):
    """A request that cannot be carried out as given (a malformed code, URL or interval)."""

    code = "invalid"


class PermissionDenied(SafeEyeError):
    """The actor's role does not allow this action."""

    code = "forbidden"


class FetchError(SafeEyeError):
    """A URL could not be fetched safely."""

    code = "fetch"


class IntegrityError(SafeEyeError):
    """Stored data failed its authenticity check: a wrong key, or tampering."""

    code = "integrity"


def unexpected(exc: BaseException, what: str, kind: type[E] = SafeEyeError) -> E:  # type: ignore[assignment]
    """The error to record when one item (a file, a URL, a page) failed in a way nobody
    expected: named by the exception's type alone (its message may quote a URL or a file
    name), and logged with the code location only, so the rest of the work goes on."""
    if isinstance(exc, MemoryError):
        return kind(f"the {what} ran out of memory", code="too_much_memory")
    where = " < ".join(
        f"{Path(frame.filename).name}:{frame.lineno} {frame.name}"
        for frame in reversed(traceback.extract_tb(exc.__traceback__)[-4:])
    )
    log.error("%s failed unexpectedly: %s at %s", what, type(exc).__name__, where)
    return kind(type(exc).__name__, code="internal")


def error_text(exc: BaseException, what: str) -> str:
    """One item's failure as the ``code: message`` recorded on it (unexpected ones logged)."""
    if isinstance(exc, SafeEyeError):
        return exc.as_text()
    return unexpected(exc, what).as_text()
