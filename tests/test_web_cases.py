"""The cases pages and their API: open a case, add references by upload, consent and the minor
flag, the victim's allow-list, matches and notices per case, purge with a typed confirmation; who
may do what; no inline script or style on any page."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from conftest import FACES, act, make_app, make_settings
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.db.models import AuditEvent, Case, Notice, Recipient, Sighting
from safeeye.db.types import utcnow
from safeeye.errors import ValidationError
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.record import SightingFacts
from safeeye.pipeline.scan import Scanner
from safeeye.tempfiles import TEMP_SUBDIR
from safeeye.web.app import create_app
from webtools import INLINE_CODE, api_token, browser, form_token, user

FACE = FACES / "obama.jpg"
LEAK = "https://leak.example/gallery/photo-17.jpg"


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory, detectors: Detectors) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("web-cases") / "data"), detectors)
    for name, role in (
        ("kim", "counselor"),
        ("lee", "reviewer"),
        ("park", "auditor"),
        ("root", "admin"),
    ):
        user(app, name, role)
    yield app
    app.close()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    return create_app(safe)


@pytest.fixture(scope="module")
def kim(web: FastAPI) -> Iterator[TestClient]:
    with browser(web, "kim") as client:
        yield client


def _token(client: TestClient, page: str = "/cases") -> str:
    return form_token(client.get(page).text)


def _post(client: TestClient, path: str, page: str, **fields: object) -> object:
    return client.post(path, data={"csrf_token": _token(client, page), **fields})


def _upload(client: TestClient, code: str, what: str, *files: tuple[str, bytes]):  # type: ignore[no-untyped-def]
    token = _token(client, f"/cases/{code}")
    parts = [("files", (name, body, "application/octet-stream")) for name, body in files]
    return client.post(f"/cases/{code}/{what}", data={"csrf_token": token}, files=parts)


def _events(safe: SafeEye, action: str) -> list[AuditEvent]:
    with safe.db.session(read_only=True) as session:
        rows = session.execute(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows.scalars())


def _plain_picture() -> bytes:
    """A photo of nothing: an even blue square."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 140, 200)).save(out, "PNG")
    return out.getvalue()


def _no_inline_code(page: str) -> None:
    assert not INLINE_CODE.search(page)
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_a_counselor_opens_a_case_and_uploads_face_photos_each_reported_plainly(
    kim: TestClient, safe: SafeEye
) -> None:
    opened = _post(
        kim, "/cases", "/cases", code="WC-1", consent_basis="signed at desk 4", minor="true"
    )
    assert opened.status_code == 303 and opened.headers["location"] == "/cases/WC-1?done=created"
    listed = kim.get("/cases").text
    assert "WC-1" in listed and "desk 4" not in listed  # the basis stays sealed
    _no_inline_code(listed)

    added = _upload(kim, "WC-1", "faces", ("obama.jpg", FACE.read_bytes()))
    assert added.status_code == 303
    page = kim.get(added.headers["location"]).text
    assert "File 1: added" in page
    assert "1 face photos, 0 known media" in page
    again = _upload(
        kim, "WC-1", "faces", ("copy.jpg", FACE.read_bytes()), ("notes.txt", b"not a picture")
    )
    page = kim.get(again.headers["location"]).text
    assert "File 1: already registered (not added again)" in page
    blank = _upload(kim, "WC-1", "faces", ("sky.png", _plain_picture()))
    assert "File 1: no face was found in the photo" in kim.get(blank.headers["location"]).text
    assert "File 2: could not be read as an image or video" in page
    assert "1 face photos, 0 known media" in page
    # The uploads were deleted at once: nothing is left in the process's temporary folder.
    temp = Path(safe.settings.data_dir) / TEMP_SUBDIR
    assert not [p for p in temp.rglob("*") if p.is_file()]
    # The page shows counts and dates, never the picture or its name.
    assert "<img" not in page and "obama" not in page
    _no_inline_code(page)


