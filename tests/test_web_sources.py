"""The sources page and its API: add a page or a site to watch, pause, resume and visit now; a
paused source is never due, so no monitor visits it; who may do what; no inline script or style."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import act, make_app, make_settings
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent, Source
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError
from safeeye.ingest.monitor import Monitor
from safeeye.ingest.service import (
    add_source,
    list_sources_page,
    make_due,
    parse_interval,
    pause_source,
    resume_source,
)
from safeeye.web.app import create_app
from webtools import INLINE_CODE, api_token, browser, form_token, user

PAGE = "https://leak.example/board/thread-1.html"


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("web-sources") / "data"))
    for name, role in (("kim", "counselor"), ("lee", "reviewer"), ("park", "auditor")):
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


def _post(client: TestClient, path: str, **fields: str):  # type: ignore[no-untyped-def]
    token = form_token(client.get("/sources").text)
    return client.post(path, data={"csrf_token": token, **fields})


def _source(safe: SafeEye, locator: str) -> Source:
    with safe.db.session(read_only=True) as session:
        found = session.execute(select(Source).where(Source.locator == locator)).scalar_one()
        session.expunge(found)
        return found


def _row(page: str, source_id: int) -> str:
    found = re.search(rf'<tr id="source-{source_id}".*?</tr>', page, re.S)
    assert found, f"source {source_id} is not listed"
    return found.group(0)


def _no_inline_code(page: str) -> None:
    assert not INLINE_CODE.search(page)
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_a_counselor_adds_a_page_and_a_site_to_watch(kim: TestClient, safe: SafeEye) -> None:
    added = _post(kim, "/sources", kind="url", locator=PAGE, every="6h")
    assert added.status_code == 303 and added.headers["location"] == "/sources?done=added"
    site = _post(
        kim,
        "/sources",
        kind="crawl",
        locator="https://site.example/",
        every="1d",
        depth="2",
        max_pages="40",
        include="/gallery/**\n\n/videos/**",
    )
    assert site.status_code == 303
    crawl = _source(safe, "https://site.example/")
    assert crawl.interval_seconds == 86400 and crawl.config["depth"] == 2
    assert crawl.config["include"] == ["/gallery/**", "/videos/**"]
    page = kim.get("/sources").text
    row = _row(page, _source(safe, PAGE).id)
    assert PAGE in row and "every 6 hours" in row and "Active" in row
    assert "not visited yet" in row
    _no_inline_code(page)


def test_a_bad_address_or_interval_shows_the_form_again(kim: TestClient) -> None:
    bad_every = _post(kim, "/sources", kind="url", locator=PAGE + "?x", every="5 parsecs")
    assert bad_every.status_code == 422 and "was not added" in bad_every.text
    assert 'value="5 parsecs"' in bad_every.text
    bad_url = _post(kim, "/sources", kind="url", locator="ftp://nowhere/")
    assert bad_url.status_code == 422
    bad_depth = _post(kim, "/sources", kind="crawl", locator="https://b.example/", depth="-1")
    assert bad_depth.status_code == 422
    too_often = _post(kim, "/sources", kind="url", locator=PAGE + "?y", every="1s")
    assert too_often.status_code == 422


def test_pause_resume_and_visit_now_from_the_page_are_audited(
    kim: TestClient, safe: SafeEye
) -> None:
    source = act(safe, add_source, "url", "https://leak.example/pause-me")
    assert _post(kim, f"/sources/{source.id}/pause").status_code == 303
    row = _row(kim.get("/sources").text, source.id)
    assert "Paused" in row and "Resume" in row and "Visit now" not in row
    assert _post(kim, f"/sources/{source.id}/visit").status_code == 409  # resume it first
    assert _post(kim, f"/sources/{source.id}/resume").status_code == 303
    assert "Active" in _row(kim.get("/sources").text, source.id)
    assert _post(kim, f"/sources/{source.id}/visit").status_code == 303
    with safe.db.session(read_only=True) as session:
        actions = set(
            session.execute(
                select(AuditEvent.action).where(
                    AuditEvent.object_type == "source", AuditEvent.object_id == str(source.id)
                )
            ).scalars()
        )
    assert {"source.paused", "source.resumed"} <= actions
    assert _post(kim, "/sources/999999/pause").status_code == 404


def test_a_paused_source_is_never_due_and_no_monitor_visits_it(any_db_app: SafeEye) -> None:
    safe = any_db_app
    source = act(safe, add_source, "url", "https://leak.example/never-visited")
    monitor = Monitor(safe)
    try:
        assert source.id in monitor.due_sources()
        paused = act(safe, pause_source, source.id)
        assert paused.paused and paused.next_due_at is None
        assert source.id not in monitor.due_sources()
        assert monitor.visit(source.id) is None  # a visit queued before the pause finds it
        with pytest.raises(ConflictError):
            act(safe, make_due, source.id)
        assert _source(safe, source.locator).last_visit_at is None
        resumed = act(safe, resume_source, source.id)
        assert not resumed.paused and resumed.next_due_at is not None
        assert source.id in monitor.due_sources()
    finally:
        monitor.close()


def test_resuming_a_source_visited_once_does_not_visit_it_again(safe: SafeEye) -> None:
    source = act(safe, add_source, "url", "https://leak.example/once")
    with safe.db.session() as session:
        row = session.get(Source, source.id)
        assert row is not None
        row.last_visit_at, row.next_due_at = utcnow(), None
    act(safe, pause_source, source.id)
    assert act(safe, resume_source, source.id).next_due_at is None


def test_the_api_adds_lists_pauses_resumes_and_visits(web: FastAPI, safe: SafeEye) -> None:
    bearer = {"Authorization": f"Bearer {api_token(safe, 'kim')}"}
    with TestClient(web) as api:
        made = api.post(
            "/api/v1/sources",
            json={"kind": "crawl", "locator": "https://api.example/", "every": "2h", "depth": 1},
            headers=bearer,
        )
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["interval_seconds"] == 7200 and body["config"]["depth"] == 1
        assert body["paused"] is False and body["next_due_at"]
        source_id = body["id"]
        paused = api.post(f"/api/v1/sources/{source_id}/pause", headers=bearer).json()
        assert paused["paused"] is True and paused["next_due_at"] is None
        assert api.post(f"/api/v1/sources/{source_id}/visit", headers=bearer).status_code == 409
        resumed = api.post(f"/api/v1/sources/{source_id}/resume", headers=bearer).json()
        assert resumed["paused"] is False
        visit = api.post(f"/api/v1/sources/{source_id}/visit", headers=bearer)
        assert visit.status_code == 202
        listed = api.get("/api/v1/sources?limit=1", headers=bearer).json()
        assert listed["limit"] == 1 and [s["id"] for s in listed["items"]] == [source_id]
        assert listed["total"] == act(safe, list_sources_page, limit=500).total
        wrong = api.post(
            "/api/v1/sources", json={"kind": "url", "locator": PAGE, "depth": 3}, headers=bearer
        )
        assert wrong.status_code == 422
        for odd in ("folder", "upload"):
            refused = api.post(
                "/api/v1/sources", json={"kind": odd, "locator": "/etc"}, headers=bearer
            )
            assert refused.status_code == 422
        for every in ("99999999999999d", "0", "x"):
            huge = api.post(
                "/api/v1/sources",
                json={"kind": "url", "locator": PAGE, "every": every},
                headers=bearer,
            )
            assert huge.status_code == 422, every


def test_reviewers_and_auditors_read_sources_but_change_nothing(
    web: FastAPI, safe: SafeEye
) -> None:
    source = act(safe, add_source, "url", "https://leak.example/read-only")
    for name in ("lee", "park"):
        with browser(web, name) as client:
            page = client.get("/sources")
            assert page.status_code == 200 and f"/sources/{source.id}/pause" not in page.text
            assert 'method="post" action="/sources"' not in page.text
            token = form_token(page.text)
            answers = [
                client.post("/sources", data={"csrf_token": token, "kind": "url", "locator": PAGE}),
                client.post(f"/sources/{source.id}/pause", data={"csrf_token": token}),
                client.post(f"/sources/{source.id}/visit", data={"csrf_token": token}),
            ]
            assert [a.status_code for a in answers] == [403, 403, 403]
            bearer = {"Authorization": f"Bearer {api_token(safe, name)}"}
            assert client.get("/api/v1/sources", headers=bearer).status_code == 200
            refused = client.post(f"/api/v1/sources/{source.id}/pause", headers=bearer)
            assert refused.status_code == 403
    assert _source(safe, source.locator).enabled


def test_parse_interval_takes_units_and_refuses_nonsense() -> None:
    assert parse_interval("90") == 90 and parse_interval("10m") == 600
    assert parse_interval("1.5h") == 5400 and parse_interval("366d") == 366 * 86400
    for text in ("", "5", "367d", "1w", "-1h"):
        with pytest.raises(Exception, match="interval"):
            parse_interval(text)
