"""The SOS intake service: a report opens a pending case with a tracking code and PIN; code and
PIN open counts and dates (one refusal for a wrong code or PIN, throttled per code and per
address across processes); the victim withdraws consent or asks for contact; counselors see it
on the intake list and accept it; a purge leaves nothing of the report."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from conftest import FIXTURES, TESTER, act, make_app, make_settings
from safeeye.accounts import Client
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case, purge_case
from safeeye.db.models import (
    AuditEvent,
    Case,
    LoginAttempt,
    Match,
    Media,
    Notice,
    Recipient,
    Reference,
    ReferenceFace,
    Sighting,
    SosReport,
    Source,
)
from safeeye.errors import ConflictError, PermissionDenied, ValidationError
from safeeye.intake import (
    PUBLIC,
    IntakeThrottled,
    NotRecognised,
    Photo,
    Report,
    accept_intake,
    codes,
    list_intake,
    mark_contact_handled,
    report_status,
    request_contact,
    submit_report,
    withdraw_consent,
)
from safeeye.work import Actor, Role

HERE = Client("198.51.100.7", "Firefox")
LEAK = "https://leak.example/victim-name.jpg"
PHONE = "010-1234-5678"
COUNSELOR = Actor("user:kim", frozenset({Role.COUNSELOR}))
AUDITOR = Actor("user:lee", frozenset({Role.AUDITOR}))


@pytest.fixture
def safe(tmp_path: Path) -> Iterator[SafeEye]:
    """The service on SQLite without the models (nothing here looks for faces)."""
    app = make_app(make_settings(tmp_path / "data"))
    yield app
    app.close()


@pytest.fixture(params=["sqlite", "postgres"])
def each_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SafeEye]:
    """The service on each database backend in turn (without the models)."""
    url = request.getfixturevalue("postgres_schema") if request.param == "postgres" else None
    app = make_app(make_settings(tmp_path / "data", url))
    yield app
    app.close()


def report(**extra: object) -> Report:
    fields: dict[str, object] = {
        "reporter": "victim",
        "urls": f"{LEAK}\n\n  https://board.example/post/7  \n",
        "consent_face_matching": False,
        "consent_hash_sharing": True,
        "contact": PHONE,
        "note": "please hurry",
    }
    fields.update(extra)
    return Report(**fields)  # type: ignore[arg-type]


def submit(safe: SafeEye, client: Client = HERE, **extra: object):  # type: ignore[no-untyped-def]
    return safe.call(PUBLIC, submit_report, report(**extra), client)


def status(safe: SafeEye, code: str, pin: str, client: Client = HERE):  # type: ignore[no-untyped-def]
    return safe.call(PUBLIC, report_status, code, pin, client=client)


def refusal(safe: SafeEye, code: str, pin: str, client: Client = HERE) -> Exception:
    with pytest.raises((NotRecognised, IntakeThrottled)) as caught:
        status(safe, code, pin, client)
    return caught.value


def test_a_report_opens_a_pending_case_with_a_grouped_code_and_a_pin_shown_once(
    safe: SafeEye,
) -> None:
    receipt = submit(safe)

    assert re.fullmatch(
        r"[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{2}", receipt.tracking_code
    )
    assert re.fullmatch(r"\d{8}", receipt.pin)
    assert re.fullmatch(r"SOS-\d{8}-[A-HJKMNP-Z2-9]{4}", receipt.case_code)
    assert receipt.urls == 2
    with safe.db.session() as session:
        case = session.execute(select(Case).where(Case.code == receipt.case_code)).scalar_one()
        assert case.status == "pending" and case.consent_at is not None
        row = session.execute(select(SosReport)).scalar_one()
        assert row.case_id == case.id and row.reporter == "victim"
        assert row.pin_hash.startswith("$argon2id$")
        sources = sorted(s.locator for s in session.execute(select(Source)).scalars())
        assert sources == ["https://board.example/post/7", LEAK]
        assert all(s.next_due_at is not None for s in session.execute(select(Source)).scalars())
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "sos.reported")
        ).scalar_one()
        assert event.actor == "public:sos"
        assert "leak.example" not in str(event.details) and PHONE not in str(event.details)


def test_what_the_visitor_wrote_is_sealed_and_the_code_and_pin_are_not_kept(
    safe: SafeEye,
) -> None:
    receipt = submit(safe)
    code = codes.canonical_code(receipt.tracking_code)
    with safe.db.engine.connect() as conn:
        raw = b"".join(
            repr(tuple(row)).encode() for row in conn.execute(text("SELECT * FROM sos_reports"))
        )
    for secret in (LEAK, "leak.example", PHONE, "please hurry", code, receipt.pin):
        assert secret.encode() not in raw


def test_the_right_code_and_pin_show_counts_and_dates_and_the_code_is_read_as_typed(
    safe: SafeEye,
) -> None:
    receipt = submit(safe)
    typed = receipt.tracking_code.lower().replace("-", " ")

    progress = status(safe, typed, receipt.pin)

    assert (progress.items_found, progress.requests_sent, progress.items_removed) == (0, 0, 0)
    assert progress.accepted is False and progress.face_matching is False
    assert progress.reported_at <= progress.last_update_at
    assert progress.grant is None
    with safe.db.session() as session:
        assert session.execute(select(SosReport.last_status_view_at)).scalar_one() is not None


def test_a_wrong_pin_and_an_unknown_code_are_the_same_refusal_and_take_as_long(
    safe: SafeEye,
) -> None:
    receipt = submit(safe)
    wrong_pin = "0" * 8 if receipt.pin != "0" * 8 else "1" * 8
    elsewhere = [Client(f"203.0.113.{n}") for n in range(1, 7)]

    timings = {}
    for name, code, pin, client in (
        ("pin", receipt.tracking_code, wrong_pin, elsewhere[0]),
        ("code", "ABCD-EFGH-JK", receipt.pin, elsewhere[1]),
    ):
        start = time.perf_counter()
        caught = refusal(safe, code, pin, client)
        timings[name] = time.perf_counter() - start
        assert isinstance(caught, NotRecognised)
        assert str(caught) == "code or PIN not recognised"
    assert timings["code"] > timings["pin"] / 3  # a dummy Argon2 hash was verified


def test_wrong_pins_are_throttled_per_code_and_a_right_pin_then_waits_too(
    safe: SafeEye,
) -> None:
    receipt = submit(safe)
    for n in range(5):
        caught = refusal(safe, receipt.tracking_code, "99999999", Client(f"203.0.113.{n}"))
        assert isinstance(caught, NotRecognised)

    throttled = refusal(safe, receipt.tracking_code, receipt.pin, Client("192.0.2.50"))

    assert isinstance(throttled, IntakeThrottled) and throttled.retry_after > 0
    with safe.db.session() as session:
        for attempt in session.execute(select(LoginAttempt)).scalars():
            attempt.at -= timedelta(minutes=16)
        session.commit()
    assert status(safe, receipt.tracking_code, receipt.pin).items_found == 0


@pytest.fixture(params=["sqlite", "postgres"])
def two_apps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SafeEye, SafeEye]]:
    """Two service instances (as two processes would have) on one database, on each backend."""
    url = request.getfixturevalue("postgres_schema") if request.param == "postgres" else None
    first = make_app(make_settings(tmp_path / "data", url))
    second = make_app(make_settings(tmp_path / "data", url))
    yield first, second
    first.close()
    second.close()


def test_one_address_guessing_many_codes_is_throttled_across_two_processes(
    two_apps: tuple[SafeEye, SafeEye],
) -> None:
    first, second = two_apps
    receipt = first.call(PUBLIC, submit_report, report(), Client("192.0.2.1"))
    guesser = Client("2001:db8:1:2::7")
    for n in range(20):
        app = first if n % 2 else second
        caught = refusal(app, f"ABCD-EFGH-{codes.ALPHABET[n]}A", "12345678", guesser)
        assert isinstance(caught, NotRecognised)
    # Another address of the same /64, with the right code and PIN, on either process.
    neighbour = Client("2001:db8:1:2::99")
    for app in (first, second):
        assert isinstance(
            refusal(app, receipt.tracking_code, receipt.pin, neighbour), IntakeThrottled
        )
    assert status(second, receipt.tracking_code, receipt.pin, Client("192.0.2.1")).accepted is False


def test_reports_are_throttled_per_address(safe: SafeEye) -> None:
    for _ in range(5):
        submit(safe)
    with pytest.raises(IntakeThrottled):
        submit(safe)
    assert submit(safe, Client("192.0.2.77")).urls == 2


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"urls": "ftp://leak.example/a.jpg"}, "bad_url"),
        ({"urls": "javascript:alert(1)"}, "bad_url"),
        ({"urls": "\n".join(f"https://leak.example/{n}.jpg" for n in range(51))}, "too_many_urls"),
        ({"urls": "https://leak.example/" + "a" * 3000}, "bad_url"),
        ({"reporter": "police"}, "bad_reporter"),
        ({"contact": "x" * 201}, "long"),
        ({"note": "x" * 2001}, "long"),
        ({"urls": "", "contact": ""}, "empty"),
        ({"photos": [Photo(io.BytesIO(b"\xff\xd8\xff" + b"0" * 100))]}, "photos_need_consent"),
        (
            {"consent_face_matching": True, "photos": [Photo(io.BytesIO(b"<html>hi</html>"))]},
            "not_a_photo",
        ),
        (
            {
                "consent_face_matching": True,
                "photos": [Photo(io.BytesIO(b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024)))],
            },
            "photo_too_large",
        ),
        (
            {"consent_face_matching": True, "photos": [Photo(io.BytesIO(b"\xff\xd8\xff"))] * 6},
            "too_many_photos",
        ),
    ],
)
def test_a_bad_report_is_refused_before_anything_is_kept(
    safe: SafeEye, extra: dict[str, object], code: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        submit(safe, **extra)
    assert caught.value.code == code
    with safe.db.session() as session:
        assert session.execute(select(Case)).first() is None
        assert session.execute(select(Source)).first() is None


def _found_and_sent(safe: SafeEye, case_code: str) -> None:
    """Three matches (one rejected), three notices: two sent, one of them removed, one draft."""
    with safe.db.session() as session:
        case = session.execute(select(Case).where(Case.code == case_code)).scalar_one()
        recipient = Recipient(key="host", name="Host", kind="hosting", connector="email")
        session.add(recipient)
        session.flush()
        for n, match_status in enumerate(("pending", "confirmed", "rejected")):
            media = Media(sha256=f"{n:064x}", md5=f"{n:032x}", size_bytes=1)
            session.add(media)
            session.flush()
            session.add(
                Match(
                    media_id=media.id,
                    case_id=case.id,
                    kind="face",
                    distance=0.3,
                    evidence_sealed=b"x",
                    status=match_status,
                )
            )
            sighting = Sighting(
                media_id=media.id,
                sha256=media.sha256,
                location=f"https://x.example/{n}",
                location_key=f"{n:064x}",
            )
            session.add(sighting)
            session.flush()
            notice_status = ("removed", "sent", "draft")[n]
            session.add(
                Notice(
                    sighting_id=sighting.id,
                    recipient_id=recipient.id,
                    case_id=case.id,
                    status=notice_status,
                    language="ko",
                    category="illegally_filmed",
                    content_sealed=b"x",
                    idempotency_key=f"k{n}",
                    sent_at=None if notice_status == "draft" else case.created_at,
                    removed_at=case.created_at if notice_status == "removed" else None,
                )
            )
        session.commit()


def test_progress_counts_come_from_the_cases_matches_and_notices(each_db: SafeEye) -> None:
    safe = each_db
    receipt = submit(safe)
    _found_and_sent(safe, receipt.case_code)

    progress = status(safe, receipt.tracking_code, receipt.pin)

    assert (progress.items_found, progress.requests_sent, progress.items_removed) == (2, 2, 1)


def test_withdrawing_consent_removes_face_references_and_reaches_the_intake_list(
    each_db: SafeEye,
) -> None:
    safe = each_db
    receipt = submit(safe, consent_face_matching=True)
    with safe.db.session() as session:
        case = session.execute(select(Case).where(Case.code == receipt.case_code)).scalar_one()
        # A face reference as add_faces leaves it (the photo's blob and its embedding).
        address = safe.blobs.put_bytes(b"photo", safe.keys.media, "test")
        ref = Reference(
            case_id=case.id,
            kind="face",
            content_digest="d",
            hashes_sealed=b"x",
            media_type="image",
            blob_address=address,
        )
        session.add(ref)
        session.flush()
        session.add(
            ReferenceFace(
                reference_id=ref.id, case_id=case.id, box=[0, 0, 1, 1], embedding_sealed=b"x"
            )
        )
        session.commit()
    assert status(safe, receipt.tracking_code, receipt.pin).face_matching is True

    progress = safe.call(PUBLIC, withdraw_consent, receipt.tracking_code, receipt.pin, client=HERE)
    again = safe.call(PUBLIC, withdraw_consent, receipt.tracking_code, receipt.pin, client=HERE)

    assert progress.face_matching is False and progress.consent_withdrawn_at is not None
    assert again.consent_withdrawn_at == progress.consent_withdrawn_at
    with safe.db.session() as session:
        assert session.execute(select(ReferenceFace)).first() is None
        assert session.execute(select(Reference)).first() is None
        assert session.execute(select(Case.consent_at)).scalar_one() is None
        events = (
            session.execute(select(AuditEvent).where(AuditEvent.action == "sos.consent_withdrawn"))
            .scalars()
            .all()
        )
        assert len(events) == 1 and events[0].details["face_references_removed"] == 1
    assert not safe.blobs.exists(address)
    item = safe.call(COUNSELOR, list_intake).items[0]
    assert item.consent_withdrawn_at is not None


def test_asking_for_contact_is_sealed_audited_and_listed_newest_first(safe: SafeEye) -> None:
    older = submit(safe)
    newer = submit(safe, Client("192.0.2.9"), contact="", urls=LEAK)

    safe.call(
        PUBLIC, request_contact, older.tracking_code, older.pin, "call me after 6 pm", client=HERE
    )

    page = safe.call(COUNSELOR, list_intake)
    assert [item.case_code for item in page.items] == [older.case_code, newer.case_code]
    first = page.items[0]
    assert first.contact_message == "call me after 6 pm" and first.contact == PHONE
    assert first.urls == [LEAK, "https://board.example/post/7"] and first.note == "please hurry"
    assert page.total == 2
    with safe.db.engine.connect() as conn:
        raw = repr(conn.execute(text("SELECT contact_message_sealed FROM sos_reports")).all())
    assert "6 pm" not in raw
    with safe.db.session() as session:
        event = session.execute(
            select(AuditEvent).where(AuditEvent.action == "sos.contact_requested")
        ).scalar_one()
        assert event.details == {"message": True} and event.actor == "public:sos"


def test_a_counselor_marks_a_contact_request_handled_until_she_asks_again(
    safe: SafeEye,
) -> None:
    receipt = submit(safe)
    with pytest.raises(ConflictError):  # nothing asked yet
        safe.call(COUNSELOR, mark_contact_handled, receipt.case_code)
    safe.call(PUBLIC, request_contact, receipt.tracking_code, receipt.pin, "", client=HERE)
    with pytest.raises(PermissionDenied):
        safe.call(AUDITOR, mark_contact_handled, receipt.case_code)

    handled = safe.call(COUNSELOR, mark_contact_handled, receipt.case_code)

    assert handled.contact_handled_at is not None
    with pytest.raises(ConflictError):  # handled already
        safe.call(COUNSELOR, mark_contact_handled, receipt.case_code)
    time.sleep(0.01)
    safe.call(PUBLIC, request_contact, receipt.tracking_code, receipt.pin, "again", client=HERE)
    listed = next(
        item
        for item in safe.call(COUNSELOR, list_intake, limit=200).items
        if item.case_code == receipt.case_code
    )
    assert listed.contact_handled_at is None and listed.contact_message == "again"
    with safe.db.session() as session:
        handled_events = (
            session.execute(
                select(AuditEvent.actor).where(AuditEvent.action == "sos.contact_handled")
            )
            .scalars()
            .all()
        )
    assert handled_events == ["user:kim"]


def test_a_status_grant_works_for_this_browser_only_and_never_with_a_forged_mac(
    safe: SafeEye,
) -> None:
    receipt = submit(safe)
    grant = safe.call(
        PUBLIC, report_status, receipt.tracking_code, receipt.pin, binding="tab-1"
    ).grant
    assert grant and receipt.pin not in grant

    done = safe.call(PUBLIC, request_contact, message="", grant=grant, binding="tab-1")
    assert done.contact_requested_at is not None
    for forged, binding in (
        (grant, "tab-2"),
        (grant[:-1] + ("1" if grant.endswith("0") else "0"), "tab-1"),
        ("1.9999999999.x", "tab-1"),
    ):
        with pytest.raises(NotRecognised):
            safe.call(PUBLIC, withdraw_consent, grant=forged, binding=binding)


def test_counselors_accept_a_pending_report_once_and_an_auditor_cannot(safe: SafeEye) -> None:
    receipt = submit(safe)
    with pytest.raises(PermissionDenied):
        safe.call(AUDITOR, accept_intake, receipt.case_code)
    with pytest.raises(PermissionDenied):
        safe.call(AUDITOR, list_intake)

    item = safe.call(COUNSELOR, accept_intake, receipt.case_code)

    assert item.case_status == "open" and item.accepted_at is not None
    with pytest.raises(ConflictError):
        safe.call(COUNSELOR, accept_intake, receipt.case_code)
    assert status(safe, receipt.tracking_code, receipt.pin).accepted is True
    with safe.db.session() as session:
        assert (
            session.execute(select(AuditEvent).where(AuditEvent.action == "sos.accepted"))
            .scalar_one()
            .actor
            == "user:kim"
        )


def test_purging_the_case_removes_the_report_and_its_code_no_longer_works(each_db: SafeEye) -> None:
    safe = each_db
    receipt = submit(safe)
    act(safe, create_case, "OTHER-1")
    safe.call(COUNSELOR, accept_intake, receipt.case_code)

    act(safe, purge_case, receipt.case_code)

    with safe.db.session() as session:
        assert session.execute(select(SosReport)).first() is None
    assert isinstance(refusal(safe, receipt.tracking_code, receipt.pin), NotRecognised)
    assert safe.call(COUNSELOR, list_intake).items == []


def test_face_photos_given_with_consent_become_face_references_and_leave_no_file(
    app: SafeEye,
) -> None:
    photo = (FIXTURES / "faces" / "obama.jpg").read_bytes()

    receipt = app.call(
        PUBLIC,
        submit_report,
        report(consent_face_matching=True, photos=[Photo(io.BytesIO(photo))]),
        HERE,
    )

    assert (receipt.photos, receipt.faces_found) == (1, 1)
    with app.db.session() as session:
        assert session.execute(select(ReferenceFace)).scalar_one() is not None
        case = session.execute(select(Case)).scalar_one()
        assert case.status == "pending"
    leftovers = [p for p in (app.settings.data_dir / "tmp").rglob("sos-*")]
    assert leftovers == []
    # The same photo through the counselors' service is the reference already registered.
    outcome = act(app, add_faces, receipt.case_code, [FIXTURES / "faces" / "obama.jpg"])
    assert outcome[0].note == "already registered"
    assert TESTER.may(Role.COUNSELOR)


def test_a_failure_while_adding_face_photos_still_gives_the_code_and_pin(
    safe: SafeEye, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError(f"detector crashed on {LEAK}")

    monkeypatch.setattr("safeeye.intake.service.add_faces", broken)
    jpeg = (FIXTURES / "faces" / "obama.jpg").read_bytes()

    receipt = submit(safe, consent_face_matching=True, photos=[Photo(io.BytesIO(jpeg))])

    assert (receipt.photos, receipt.faces_found) == (1, 0)
    assert status(safe, receipt.tracking_code, receipt.pin).accepted is False
    assert "leak.example" not in caplog.text
    assert list((safe.settings.data_dir / "tmp").rglob("sos-*")) == []