def test_a_case_page_in_korean_and_a_refused_code_shows_the_form_again(
    web: FastAPI, safe: SafeEye
) -> None:
    user(safe, "choi", "counselor", language="ko")
    with browser(web, "choi") as client:
        bad = _post(client, "/cases", "/cases", code="bad code!", consent_basis="")
        assert bad.status_code == 422
        assert "사건 코드는" in bad.text and 'value="bad code!"' in bad.text
        act(safe, create_case, "WC-KO")
        taken = _post(client, "/cases", "/cases", code="WC-KO")
        assert taken.status_code == 409 and "이미 있습니다" in taken.text
        page = client.get("/cases/WC-KO")
        assert page.status_code == 200 and "동의" in page.text
        _no_inline_code(page.text)


def test_consent_and_the_minor_flag_are_recorded_and_audited(
    kim: TestClient, safe: SafeEye
) -> None:
    act(safe, create_case, "WC-2")
    empty = _post(kim, "/cases/WC-2/consent", "/cases/WC-2", basis="  ")
    assert empty.status_code == 422 and "Write down where and how" in empty.text
    done = _post(kim, "/cases/WC-2/consent", "/cases/WC-2", basis="phone call, 3 May")
    assert done.status_code == 303
    page = kim.get("/cases/WC-2").text
    assert "Consent recorded on" in page and "phone call" not in page
    assert _events(safe, "case.consent_recorded")

    assert _post(kim, "/cases/WC-2/minor", "/cases/WC-2", minor="true").status_code == 303
    assert "The victim is a minor." in kim.get("/cases/WC-2").text
    assert [e.details for e in _events(safe, "case.minor_set")][-1] == {"minor": True}
    assert _post(kim, "/cases/WC-2/minor", "/cases/WC-2", minor="false").status_code == 303
    assert "not marked as a minor" in kim.get("/cases/WC-2").text
    row = next(r for r in kim.get("/cases").text.split("<tr>") if "WC-2" in r)
    assert "Minor</strong>" not in row and "Yes" in row


def test_a_counselor_withdraws_consent_and_the_face_photos_go_at_once(
    kim: TestClient, web: FastAPI, safe: SafeEye
) -> None:
    act(safe, create_case, "WC-W", consent_basis="signed form")
    act(safe, add_faces, "WC-W", [FACE])
    page = kim.get("/cases/WC-W").text
    assert 'action="/cases/WC-W/consent/withdraw"' in page
    unticked = _post(kim, "/cases/WC-W/consent/withdraw", "/cases/WC-W")
    assert unticked.status_code == 422 and "Tick the box first" in unticked.text
    with safe.db.session(read_only=True) as session:
        case = session.execute(select(Case).where(Case.code == "WC-W")).scalar_one()
        assert len(case.references) == 1  # nothing went without the tick

    done = _post(kim, "/cases/WC-W/consent/withdraw", "/cases/WC-W", confirmed="true")

    assert done.status_code == 303 and done.headers["location"].endswith("done=withdrawn")
    with safe.db.session(read_only=True) as session:
        case = session.execute(select(Case).where(Case.code == "WC-W")).scalar_one()
        assert case.references == [] and case.consent_at is None and case.consent_sealed is None
    assert _events(safe, "case.consent_withdrawn")[-1].details["face_references_removed"] == 1
    after = kim.get("/cases/WC-W").text
    assert "No consent recorded yet" in after
    assert 'action="/cases/WC-W/consent/withdraw"' not in after
    bearer = {"Authorization": f"Bearer {api_token(safe, 'kim')}"}
    with TestClient(web, headers=bearer) as api:
        again = api.post("/api/v1/cases/WC-W/consent/withdraw")
        assert again.status_code == 409  # nothing left to withdraw


