"""The SOS intake: a report made without an account opens a pending case; its tracking code and
PIN open a status page of counts and dates; the victim may withdraw consent or ask for contact;
counselors see all of it on the intake list and accept the case.

The public functions act as ``PUBLIC`` (no role) and check the code and PIN themselves: a wrong
code and a wrong PIN are one refusal (``NotRecognised``) that takes as long (a dummy Argon2 hash
is verified for an unknown code), and guesses are throttled per code and per address through
the accounts throttle (rows in the database, shared by every process). Nothing the visitor
wrote is kept in the clear: the URLs, the contact, the note and a message are sealed under the
case key; the code is kept as a keyed digest, the PIN as an Argon2 hash.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import case as when
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from safeeye.accounts import Client, throttle
from safeeye.accounts.passwords import hash_password, verify_password
from safeeye.accounts.rows import secrets_key
from safeeye.cases.sealing import seal_consent
from safeeye.cases.service import add_faces, remove_face_references
from safeeye.crypto import derive_key, keyed_digest, seal, unseal
from safeeye.db.models import (
    Case,
    Match,
    Notice,
    SosReport,
    Source,
)
from safeeye.db.states import CaseStatus, move
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, NotFoundError, ValidationError
from safeeye.ingest.service import add_source, make_due
from safeeye.ingest.sources.url import web_locator
from safeeye.intake import codes
from safeeye.intake.errors import IntakeThrottled, NotRecognised
from safeeye.media.sniff import SNIFF_BYTES, sniff
from safeeye.tempfiles import process_temp_dir
from safeeye.work import Actor, Role, Work

log = logging.getLogger(__name__)

#: Who acts for a visitor of the public pages: nobody's role.
PUBLIC = Actor("public:sos", frozenset())
#: The same visitor while the intake registers what she handed in (the URLs as sources, the
#: face photos she consented to) through the services counselors use: only inside
#: ``submit_report``, after it has checked everything.
_INTAKE = Actor("public:sos", frozenset({Role.COUNSELOR}))

REPORTERS = ("victim", "helper")
PENDING = "pending"
MAX_URLS = 50
MAX_URL_CHARS = 2048
MAX_CONTACT_CHARS = 200
MAX_NOTE_CHARS = 2000
MAX_MESSAGE_CHARS = 1000
MAX_PHOTOS = 5
MAX_PHOTO_BYTES = 10 * 1024 * 1024
#: How long a status page's forms (withdraw, contact) work without the PIN again.
GRANT_SECONDS = 600
MAX_PAGE = 200

#: Wrong PINs: 5 per tracking code, 20 per address (an IPv6 /64), within 15 minutes.
STATUS_POLICY = throttle.ThrottlePolicy(5, 20, timedelta(minutes=15))
#: Reports: 5 per address within an hour.
SUBMIT_POLICY = throttle.ThrottlePolicy(5, 5, timedelta(hours=1))

_LANGUAGE = re.compile(r"^[a-z]{2}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Photo:
    """A face photo as it came in: a readable binary stream. At most ``MAX_PHOTO_BYTES`` are
    read, and the photo is kept only in a private temporary file while its face is found."""

    stream: BinaryIO


@dataclass(frozen=True)
class Report:
    """What a visitor sends on the SOS page."""

    reporter: str
    urls: Sequence[str] | str = ()
    consent_face_matching: bool = False
    consent_hash_sharing: bool = False
    contact: str = ""
    note: str = ""
    language: str = "ko"
    photos: Sequence[Photo] = ()


@dataclass(frozen=True)
class Receipt:
    """What the visitor is shown once: the tracking code (grouped) and the PIN."""

    tracking_code: str
    pin: str
    case_code: str
    urls: int
    photos: int
    faces_found: int


@dataclass(frozen=True)
class Progress:
    """What the status page shows: counts and dates only. ``grant`` lets this page's forms
    act for a few minutes without the PIN (see ``report_status``)."""

    reported_at: datetime
    last_update_at: datetime
    accepted: bool
    items_found: int
    requests_sent: int
    items_removed: int
    face_matching: bool
    consent_withdrawn_at: datetime | None
    contact_requested_at: datetime | None
    grant: str | None = None


@dataclass(frozen=True)
class IntakeItem:
    """One SOS report on the counselors' intake list (its sealed fields opened)."""

    case_code: str
    case_status: str
    reporter: str
    language: str
    reported_at: datetime
    accepted_at: datetime | None
    consent_face_matching: bool
    consent_hash_sharing: bool
    consent_withdrawn_at: datetime | None
    contact_requested_at: datetime | None
    #: When a counselor marked the request handled; None while it waits.
    contact_handled_at: datetime | None
    contact_message: str | None
    contact: str | None
    note: str | None
    urls: list[str]
    photos: int
    last_event_at: datetime


