"""The refusals of the public status page and SOS form (the pages show them as the form
again; the statuses are those of their base classes where nobody catches them)."""

from __future__ import annotations

from safeeye.errors import PermissionDenied


class NotRecognised(PermissionDenied):
    """A wrong tracking code, a wrong PIN or an expired page: one answer whatever was wrong,
    so a guesser learns nothing."""

    code = "not_recognised"

    def __init__(self) -> None:
        super().__init__("code or PIN not recognised", code="not_recognised")


class IntakeThrottled(PermissionDenied):
    """Too many wrong PINs for a code or from an address, or too many reports from an
    address, lately: try again after ``retry_after`` seconds."""

    code = "throttled"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many attempts: try again in {retry_after} seconds", code="throttled")
        self.retry_after = retry_after