def test_the_allow_list_takes_and_drops_the_victims_own_places(
    kim: TestClient, safe: SafeEye
) -> None:
    act(safe, create_case, "WC-3")
    added = _post(
        kim, "/cases/WC-3/allowlist", "/cases/WC-3", kind="account", pattern="@my_own_account"
    )
    assert added.status_code == 303
    page = kim.get("/cases/WC-3").text
    assert "my_own_account" in page
    place = re.search(r"/cases/WC-3/allowlist/(\d+)/remove", page)
    assert place
    bad = _post(kim, "/cases/WC-3/allowlist", "/cases/WC-3", kind="host", pattern="http://[x")
    assert bad.status_code == 422 and "does not look like" in bad.text
    removed = _post(kim, f"/cases/WC-3/allowlist/{place.group(1)}/remove", "/cases/WC-3")
    assert removed.status_code == 303
    assert "my_own_account" not in kim.get("/cases/WC-3").text
    assert _events(safe, "case.place_allowed") and _events(safe, "case.place_disallowed")


def test_purge_asks_for_the_code_and_refuses_a_wrong_one(kim: TestClient, safe: SafeEye) -> None:
    act(safe, create_case, "WC-4")
    act(safe, add_faces, "WC-4", [FACE])
    ask = kim.get("/cases/WC-4/purge")
    assert ask.status_code == 200 and "1 references" in ask.text
    _no_inline_code(ask.text)
    wrong = _post(kim, "/cases/WC-4/purge", "/cases/WC-4/purge", confirm="WC-5")
    assert wrong.status_code == 422 and "Nothing was deleted" in wrong.text
    assert "WC-4" in kim.get("/cases?status=open").text
    done = _post(kim, "/cases/WC-4/purge", "/cases/WC-4/purge", confirm="WC-4")
    assert done.status_code == 303 and done.headers["location"].startswith("/cases?purged=WC-4")
    assert "The case WC-4 was purged: 1 references" in kim.get(done.headers["location"]).text
    assert "WC-4" not in kim.get("/cases").text.split("</p>", 2)[-1]
    assert kim.get("/cases/WC-4").status_code == 404


def test_the_case_page_lists_its_matches_and_notices_without_pictures(
    kim: TestClient, safe: SafeEye
) -> None:
    act(safe, create_case, "WC-6")
    act(safe, add_faces, "WC-6", [FACE])
    Scanner(safe).scan_paths([FACES / "obama2.jpg"], [SightingFacts(location=LEAK)])
    with safe.db.session() as session:
        sighting = session.execute(select(Sighting).where(Sighting.location == LEAK)).scalar_one()
        recipient = session.execute(select(Recipient).order_by(Recipient.id)).scalars().first()
        assert recipient is not None
        from safeeye.db.models import Case, Match

        case = session.execute(select(Case).where(Case.code == "WC-6")).scalar_one()
        match = session.execute(select(Match).where(Match.case_id == case.id)).scalar_one()
        session.add(
            Notice(
                sighting_id=sighting.id,
                recipient_id=recipient.id,
                case_id=case.id,
                match_id=match.id,
                status="sent",
                language="ko",
                category="synthetic",
                content_sealed=b"sealed",
                idempotency_key=uuid.uuid4().hex,
                sent_at=utcnow(),
                deadline_at=utcnow() + timedelta(hours=24),
            )
        )
        session.flush()
        notice_id, match_id, recipient_key = session.execute(
            select(Notice.id, Notice.match_id, Recipient.key).join(Recipient)
        ).one()
    page = kim.get("/cases/WC-6").text
    assert f'href="/review/{match_id}"' in page and LEAK in page
    assert "Waiting for review" in page
    assert f'href="/notices/{notice_id}"' in page and recipient_key in page
    assert "<img" not in page
    row = next(r for r in kim.get("/cases").text.split("<tr>") if "WC-6" in r)
    assert re.findall(r"<td>(\d+)</td>", row) == ["1", "0", "1", "0", "1"]
    _no_inline_code(page)