@dataclass(frozen=True)
class IntakePage:
    items: list[IntakeItem]
    total: int
    limit: int
    offset: int


# -- the SOS form ------------------------------------------------------------------------------


def submit_report(work: Work, report: Report, client: Client | None = None) -> Receipt:
    """Open a pending case for ``report`` and give its tracking code and PIN (shown once).

    The URLs become sources visited at once (before a counselor accepts: speed matters); face
    photos, only with consent to face matching, become the case's face references. Everything
    is checked before anything is kept: a ``ValidationError`` says what to change. At most
    ``SUBMIT_POLICY`` reports per address (``IntakeThrottled``)."""
    client = client or Client()
    session = work.session
    keys = _submission_keys(work, client.address)
    now = utcnow()
    if keys is not None:
        throttle.serialise(session, keys)
        wait = throttle.seconds_to_wait(session, SUBMIT_POLICY, keys, now)
        if wait:
            raise IntakeThrottled(wait)
    checked = _checked(report)
    photos = [_read_photo(photo, n) for n, photo in enumerate(report.photos, 1)]

    case = _new_pending_case(session, now)
    key, case.wrapped_key = work.app.keys.new_case_key(case.id)
    if checked.consent_face_matching or checked.consent_hash_sharing:
        case.consent_at = now
        case.consent_sealed = seal_consent(key, case.id, _consent_basis(checked))
    work.audit(
        "case.created",
        "case",
        case.id,
        {"consent": case.consent_at is not None, "origin": "sos"},
        case=(case.id, key),
        private={"code": case.code},
    )
    intake = Work(work.app, session, _INTAKE)
    source_ids = [_watch(intake, url) for url in checked.urls]

    code, pin = _new_tracking_code(work), codes.new_pin()
    row = SosReport(
        case_id=case.id,
        tracking_digest=_tracking_digest(work, code),
        pin_hash=hash_password(pin),
        language=checked.language,
        reporter=checked.reporter,
        consent_face_matching=checked.consent_face_matching,
        consent_hash_sharing=checked.consent_hash_sharing,
        details_sealed=b"",
        url_count=len(checked.urls),
        photo_count=len(photos),
        created_at=now,
        last_event_at=now,
    )
    session.add(row)
    session.flush()
    details = {
        "urls": checked.urls,
        "contact": checked.contact or None,
        "note": checked.note or None,
        "sources": source_ids,
    }
    row.details_sealed = _seal_json(key, f"sos:{row.id}", details)
    work.audit(
        "sos.reported",
        "case",
        case.id,
        {
            "reporter": checked.reporter,
            "urls": len(checked.urls),
            "photos": len(photos),
            "consent_face_matching": checked.consent_face_matching,
            "consent_hash_sharing": checked.consent_hash_sharing,
            "contact": bool(checked.contact),
        },
        case=(case.id, key),
    )
    if keys is not None:
        throttle.record(session, SUBMIT_POLICY, keys, succeeded=False, now=now)
    case_code = case.code
    faces = _add_face_photos(work, intake, case_code, photos) if photos else 0
    return Receipt(codes.grouped(code), pin, case_code, len(checked.urls), len(photos), faces)


@dataclass(frozen=True)
class _Checked:
    reporter: str
    urls: list[str]
    consent_face_matching: bool
    consent_hash_sharing: bool
    contact: str
    note: str
    language: str


