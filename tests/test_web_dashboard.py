"""The dashboard (``/``) and its API: the right figures for a small known data set, each block
only for the roles that may read it, one bar per day in the charts, and the note to choose a
password for an account that must."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from conftest import act, make_app, make_settings
from safeeye.accounts import create_user
from safeeye.app import SafeEye
from safeeye.cases.service import create_case
from safeeye.db.models import Case, Match, Media, Notice, Recipient, Sighting
from safeeye.db.types import utcnow
from safeeye.overview import DAYS, dashboard
from safeeye.web.app import create_app
from safeeye.web.charts import Bar, day_bars
from webtools import INLINE_CODE, api_token, browser, sign_in, user

ONE_TIME: dict[str, str] = {}


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("dashboard") / "data"))
    known_data(app)
    for name, roles in {
        "rev": ("reviewer",),
        "cou": ("counselor",),
        "aud": ("auditor",),
        "adm": ("admin",),
    }.items():
        user(app, name, *roles)
    ONE_TIME["password"] = act(app, create_user, "fresh", ["admin"]).password
    yield app
    app.close()


def known_data(app: SafeEye) -> None:
    """Three cases (two open); matches: two pending (today), one escalated (three days ago),
    one confirmed (forty days ago, outside the charts); notices to one desk: one overdue, one
    due in three hours, two removed (10 and 20 hours after sending, two days ago), one draft."""
    for code in ("DA-1", "DA-2", "DA-3"):
        act(app, create_case, code)
    now = utcnow()
    with app.db.session() as session:
        session.execute(select(Case).where(Case.code == "DA-3")).scalar_one().status = "closed"
        case_id = session.scalar(select(Case.id).where(Case.code == "DA-1"))
        desk = Recipient(
            key="desk", name="The desk", kind="platform", connector="email", address="a@b.example"
        )
        session.add(desk)
        session.flush()
        matched = [("pending", 0), ("pending", 0), ("escalated", 3), ("confirmed", 40)]
        for i, (status, days_ago) in enumerate(matched):
            digest = hashlib.sha256(str(i).encode()).hexdigest()
            media = Media(sha256=digest, md5=digest[:32], size_bytes=1)
            session.add(media)
            session.flush()
            session.add(
                Match(
                    media_id=media.id,
                    case_id=case_id,
                    kind="hash",
                    distance=0.0,
                    evidence_sealed=b"",
                    status=status,
                    created_at=now - timedelta(days=days_ago),
                )
            )
        for i in range(5):
            url = f"https://leak.example/{i}.jpg"
            key = hashlib.sha256(url.encode()).hexdigest()
            session.add(Sighting(media_id=media.id, sha256=digest, location=url, location_key=key))
        session.flush()
        sightings = list(session.scalars(select(Sighting.id).order_by(Sighting.id)))
        two_days = now - timedelta(days=2)
        notices = [
            ("sent", now - timedelta(days=1), now - timedelta(hours=1), None),
            ("sent", now - timedelta(hours=1), now + timedelta(hours=3), None),
            ("removed", two_days, two_days + timedelta(hours=24), two_days + timedelta(hours=10)),
            ("removed", two_days, two_days + timedelta(hours=24), two_days + timedelta(hours=20)),
            ("draft", None, None, None),
        ]
        for i, (status, sent, deadline, removed) in enumerate(notices):
            session.add(
                Notice(
                    sighting_id=sightings[i],
                    recipient_id=desk.id,
                    case_id=case_id,
                    status=status,
                    language="ko",
                    category="synthetic",
                    content_sealed=b"-",
                    idempotency_key=f"N{i}",
                    sent_at=sent,
                    deadline_at=deadline,
                    removed_at=removed,
                )
            )
        session.commit()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    return create_app(safe)


def test_the_figures_are_right_for_a_known_data_set(safe: SafeEye) -> None:
    check_figures(safe)


def test_the_figures_are_the_same_on_postgresql(postgres_schema: str, tmp_path: Path) -> None:
    app = make_app(make_settings(tmp_path / "data", database_url=postgres_schema))
    try:
        known_data(app)
        check_figures(app)
    finally:
        app.close()


def check_figures(safe: SafeEye) -> None:
    figures = act(safe, dashboard)
    assert figures.open_cases == 2
    assert figures.awaiting_review == {"pending": 2, "escalated": 1}
    assert figures.notices_by_state == {"draft": 1, "removed": 2, "sent": 2}
    assert figures.deadlines is not None
    assert figures.deadlines.overdue == 1 and figures.deadlines.due_soon == 1
    assert [n.reference for n in figures.deadlines.overdue_notices] == ["N0"]
    assert [n.reference for n in figures.deadlines.due_soon_notices] == ["N1"]
    assert figures.detections is not None and len(figures.detections) == DAYS
    assert figures.detections[-1].count == 2  # today
    assert figures.detections[-4].count == 1  # three days ago
    assert sum(d.count for d in figures.detections) == 3  # forty days ago is outside
    assert figures.notices_sent is not None
    assert sum(d.count for d in figures.notices_sent) == 4
    assert figures.notices_sent[-3].count == 2  # the two removed ones, two days ago
    assert figures.removal_hours is not None
    [desk] = figures.removal_hours
    assert (desk.recipient, desk.removed, desk.median_hours) == ("desk", 2, 15.0)


def test_each_role_sees_the_blocks_it_may_read(web: FastAPI) -> None:
    with browser(web, "cou") as client:
        page = client.get("/")
        assert page.status_code == 200
        assert "Open cases" in page.text and "Notices by state" in page.text
        assert "Median hours to removal" not in page.text  # the figures are not a counselor's
        assert "Sharp looks" not in page.text
    with browser(web, "rev") as client:
        page = client.get("/").text
        assert "Median hours to removal" in page and 'href="/review"' in page
    with browser(web, "aud") as client:
        assert "Median hours to removal" in client.get("/").text
    with browser(web, "adm") as client:
        page = client.get("/").text
        assert "Open cases" in page and "Median hours to removal" in page
        assert "Sharp looks at matched media today" in page  # reviewers' exposure, for admins


def test_the_charts_have_one_bar_per_day_and_a_text_alternative(web: FastAPI) -> None:
    with browser(web, "rev") as client:
        page = client.get("/").text
    charts = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(charts) == 3  # detections, sent, hours to removal
    detections, sent, removal = charts
    for chart in (detections, sent):
        assert len(re.findall(r'<rect class="bar"', chart)) == DAYS
        assert 'role="img"' in chart and "<title>" in chart and "<desc" in chart
    assert "Detections per day" in detections and "3 in all" in detections
    assert ": 2 found" in detections
    assert len(re.findall(r'<rect class="bar"', removal)) == 1
    assert "median of 2 removals" in removal
    assert not INLINE_CODE.search(page)
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_a_chart_escapes_what_it_is_given() -> None:
    svg = day_bars("c", "<b>t</b>", "d & e", [Bar("2026-01-01", 1, "<script>")])
    assert "<b>" not in svg and "<script>" not in svg and "&lt;script&gt;" in svg


def test_an_account_that_must_change_its_password_sees_only_the_note(web: FastAPI) -> None:
    with browser(web) as client:
        assert sign_in(client, "fresh", ONE_TIME["password"]).status_code == 303
        page = client.get("/")
        if page.status_code == 303:  # sent to choose a password first
            assert page.headers["location"].startswith("/account/password")
            return
        assert page.status_code == 200
        assert 'href="/account/password"' in page.text
        assert "Open cases" not in page.text
        assert client.get("/api/v1/dashboard").status_code == 403


def test_the_api_gives_the_figures_by_role(web: FastAPI, safe: SafeEye) -> None:
    with browser(web) as client:
        auditor = {"Authorization": f"Bearer {api_token(safe, 'aud')}"}
        figures = client.get("/api/v1/dashboard", headers=auditor).json()
        assert figures["open_cases"] == 2 and figures["deadlines"]["overdue"] == 1
        assert len(figures["detections"]) == DAYS and figures["reveals_today"] is None
        counselor = {"Authorization": f"Bearer {api_token(safe, 'cou')}"}
        figures = client.get("/api/v1/dashboard", headers=counselor).json()
        assert figures["removal_hours"] is None and figures["open_cases"] == 2
        assert client.get("/api/v1/dashboard").status_code == 401