def test_the_api_does_the_same_with_a_bearer_token(web: FastAPI, safe: SafeEye) -> None:
    bearer = {"Authorization": f"Bearer {api_token(safe, 'kim')}"}
    with TestClient(web) as api:
        made = api.post("/api/v1/cases", json={"code": "WA-1", "minor": True}, headers=bearer)
        assert made.status_code == 201, made.text
        assert made.json()["minor"] is True and made.json()["consent"] is False
        files = [
            ("files", ("a.jpg", FACE.read_bytes(), "image/jpeg")),
            ("files", ("b.jpg", FACE.read_bytes(), "image/jpeg")),
        ]
        uploaded = api.post("/api/v1/cases/WA-1/faces", files=files, headers=bearer)
        assert [u["outcome"] for u in uploaded.json()] == ["added", "duplicate"]
        assert [u["file"] for u in uploaded.json()] == ["a.jpg", "b.jpg"]
        known = api.post(
            "/api/v1/cases/WA-1/known",
            files=[("files", ("x.bin", b"\x00" * 64, "application/octet-stream"))],
            headers=bearer,
        )
        assert known.status_code == 200 and known.json()[0]["outcome"] == "unreadable"
        consent = api.post("/api/v1/cases/WA-1/consent", json={"basis": "form"}, headers=bearer)
        assert consent.json()["consent"] is True
        minor = api.post("/api/v1/cases/WA-1/minor", json={"minor": False}, headers=bearer)
        assert minor.json()["minor"] is False
        place = api.post(
            "/api/v1/cases/WA-1/allowlist",
            json={"kind": "host", "pattern": "my-blog.example"},
            headers=bearer,
        )
        assert place.status_code == 201
        listed = api.get("/api/v1/cases/WA-1/allowlist", headers=bearer).json()
        assert [p["pattern"] for p in listed] == ["my-blog.example"]
        gone = api.delete(f"/api/v1/cases/WA-1/allowlist/{place.json()['id']}", headers=bearer)
        assert gone.status_code == 204
        detail = api.get("/api/v1/cases/WA-1", headers=bearer).json()
        assert detail["case"]["face_references"] == 1 and detail["matches"] == []
        assert [r["kind"] for r in detail["references"]] == ["face"]
        page = api.get("/api/v1/cases?limit=2", headers=bearer).json()
        assert page["limit"] == 2 and len(page["items"]) <= 2 and page["total"] >= 1
        wrong = api.post("/api/v1/cases/WA-1/purge", json={"confirm": "WA-2"}, headers=bearer)
        assert wrong.status_code == 422
        purged = api.post("/api/v1/cases/WA-1/purge", json={"confirm": "WA-1"}, headers=bearer)
        assert purged.status_code == 200 and purged.json()["references"] == 1
        assert api.get("/api/v1/cases/WA-1", headers=bearer).status_code == 404


def test_reviewers_and_auditors_read_cases_but_cannot_open_or_purge_them(
    web: FastAPI, safe: SafeEye
) -> None:
    act(safe, create_case, "WC-7")
    for name in ("lee", "park"):
        with browser(web, name) as client:
            assert client.get("/cases").status_code == 200
            page = client.get("/cases/WC-7")
            assert page.status_code == 200 and "/cases/WC-7/purge" not in page.text
            assert 'method="post" action="/cases"' not in client.get("/cases").text
            token = _token(client)
            refused = [
                client.post("/cases", data={"csrf_token": token, "code": "WC-X"}),
                client.post("/cases/WC-7/purge", data={"csrf_token": token, "confirm": "WC-7"}),
                client.post("/cases/WC-7/minor", data={"csrf_token": token, "minor": "true"}),
                client.get("/cases/WC-7/purge"),
            ]
            assert [r.status_code for r in refused] == [403] * 4
            bearer = {"Authorization": f"Bearer {api_token(safe, name)}"}
            assert client.get("/api/v1/cases", headers=bearer).status_code == 200
            made = client.post("/api/v1/cases", json={"code": "WC-Y"}, headers=bearer)
            purge = client.post(
                "/api/v1/cases/WC-7/purge", json={"confirm": "WC-7"}, headers=bearer
            )
            assert made.status_code == purge.status_code == 403
    assert "WC-7" in {row.code for row in _listed(safe)}