def _checked(report: Report) -> _Checked:
    if report.reporter not in REPORTERS:
        raise ValidationError("say who is reporting", code="bad_reporter")
    lines = report.urls.splitlines() if isinstance(report.urls, str) else list(report.urls)
    urls: list[str] = []
    for number, line in enumerate((str(line).strip() for line in lines), 1):
        if not line:
            continue
        if len(urls) >= MAX_URLS:
            raise ValidationError(f"at most {MAX_URLS} addresses at once", code="too_many_urls")
        if len(line) > MAX_URL_CHARS:
            raise ValidationError(f"the address on line {number} is too long", code="bad_url")
        try:
            url = web_locator(line)
        except ValidationError:
            raise ValidationError(
                f"line {number} is not a web address (http:// or https://)", code="bad_url"
            ) from None
        if url not in urls:
            urls.append(url)
    if len(report.photos) > MAX_PHOTOS:
        raise ValidationError(f"at most {MAX_PHOTOS} photos", code="too_many_photos")
    if report.photos and not report.consent_face_matching:
        raise ValidationError(
            "face photos are used only with consent to face matching", code="photos_need_consent"
        )
    contact = _text(report.contact, MAX_CONTACT_CHARS, "contact")
    note = _text(report.note, MAX_NOTE_CHARS, "note")
    if not urls and not report.photos and not contact:
        raise ValidationError(
            "give at least one address, a photo, or a way to contact you", code="empty"
        )
    language = str(report.language or "").strip().lower()
    return _Checked(
        report.reporter,
        urls,
        bool(report.consent_face_matching),
        bool(report.consent_hash_sharing),
        contact,
        note,
        language if _LANGUAGE.match(language) else "ko",
    )


def _text(value: str, limit: int, field: str) -> str:
    text = _CONTROL.sub("", str(value or "")).strip()
    if len(text) > limit:
        raise ValidationError(f"the {field} is too long (at most {limit} characters)", code="long")
    return text


def _read_photo(photo: Photo, number: int) -> bytes:
    """The photo's bytes, if it is an image within the limit (sniffed, never trusted)."""
    data = photo.stream.read(MAX_PHOTO_BYTES + 1)
    if len(data) > MAX_PHOTO_BYTES:
        raise ValidationError(
            f"photo {number} is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB",
            code="photo_too_large",
        )
    if sniff(data[:SNIFF_BYTES]).kind != "image":
        raise ValidationError(f"photo {number} is not a photo", code="not_a_photo")
    return data


def _consent_basis(checked: _Checked) -> str:
    given = [
        name
        for name, yes in (
            ("face matching", checked.consent_face_matching),
            ("sharing hashes with hash-sharing programs", checked.consent_hash_sharing),
        )
        if yes
    ]
    who = "the victim" if checked.reporter == "victim" else "someone acting for the victim"
    return f"SOS form, reported by {who}: consent to {' and '.join(given)}"


def _new_pending_case(session: Session, now: datetime) -> Case:
    for _ in range(20):
        code = codes.new_case_code(now)
        if session.execute(select(Case.id).where(Case.code == code)).first() is None:
            case = Case(code=code, status=PENDING, created_at=now)
            session.add(case)
            session.flush()
            return case
    raise ConflictError("no free case code: try again")  # 31^4 codes a day


def _new_tracking_code(work: Work) -> str:
    for _ in range(20):
        code = codes.new_tracking_code()
        digest = _tracking_digest(work, code)
        found = work.session.execute(
            select(SosReport.id).where(SosReport.tracking_digest == digest)
        ).first()
        if found is None:
            return code
    raise ConflictError("no free tracking code: try again")


def _watch(intake: Work, url: str) -> int:
    """The id of a source that visits ``url`` now: one already watching it, else a new one."""
    existing = intake.session.execute(
        select(Source.id)
        .where(Source.kind == "url", Source.locator == url, Source.enabled.is_(True))
        .limit(1)
    ).scalar_one_or_none()
    if existing is not None:
        make_due(intake, existing)
        return existing
    return add_source(intake, "url", url, interval_seconds=None).id


