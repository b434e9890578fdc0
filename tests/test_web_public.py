"""The victim's pages without an account (SOS form, status page) and the counselors' intake
list, through the real app: a report opens a pending case and shows its code and PIN once; the
status page shows counts and dates only, the same refusal for any wrong code or PIN, 429 after
too many; CSRF on every form; Korean by default; counselors accept, auditors cannot."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import FIXTURES, make_app, make_settings
from safeeye.app import SafeEye
from safeeye.db.models import Case, Match, Media
from safeeye.web.app import create_app
from webtools import INLINE_CODE, api_token, browser, form_token, user

LEAK = "https://leak.example/victim-name.jpg"
PHONE = "010-9876-5432"
CODE = re.compile(r'<code class="secret">([A-Z0-9-]{12})</code>')
PIN = re.compile(r'<code class="secret">(\d{8})</code>')


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("public") / "data"))
    user(app, "kim", "counselor")
    user(app, "lee", "auditor")
    yield app
    app.close()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    return create_app(safe)


@pytest.fixture
def visitor(web: FastAPI) -> Iterator[TestClient]:
    with browser(web) as client:
        yield client


_address = iter(range(1, 250))


def fresh_client(web: FastAPI) -> TestClient:
    """A visitor from an address of its own (the throttle counts per address)."""
    return TestClient(web, follow_redirects=False, client=(f"198.51.100.{next(_address)}", 50000))


def report(client: TestClient, **extra: str) -> tuple[str, str, str]:
    """Sends the SOS form; returns the page, the tracking code and the PIN."""
    token = form_token(client.get("/sos").text)
    fields = {
        "csrf_token": token,
        "reporter": "victim",
        "urls": f"{LEAK}\nhttps://board.example/post/9",
        "consent_hash_sharing": "true",
        "contact": PHONE,
        **extra,
    }
    answer = client.post("/sos", data=fields)
    assert answer.status_code == 200, answer.text
    code, pin = CODE.search(answer.text), PIN.search(answer.text)
    assert code and pin
    return answer.text, code.group(1), pin.group(1)


def check(client: TestClient, code: str, pin: str):  # type: ignore[no-untyped-def]
    token = form_token(client.get("/status").text)
    return client.post("/status", data={"csrf_token": token, "code": code, "pin": pin})


def test_the_sos_form_opens_a_pending_case_and_shows_the_code_and_pin_once(
    web: FastAPI, safe: SafeEye
) -> None:
    with fresh_client(web) as client:
        form = client.get("/sos")
        assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
        assert form.headers["x-robots-tag"] == "noindex, nofollow"
        page, code, pin = report(client)

    assert "noindex" in page and code in page and pin in page
    with safe.db.session() as session:
        statuses = session.execute(select(Case.status).where(Case.code.like("SOS-%"))).scalars()
        assert "pending" in set(statuses)


def test_the_status_page_shows_counts_and_dates_only_for_the_right_code_and_pin(
    web: FastAPI, safe: SafeEye
) -> None:
    with fresh_client(web) as client:
        _, code, pin = report(client)
        with safe.db.session() as session:
            case = session.execute(select(Case).order_by(Case.id.desc()).limit(1)).scalar_one()
            media = Media(sha256="ab" * 32, md5="cd" * 16, size_bytes=1, blob_address="blob-x")
            session.add(media)
            session.flush()
            session.add(
                Match(
                    media_id=media.id,
                    case_id=case.id,
                    kind="face",
                    distance=0.2,
                    evidence_sealed=b"x",
                )
            )
            session.commit()

        answer = check(client, code.lower(), pin)

    assert answer.status_code == 200
    page = answer.text
    assert re.search(r"<dt>Items found</dt><dd>1</dd>", page) is None  # Korean by default
    assert re.search(r"<dd>1</dd>", page)
    for secret in (LEAK, "leak.example", "board.example", PHONE, "blob-x", "<img", pin):
        assert secret not in page
    assert 'name="grant"' in page
    assert answer.headers["cache-control"] == "no-store"


def test_a_wrong_pin_and_an_unknown_code_show_the_same_form_and_nothing_of_the_case(
    web: FastAPI,
) -> None:
    with fresh_client(web) as client:
        _, code, pin = report(client)
        wrong = "00000000" if pin != "00000000" else "11111111"
        pages = [check(client, code, wrong), check(client, "ZZZZ-ZZZZ-ZZ", pin)]

    assert [page.status_code for page in pages] == [401, 401]
    bodies = [page.text.replace(form_token(page.text), "") for page in pages]
    assert bodies[0] == bodies[1]
    assert "<dd>" not in bodies[0] and 'name="grant"' not in bodies[0]


def test_a_form_without_its_csrf_token_is_refused(web: FastAPI) -> None:
    with fresh_client(web) as client:
        client.get("/sos")
        assert client.post("/sos", data={"reporter": "victim", "urls": LEAK}).status_code == 403
        assert client.post("/status", data={"code": "A", "pin": "1"}).status_code == 403


def test_the_pages_are_korean_by_default_and_english_on_request(web: FastAPI) -> None:
    with fresh_client(web) as client:
        korean = client.get("/sos").text
        english = client.get("/sos?lang=en").text
        after = client.get("/status").text

    assert 'lang="ko"' in korean and "신고" in korean
    assert 'lang="en"' in english and "Report for help (SOS)" in english
    assert "Check your report" in after  # the switch is remembered


def test_too_many_wrong_pins_for_a_code_are_refused_with_429(web: FastAPI) -> None:
    with fresh_client(web) as client:
        _, code, pin = report(client)
    for _ in range(5):
        with fresh_client(web) as guesser:
            assert check(guesser, code, "12345678").status_code == 401
    with fresh_client(web) as client:
        throttled = check(client, code, pin)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert "<dd>" not in throttled.text


def test_withdrawing_consent_asks_first_then_reaches_the_counselors_intake_list(
    web: FastAPI,
) -> None:
    with fresh_client(web) as client:
        _, code, pin = report(client, consent_face_matching="true")
        page = check(client, code, pin).text
        grant = re.search(r'name="grant" value="([^"]+)"', page)
        assert grant
        token = form_token(page)

        confirm = client.post(
            "/status/withdraw", data={"csrf_token": token, "grant": grant.group(1)}
        )
        assert confirm.status_code == 200 and 'name="confirmed"' in confirm.text
        done = client.post(
            "/status/withdraw",
            data={"csrf_token": token, "grant": grant.group(1), "confirmed": "true"},
        )
        assert done.status_code == 200 and 'role="status"' in done.text
        asked = client.post(
            "/status/contact",
            data={"csrf_token": token, "grant": grant.group(1), "message": "evenings please"},
        )
        assert asked.status_code == 200

    with fresh_client(web) as stranger:  # the grant is bound to the browser it was given to
        other = form_token(stranger.get("/status").text)
        refused = stranger.post(
            "/status/contact", data={"csrf_token": other, "grant": grant.group(1), "message": "x"}
        )
        assert refused.status_code == 401

    with browser(web, "kim") as counselor:
        intake = counselor.get("/intake").text
        assert "evenings please" in intake and PHONE in intake
        first = intake.index("evenings please")
        assert intake.rfind('<li class="card">', 0, first) == intake.find('<li class="card">')
        handled = re.search(r'action="/intake/([^"/]+)/contact-handled"', intake)
        assert handled
        done = counselor.post(handled.group(0)[8:-1], data={"csrf_token": form_token(intake)})
        assert done.status_code == 303 and "contacted=" in done.headers["location"]
        after = counselor.get(done.headers["location"]).text
        assert f'action="/intake/{handled.group(1)}/contact-handled"' not in after
        assert "evenings please" in after  # the request stays on the list, handled


def test_a_counselor_accepts_a_report_and_an_auditor_cannot(web: FastAPI, safe: SafeEye) -> None:
    with fresh_client(web) as client:
        report(client)
    with safe.db.session() as session:
        code = session.execute(
            select(Case.code).where(Case.status == "pending").order_by(Case.id.desc()).limit(1)
        ).scalar_one()

    with browser(web, "lee") as auditor:
        assert auditor.get("/intake").status_code == 403
        token = form_token(auditor.get("/account").text)
        assert auditor.post(f"/intake/{code}/accept", data={"csrf_token": token}).status_code == 403
    with browser(web, "kim") as counselor:
        page = counselor.get("/intake").text
        assert f"/intake/{code}/accept" in page
        accepted = counselor.post(f"/intake/{code}/accept", data={"csrf_token": form_token(page)})
        assert accepted.status_code == 303 and accepted.headers["location"].startswith("/intake?")
        again = counselor.post(f"/intake/{code}/accept", data={"csrf_token": form_token(page)})
        assert again.status_code == 409
    with safe.db.session() as session:
        assert session.execute(select(Case.status).where(Case.code == code)).scalar_one() == "open"


def test_the_intake_api_lists_and_accepts_for_counselors_only(web: FastAPI, safe: SafeEye) -> None:
    with fresh_client(web) as client:
        report(client)
    user(safe, "park", "counselor")
    counselor = {"Authorization": f"Bearer {api_token(safe, 'park')}"}
    auditor = {"Authorization": f"Bearer {api_token(safe, 'lee')}"}
    with TestClient(web) as api:
        assert api.get("/api/v1/intake").status_code == 401
        assert api.get("/api/v1/intake", headers=auditor).status_code == 403
        listed = api.get("/api/v1/intake?limit=500", headers=counselor)
        assert listed.status_code == 422
        listed = api.get("/api/v1/intake", headers=counselor).json()
        pending = [item for item in listed["items"] if item["case_status"] == "pending"]
        code = pending[0]["case_code"]
        assert api.post(f"/api/v1/intake/{code}/accept", headers=auditor).status_code == 403
        accepted = api.post(f"/api/v1/intake/{code}/accept", headers=counselor)
        assert accepted.status_code == 200 and accepted.json()["case_status"] == "open"
        assert api.post(f"/api/v1/intake/{code}/accept", headers=counselor).status_code == 409
        assert api.post("/api/v1/intake/NOPE-1/accept", headers=counselor).status_code == 404


def test_a_bad_report_shows_the_form_again_with_a_plain_message(web: FastAPI) -> None:
    with fresh_client(web) as client:
        token = form_token(client.get("/sos?lang=en").text)
        answer = client.post(
            "/sos",
            data={"csrf_token": token, "reporter": "victim", "urls": "ftp://x.example/a.jpg"},
        )
        photo = (FIXTURES / "faces" / "obama.jpg").read_bytes()
        no_consent = client.post(
            "/sos",
            data={"csrf_token": token, "reporter": "victim", "urls": LEAK},
            files=[("photos", ("me.jpg", photo, "image/jpeg"))],
        )

    assert answer.status_code == 422 and "http:// or https://" in answer.text
    assert "ftp://x.example/a.jpg" in answer.text  # what she typed is kept for her to fix
    assert no_consent.status_code == 422 and "only if you agree to face matching" in no_consent.text


def test_the_public_pages_have_no_inline_script_style_or_handler(web: FastAPI) -> None:
    with fresh_client(web) as client:
        pages = [client.get("/sos").text, client.get("/status").text]
        pages.append(report(client)[0])
        _, code, pin = report(client)
        pages.append(check(client, code, pin).text)
    with browser(web, "kim") as counselor:
        pages.append(counselor.get("/intake").text)
    for page in pages:
        assert not INLINE_CODE.search(page)
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