def test_odd_case_codes_and_paging_give_4xx_never_5xx(kim: TestClient, safe: SafeEye) -> None:
    bearer = {"Authorization": f"Bearer {api_token(safe, 'root')}"}
    for path in ("/cases/%00", "/cases/a", "/cases/" + "x" * 80, "/cases/a%20b", "/cases/NOPE-1"):
        assert 400 <= kim.get(path).status_code < 500, path
        assert 400 <= kim.get("/api/v1" + path, headers=bearer).status_code < 500, path
    for query in ("limit=0", "limit=9999", "offset=-1", "status=%3Cb%3E"):
        assert kim.get(f"/api/v1/cases?{query}", headers=bearer).status_code == 422
    odd = kim.post(
        "/api/v1/cases", json={"code": "ok-1", "consent_basis": "x" * 3000}, headers=bearer
    )
    assert odd.status_code == 422
    # Ids past a 32-bit integer (PostgreSQL's id columns) are refused before any query.
    huge = 2**31
    assert kim.get(f"/api/v1/cases/NOPE-1?matches_before={huge}", headers=bearer).status_code == 422
    gone = kim.delete(f"/api/v1/cases/NOPE-1/allowlist/{huge}", headers=bearer)
    assert gone.status_code == 422
    assert kim.post(f"/api/v1/sources/{huge}/pause", headers=bearer).status_code == 422
    empty = kim.post("/api/v1/cases/NOPE-1/faces", files=[], headers=bearer)
    assert 400 <= empty.status_code < 500


def _listed(safe: SafeEye):  # type: ignore[no-untyped-def]
    from safeeye.cases.details import list_case_rows

    return act(safe, list_case_rows, limit=500).items


def test_a_page_of_cases_costs_the_same_queries_however_many_it_shows(
    kim: TestClient, safe: SafeEye
) -> None:
    for n in range(12):
        act(safe, create_case, f"WQ-{n}")
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(safe.db.engine, "before_cursor_execute", count)
    try:
        kim.get("/cases?limit=2")
        few = len(statements)
        statements.clear()
        kim.get("/cases?limit=200")
        many = len(statements)
    finally:
        event.remove(safe.db.engine, "before_cursor_execute", count)
    assert few == many


def test_the_case_services_of_the_pages_on_each_database(any_db_app: SafeEye) -> None:
    from safeeye.cases.details import case_detail, case_notices, list_case_rows, purge_preview
    from safeeye.cases.service import record_consent, set_minor

    app = any_db_app
    act(app, create_case, "DB-1", minor=True)
    act(app, create_case, "DB-2", "  intake form  ")
    act(app, record_consent, "DB-1", "phone call")
    act(app, set_minor, "DB-2", True)
    page = act(app, list_case_rows, status="open", limit=1)
    assert page.total == 2 and [row.code for row in page.items] == ["DB-2"]
    assert page.items[0].minor and page.items[0].consent
    second = act(app, list_case_rows, limit=1, offset=1).items[0]
    assert second.code == "DB-1" and second.consent_at is not None
    assert act(app, list_case_rows, status="closed").total == 0
    assert act(app, case_detail, "DB-1").references == []
    assert act(app, case_notices, "DB-1") == []
    assert act(app, purge_preview, "DB-1").references == 0
    with pytest.raises(ValidationError):
        act(app, record_consent, "DB-1", " ")


def test_a_purged_case_keeps_its_tombstone_page_and_refuses_changes(
    kim: TestClient, safe: SafeEye
) -> None:
    act(safe, create_case, "WC-8")
    done = _post(kim, "/cases/WC-8/purge", "/cases/WC-8/purge", confirm="WC-8")
    assert done.status_code == 303
    tombstone = next(r for r in _listed(safe) if r.status == "purged" and r.face_references == 0)
    page = kim.get(f"/cases/{tombstone.code}")
    assert page.status_code == 200 and "was purged" in page.text and "/purge" not in page.text
    refused = _post(kim, f"/cases/{tombstone.code}/consent", "/cases", basis="too late")
    assert refused.status_code == 409 and "can no longer be changed" in refused.text