def _add_face_photos(work: Work, intake: Work, case_code: str, photos: list[bytes]) -> int:
    """Commit the report, then add each photo as a face reference from a private temporary
    file that is deleted at once; the number of photos in which a face was found."""
    work.commit()
    folder = process_temp_dir(work.app.settings.data_dir)
    paths: list[Path] = []
    try:
        for data in photos:
            handle, name = tempfile.mkstemp(dir=folder, prefix="sos-", suffix=".img")
            paths.append(Path(name))
            with os.fdopen(handle, "wb") as out:
                out.write(data)
        outcomes = add_faces(intake, case_code, paths)
    except Exception as exc:
        # The report is kept and she must still get her code and PIN: a counselor can add
        # the photos again. The log names the kind of failure, nothing of the photo.
        work.session.rollback()
        log.warning("the face photos of an SOS report were not added: %s", type(exc).__name__)
        return 0
    finally:
        for path in paths:
            path.unlink(missing_ok=True)
    return sum(1 for outcome in outcomes if outcome.reference_id is not None)


# -- the status page ---------------------------------------------------------------------------


def report_status(
    work: Work,
    code: str,
    pin: str,
    *,
    client: Client | None = None,
    binding: str | None = None,
) -> Progress:
    """The progress of the report ``code`` opened, if ``pin`` is its PIN: counts and dates.

    ``NotRecognised`` for a wrong code or PIN alike, ``IntakeThrottled`` after too many wrong
    PINs for the code or from the address. With ``binding`` (a secret only this browser holds,
    e.g. its CSRF token) the answer carries a ``grant``: for ``GRANT_SECONDS`` the page's forms
    may act with it instead of the PIN, so the PIN is never written into a page."""
    row = _by_code_and_pin(work, code, pin, client or Client())
    row.last_status_view_at = utcnow()
    return _progress(work, row, binding)


def withdraw_consent(
    work: Work,
    code: str = "",
    pin: str = "",
    *,
    grant: str | None = None,
    binding: str = "",
    client: Client | None = None,
) -> Progress:
    """The victim withdraws her consent (by code and PIN, or by a status page's ``grant``).

    Face matching stops at once: the case's face references (photos and embeddings) are
    deleted, so the matcher drops them at its next refresh; the case no longer shows consent,
    and the intake list shows the withdrawal to counselors. Saying it twice changes nothing."""
    row = _verified(work, code, pin, grant, binding, client)
    case = work.session.get(Case, row.case_id)
    assert case is not None
    key = work.app.keys.case_key(case)
    if row.consent_withdrawn_at is None:
        now = utcnow()
        removed = remove_face_references(work, case.id)
        row.consent_withdrawn_at = row.last_event_at = now
        case.consent_at = None
        work.audit(
            "sos.consent_withdrawn",
            "case",
            case.id,
            {"face_references_removed": removed},
            case=(case.id, key),
        )
    return _progress(work, row, binding or None)


def request_contact(
    work: Work,
    code: str = "",
    pin: str = "",
    message: str = "",
    *,
    grant: str | None = None,
    binding: str = "",
    client: Client | None = None,
) -> Progress:
    """The victim asks a counselor to contact her, with an optional ``message`` (sealed); the
    intake list shows the request, newest first."""
    text = _text(message, MAX_MESSAGE_CHARS, "message")
    row = _verified(work, code, pin, grant, binding, client)
    case = work.session.get(Case, row.case_id)
    assert case is not None
    key = work.app.keys.case_key(case)
    row.contact_requested_at = row.last_event_at = utcnow()
    row.contact_message_sealed = (
        seal(key, text.encode(), f"sos-contact:{row.id}".encode()) if text else None
    )
    work.audit(
        "sos.contact_requested", "case", case.id, {"message": bool(text)}, case=(case.id, key)
    )
    return _progress(work, row, binding or None)


def _verified(
    work: Work,
    code: str,
    pin: str,
    grant: str | None,
    binding: str,
    client: Client | None,
) -> SosReport:
    if grant is not None:
        return _by_grant(work, grant, binding)
    return _by_code_and_pin(work, code, pin, client or Client())


