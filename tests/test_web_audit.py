"""The audit log page and API: auditors and admins only, read-only, newest first, filtered by
action prefix, actor, object and dates, paged; verification on request shows ok, and broken
after a row is tampered with; sealed details are never shown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from conftest import act, make_app, make_settings
from safeeye.app import SafeEye
from safeeye.cases.service import create_case
from safeeye.db.models import AuditEvent
from safeeye.db.types import utcnow
from safeeye.web.app import create_app
from webtools import INLINE_CODE, api_token, browser, form_token, user


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("audit") / "data"))
    for code in ("AU-1", "AU-2", "AU-3"):
        act(app, create_case, code)
    for name, role in (
        ("aud", "auditor"),
        ("adm", "admin"),
        ("cou", "counselor"),
        ("rev", "reviewer"),
    ):
        user(app, name, role)
    yield app
    app.close()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    return create_app(safe)


def test_only_auditors_and_admins_open_the_audit_log(web: FastAPI, safe: SafeEye) -> None:
    for name in ("aud", "adm"):
        with browser(web, name) as client:
            page = client.get("/audit")
            assert page.status_code == 200 and "Verify the chain" in page.text
    for name in ("cou", "rev"):
        with browser(web, name) as client:
            assert client.get("/audit").status_code == 403
            token = form_token(client.get("/").text)
            assert client.post("/audit/verify", data={"csrf_token": token}).status_code == 403
    counselor = {"Authorization": f"Bearer {api_token(safe, 'cou')}"}
    with browser(web) as client:
        assert client.get("/api/v1/audit/events", headers=counselor).status_code == 403
        assert client.post("/api/v1/audit/verify", headers=counselor).status_code == 403


def test_the_list_filters_by_action_actor_object_and_dates_and_pages(web: FastAPI) -> None:
    with browser(web, "aud") as client:
        cases = client.get("/audit?action=case.").text
        rows = re.findall(r"<td><code>([a-z_.]+)</code></td>", cases)
        assert rows and all(a.startswith("case.") for a in rows)
        assert "<td><code>account." not in cases
        mine = client.get("/audit?actor=user:aud").text
        assert re.findall(r"<td>user:aud</td>", mine)
        assert "<td>cli:" not in mine and "<td>test</td>" not in mine
        one = client.get("/audit?object_type=user&action=account.login").text
        assert "<td><code>account.login</code></td>" in one
        today = utcnow().date()
        later = (today + timedelta(days=2)).isoformat()
        assert "No events match." in client.get(f"/audit?since={later}").text
        assert "No events match." not in client.get(f"/audit?until={today.isoformat()}").text
        assert client.get("/audit?since=yesterday").status_code == 422
        first = client.get("/audit?limit=2").text
        ids = [int(i) for i in re.findall(r"<tr>\s*<td>(\d+)</td>", first)]
        assert len(ids) == 2 and ids[0] > ids[1]  # newest first
        assert 'rel="next"' in first
        second = client.get("/audit?limit=2&offset=2").text
        assert int(re.findall(r"<tr>\s*<td>(\d+)</td>", second)[0]) < ids[1]


def test_verification_shows_ok_then_broken_after_tampering(web: FastAPI, safe: SafeEye) -> None:
    with browser(web, "aud") as client:
        page = client.get("/audit")
        assert "has not been verified" in page.text
        done = client.post("/audit/verify", data={"csrf_token": form_token(page.text)})
        assert done.status_code == 303
        page = client.get(done.headers["location"]).text
        assert "Intact." in page and "user:aud" in page
        assert not INLINE_CODE.search(page)
        with safe.db.session() as session:
            session.execute(
                update(AuditEvent).where(AuditEvent.id == 2).values(actor="someone else")
            )
            session.commit()
        page = client.get("/audit").text
        assert "Intact." in page  # the last result, until verified again
        client.post("/audit/verify", data={"csrf_token": form_token(page)})
        page = client.get("/audit").text
        assert "Broken." in page and "The first bad event is 2." in page


def test_sealed_details_are_never_shown(web: FastAPI, safe: SafeEye) -> None:
    with safe.db.session(read_only=True) as session:
        sealed = [e for e in session.query(AuditEvent).all() if "sealed" in (e.details or {})]
    with browser(web, "adm") as client:
        page = client.get("/audit?limit=500").text
    for event in sealed:
        assert event.details["sealed"] not in page
    if sealed:
        assert "Sealed under the case key" in page


def test_the_api_lists_filters_and_verifies(web: FastAPI, safe: SafeEye) -> None:
    auditor = {"Authorization": f"Bearer {api_token(safe, 'aud')}"}
    with browser(web) as client:
        listed = client.get("/api/v1/audit/events?action=case.&limit=2", headers=auditor).json()
        assert len(listed["events"]) == 2 and listed["has_more"] is True
        assert all(e["action"].startswith("case.") for e in listed["events"])
        assert all("sealed" not in e["details"] for e in listed["events"])
        today = utcnow().date().isoformat()
        dated = client.get(f"/api/v1/audit/events?since={today}&until={today}", headers=auditor)
        assert dated.status_code == 200 and dated.json()["events"]
        wrong = client.get(
            "/api/v1/audit/events?since=2026-02-02&until=2026-01-01", headers=auditor
        )
        assert wrong.status_code == 422
        assert (
            client.get("/api/v1/audit/events?until=9999-12-31", headers=auditor).status_code == 200
        )
        assert client.get("/api/v1/audit/events?limit=501", headers=auditor).status_code == 422
        verified = client.post("/api/v1/audit/verify", headers=auditor)
        assert verified.status_code == 200
        assert set(verified.json()) >= {"ok", "verified", "first_broken", "message", "checked_at"}
