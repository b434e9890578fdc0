"""The victim's side without an account: the SOS report (a pending case, a tracking code and a
PIN), the status page behind them, and the counselors' intake list. See docs/web-public.md."""

from safeeye.intake.errors import IntakeThrottled, NotRecognised
from safeeye.intake.service import (
    PUBLIC,
    IntakeItem,
    IntakePage,
    Photo,
    Progress,
    Receipt,
    Report,
    accept_intake,
    list_intake,
    mark_contact_handled,
    report_status,
    request_contact,
    submit_report,
    withdraw_consent,
)

__all__ = [
    "PUBLIC",
    "IntakeItem",
    "IntakePage",
    "IntakeThrottled",
    "NotRecognised",
    "Photo",
    "Progress",
    "Receipt",
    "Report",
    "accept_intake",
    "list_intake",
    "mark_contact_handled",
    "report_status",
    "request_contact",
    "submit_report",
    "withdraw_consent",
]