def _by_code_and_pin(work: Work, code: str, pin: str, client: Client) -> SosReport:
    session = work.session
    canonical = codes.canonical_code(code)
    keys = _status_keys(work, canonical, client.address)
    throttle.serialise(session, keys)
    now = utcnow()
    wait = throttle.seconds_to_wait(session, STATUS_POLICY, keys, now)
    if wait:
        raise IntakeThrottled(wait)
    row = session.execute(
        select(SosReport)
        .join(Case, Case.id == SosReport.case_id)
        .where(
            SosReport.tracking_digest == _tracking_digest(work, canonical),
            Case.status != "purged",
        )
    ).scalar_one_or_none()
    # An unknown code verifies a dummy hash: a wrong code takes as long as a wrong PIN.
    right = verify_password(row.pin_hash if row is not None else None, codes.canonical_pin(pin))
    if row is None or not right:
        throttle.record(session, STATUS_POLICY, keys, succeeded=False, now=now)
        work.commit()
        raise NotRecognised()
    throttle.record(session, STATUS_POLICY, keys, succeeded=True, now=now)
    return row


def _grant_key(work: Work) -> bytes:
    return derive_key(secrets_key(work), "sos-status-grant")


def _grant_for(work: Work, row: SosReport, binding: str) -> str:
    expires = int(utcnow().timestamp()) + GRANT_SECONDS
    mac = keyed_digest(_grant_key(work), "grant", str(row.id), str(expires), binding)
    return f"{row.id}.{expires}.{mac}"


def _by_grant(work: Work, grant: str, binding: str) -> SosReport:
    parts = str(grant)[:200].split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or not binding:
        raise NotRecognised()
    report_id, expires, mac = parts
    expected = keyed_digest(_grant_key(work), "grant", report_id, expires, binding)
    if not hmac.compare_digest(mac.encode(), expected.encode()):
        raise NotRecognised()
    if int(expires) < utcnow().timestamp() or len(report_id) > 12:
        raise NotRecognised()
    row = work.session.execute(
        select(SosReport)
        .join(Case, Case.id == SosReport.case_id)
        .where(SosReport.id == int(report_id), Case.status != "purged")
    ).scalar_one_or_none()
    if row is None:
        raise NotRecognised()
    return row


def _progress(work: Work, row: SosReport, binding: str | None) -> Progress:
    session = work.session
    found, last_match = session.execute(
        select(func.count(Match.id), func.max(Match.created_at)).where(
            Match.case_id == row.case_id, Match.status.in_(("pending", "escalated", "confirmed"))
        )
    ).one()
    sent, removed, last_sent, last_removed = session.execute(
        select(
            func.count(Notice.sent_at),
            func.count(func.distinct(when((Notice.status == "removed", Notice.sighting_id)))),
            func.max(Notice.sent_at),
            func.max(Notice.removed_at),
        ).where(Notice.case_id == row.case_id)
    ).one()
    moments = [
        row.created_at,
        row.accepted_at,
        row.consent_withdrawn_at,
        row.contact_requested_at,
        last_match,
        last_sent,
        last_removed,
    ]
    return Progress(
        reported_at=row.created_at,
        last_update_at=max(m for m in moments if m is not None),
        accepted=row.accepted_at is not None,
        items_found=found,
        requests_sent=sent,
        items_removed=removed,
        face_matching=row.consent_face_matching and row.consent_withdrawn_at is None,
        consent_withdrawn_at=row.consent_withdrawn_at,
        contact_requested_at=row.contact_requested_at,
        grant=_grant_for(work, row, binding) if binding else None,
    )


# -- the counselors' intake list ---------------------------------------------------------------


def list_intake(work: Work, *, limit: int = 50, offset: int = 0) -> IntakePage:
    """SOS reports, the latest event first (a new report, a withdrawn consent, a request for
    contact), with what the visitor wrote; counselors only."""
    work.require(Role.COUNSELOR, action="read the SOS intake")
    if not 1 <= limit <= MAX_PAGE or not 0 <= offset <= 10**9:
        raise ValidationError(f"a page holds 1 to {MAX_PAGE} reports from an offset of 0 or more")
    session = work.session
    live = Case.status != "purged"
    rows = session.execute(
        select(SosReport, Case)
        .join(Case, Case.id == SosReport.case_id)
        .where(live)
        .order_by(SosReport.last_event_at.desc(), SosReport.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    total = session.execute(
        select(func.count(SosReport.id)).join(Case, Case.id == SosReport.case_id).where(live)
    ).scalar_one()
    return IntakePage([_item(work, row, case) for row, case in rows], total, limit, offset)


def accept_intake(work: Work, case_code: str) -> IntakeItem:
    """A counselor takes the SOS case ``case_code`` on: pending -> open."""
    work.require(Role.COUNSELOR, action="accept SOS reports")
    row, case = _report_of(work, case_code)
    if case.status != PENDING:
        raise ConflictError(f"the case is {case.status}, not waiting to be accepted", code="state")
    move(case, CaseStatus.OPEN)
    row.accepted_at = utcnow()
    key = work.app.keys.case_key(case)
    work.audit("sos.accepted", "case", case.id, {}, case=(case.id, key))
    return _item(work, row, case)


def mark_contact_handled(work: Work, case_code: str) -> IntakeItem:
    """A counselor has contacted the victim who asked for it (or tried, as the center's rules
    say): the request leaves the intake list's flags until she asks again."""
    work.require(Role.COUNSELOR, action="handle SOS contact requests")
    row, case = _report_of(work, case_code)
    if row.contact_requested_at is None or _handled(row) is not None:
        raise ConflictError("no request for contact is waiting on that report", code="state")
    row.contact_handled_at = utcnow()
    key = work.app.keys.case_key(case)
    work.audit("sos.contact_handled", "case", case.id, {}, case=(case.id, key))
    return _item(work, row, case)


def _handled(row: SosReport) -> datetime | None:
    """When the latest request for contact was handled; None while it waits."""
    handled, asked = row.contact_handled_at, row.contact_requested_at
    return handled if handled is not None and asked is not None and handled >= asked else None


def _report_of(work: Work, case_code: str) -> tuple[SosReport, Case]:
    found = work.session.execute(
        select(SosReport, Case)
        .join(Case, Case.id == SosReport.case_id)
        .where(Case.code == str(case_code)[:64])
    ).one_or_none()
    if found is None:
        raise NotFoundError("no SOS report with that case code")
    return found[0], found[1]


def _item(work: Work, row: SosReport, case: Case) -> IntakeItem:
    key = work.app.keys.case_key(case)
    details: dict[str, Any] = _open_json(key, f"sos:{row.id}", row.details_sealed)
    message = None
    if row.contact_message_sealed is not None:
        message = unseal(key, row.contact_message_sealed, f"sos-contact:{row.id}".encode()).decode()
    return IntakeItem(
        case_code=case.code,
        case_status=case.status,
        reporter=row.reporter,
        language=row.language,
        reported_at=row.created_at,
        accepted_at=row.accepted_at,
        consent_face_matching=row.consent_face_matching,
        consent_hash_sharing=row.consent_hash_sharing,
        consent_withdrawn_at=row.consent_withdrawn_at,
        contact_requested_at=row.contact_requested_at,
        contact_handled_at=_handled(row),
        contact_message=message,
        contact=details.get("contact"),
        note=details.get("note"),
        urls=list(details.get("urls") or []),
        photos=row.photo_count,
        last_event_at=row.last_event_at,
    )


# -- keys and sealing --------------------------------------------------------------------------


def _tracking_digest(work: Work, canonical_code: str) -> str:
    return keyed_digest(derive_key(secrets_key(work), "sos-tracking"), "code", canonical_code)


def _throttle_key(work: Work) -> bytes:
    return derive_key(secrets_key(work), "sos-throttle")


def _status_keys(work: Work, canonical_code: str, address: str | None) -> throttle.AttemptKeys:
    key = _throttle_key(work)
    network = throttle.address_network(address)
    return throttle.AttemptKeys(
        keyed_digest(key, "status-code", canonical_code),
        keyed_digest(key, "status-address", network) if network else None,
    )


def _submission_keys(work: Work, address: str | None) -> throttle.AttemptKeys | None:
    """The keys reports from ``address`` are counted under (none for an unknown address:
    one shared count would let anyone block every report)."""
    network = throttle.address_network(address)
    if network is None:
        return None
    key = _throttle_key(work)
    return throttle.AttemptKeys(
        keyed_digest(key, "report", network), keyed_digest(key, "report-address", network)
    )


def _seal_json(key: bytes, purpose: str, value: dict[str, Any]) -> bytes:
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return seal(key, body.encode(), purpose.encode())


def _open_json(key: bytes, purpose: str, sealed: bytes) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(unseal(key, sealed, purpose.encode()))
    return data
