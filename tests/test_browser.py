"""The workbench in a real browser: Debian's Chromium driven by Playwright against ``safeeye
serve`` started as an operator would start it (a fresh data directory, the first
administrator's one-time password from what it prints, the monitor and the deletion follow-up
in the same process). A local web server plays a site where a victim's photo turns up.

The steps run in order and share the server: the administrator's first sign-in; a counselor
opens a case with a face photo and watches the local site; the match appears in the reviewer's
queue blurred, a sharp look is an audit event, the reviewer confirms it; the case page shows the
match and its drafted notice; an auditor cannot confirm and a counselor cannot manage users;
the SOS form makes a pending case whose status page answers to its code and PIN only.
Screenshots at 1366x768, in Korean and in English, go to the folder printed at the end of the
run (``SAFEEYE_SCREENSHOTS`` or build/screenshots).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from conftest import make_settings
from live_server import LiveServer, start_server
from safeeye.accounts import create_user
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent, Case, Match
from safeeye.work import Actor
from webtools import PASSWORD, SCREENSHOTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "fixtures" / "faces"
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1366, "height": 768}
CASE = "WEB-2026-0001"
NEW_ADMIN_PASSWORD = "a long passphrase of the admin's own"
WAIT_SECONDS = 180.0

playwright_api = pytest.importorskip("playwright.sync_api")


def screenshots_folder() -> Path:
    folder = Path(os.environ.get("SAFEEYE_SCREENSHOTS") or ROOT / "build" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- the local site and the server ----------------------------------------------------------


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gallery page on 127.0.0.1 showing another photo of the victim."""
    root = tmp_path_factory.mktemp("site")
    shutil.copy(FACES / "obama3.jpg", root / "holiday.jpg")
    (root / "gallery.html").write_text(
        '<!doctype html><html lang="en"><body><h1>new pics</h1>'
        '<img src="/holiday.jpg" alt=""></body></html>'
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    if not CHROMIUM.exists():
        pytest.fail("no Chromium: scripts/setup installs Debian's chromium (make test runs it)")
    data = tmp_path_factory.mktemp("served") / "data"
    env = {
        "SAFEEYE_ANALYSIS_ISOLATION": "inline",
        "SAFEEYE_SCAN_WORKERS": "1",
        "SAFEEYE_FETCH_ALLOWLIST": "127.0.0.1",
        "SAFEEYE_FETCH_HOST_INTERVAL": "0",
        "SAFEEYE_EVIDENCE_SCREENSHOTS": "false",
        "SAFEEYE_ACTOR": "operator",
    }
    live = start_server(data, env)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def safe(server: LiveServer) -> Iterator[SafeEye]:
    """The same installation, opened beside the server (to make accounts and read rows)."""
    app = SafeEye(make_settings(server.data_dir))
    with app.work(Actor.operator("test")) as work:
        for username, role, language in (
            ("kim", "counselor", "en"),
            ("lee", "reviewer", "en"),
            ("park", "auditor", "en"),
            ("viewer-ko", "admin", "ko"),
            ("viewer-en", "admin", "en"),
        ):
            create_user(work, username, [role], password=PASSWORD, language=language)
    yield app
    app.close()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest) -> Path:
    """The screenshots' folder; the run's summary prints it (conftest)."""
    folder = screenshots_folder()
    request.config.stash.setdefault(SCREENSHOTS, set()).add(str(folder))
    return folder


class Person:
    """One person in their own browser context (their own cookies)."""

    def __init__(self, chromium: Any, server: LiveServer, *, locale: str = "en-US") -> None:
        self.context = chromium.new_context(viewport=VIEWPORT, locale=locale)
        self.page = self.context.new_page()
        self.server = server

    def go(self, path: str) -> Any:
        return self.page.goto(self.server.url + path)

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.go("/login")
        self.page.fill("input[name=username]", username)
        self.page.fill("input[name=password]", password)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_load_state()

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def people(chromium: Any, server: LiveServer, safe: SafeEye) -> Iterator[dict[str, Person]]:
    made: dict[str, Person] = {}
    yield made
    for person in made.values():
        person.close()


def person(people: dict[str, Person], chromium: Any, server: LiveServer, username: str) -> Person:
    if username not in people:
        people[username] = Person(chromium, server)
        people[username].sign_in(username)
    return people[username]


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(1.0)
    raise AssertionError(f"waited {timeout:.0f} s for {what}")


def match_of(safe: SafeEye) -> Match | None:
    with safe.db.session(read_only=True) as session:
        return session.execute(
            select(Match).join(Case, Case.id == Match.case_id).where(Case.code == CASE)
        ).scalar_one_or_none()


def audit_count(safe: SafeEye, action: str) -> int:
    with safe.db.session(read_only=True) as session:
        return len(session.execute(select(AuditEvent.id).where(AuditEvent.action == action)).all())


# -- the steps ------------------------------------------------------------------------------


def test_the_first_administrator_signs_in_with_the_printed_password_and_chooses_their_own(
    chromium: Any, server: LiveServer, people: dict[str, Person]
) -> None:
    assert server.admin is not None, server.printed()
    username, one_time = server.admin
    admin = Person(chromium, server, locale="ko-KR")
    people["admin"] = admin
    admin.sign_in(username, one_time)
    assert admin.page.url.endswith("/account/password")
    assert admin.page.locator("html").get_attribute("lang") == "ko"
    admin.page.fill("input[name=current_password]", one_time)
    admin.page.fill("input[name=new_password]", NEW_ADMIN_PASSWORD)
    admin.page.fill("input[name=new_password_again]", NEW_ADMIN_PASSWORD)
    admin.page.click("form[action='/account/password'] button[type=submit]")
    admin.page.wait_for_load_state()
    assert admin.go("/users").status == 200
    assert "/login" not in admin.page.url and "/account/password" not in admin.page.url


def test_a_counselor_opens_a_case_with_a_face_photo_and_watches_a_local_site(
    chromium: Any, server: LiveServer, people: dict[str, Person], safe: SafeEye, site: str
) -> None:
    kim = person(people, chromium, server, "kim")
    kim.go("/cases")
    kim.page.fill("form[method=post][action='/cases'] input[name=code]", CASE)
    kim.page.fill(
        "form[method=post][action='/cases'] input[name=consent_basis]", "signed SOS intake form"
    )
    kim.page.click("form[method=post][action='/cases'] button[type=submit]")
    kim.page.wait_for_load_state()
    assert f"/cases/{CASE}" in kim.page.url, kim.page.content()
    faces = f"form[action='/cases/{CASE}/faces']"
    kim.page.set_input_files(f"{faces} input[type=file]", FACES / "obama.jpg")
    kim.page.click(f"{faces} button[type=submit]")
    kim.page.wait_for_load_state()
    with safe.db.session(read_only=True) as session:
        case = session.execute(select(Case).where(Case.code == CASE)).scalar_one()
        assert len(case.references) == 1
    kim.go("/sources")
    kim.page.select_option("form[method=post][action='/sources'] select[name=kind]", "url")
    kim.page.fill(
        "form[method=post][action='/sources'] input[name=locator]", f"{site}/gallery.html"
    )
    kim.page.fill("form[method=post][action='/sources'] input[name=every]", "1h")
    kim.page.click("form[method=post][action='/sources'] button[type=submit]")
    kim.page.wait_for_load_state()
    assert kim.page.locator(f"text={site}/gallery.html").count() >= 1


def test_the_match_appears_blurred_a_sharp_look_is_audited_and_the_reviewer_confirms(
    chromium: Any, server: LiveServer, people: dict[str, Person], safe: SafeEye, shots: Path
) -> None:
    found = wait_for("the match of the local site's photo", lambda: match_of(safe))
    for language in ("ko", "en"):
        viewer = person(people, chromium, server, f"viewer-{language}")
        assert viewer.go("/review").status == 200
        assert viewer.page.locator("html").get_attribute("lang") == language
        viewer.page.screenshot(path=str(shots / f"review-queue-{language}.png"))
    lee = person(people, chromium, server, "lee")
    lee.go("/review")
    row = lee.page.locator(f"tr[data-match='{found.id}']")
    assert row.count() == 1
    thumb = row.locator("img")
    assert "reveal" not in (thumb.get_attribute("src") or "")
    thumb.scroll_into_view_if_needed()
    lee.page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
    )
    before = audit_count(safe, "media.revealed")
    lee.go(f"/review/{found.id}")
    lee.page.click("#reveal")
    lee.page.wait_for_load_state()
    wait_for(
        "the audit event of the sharp look",
        lambda: audit_count(safe, "media.revealed") > before,
        30,
    )
    lee.page.select_option("#decide select[name=category]", "synthetic")
    lee.page.click("#decide button[value=confirm]")
    lee.page.wait_for_load_state()
    assert wait_for("the confirmation", lambda: (m := match_of(safe)) and m.status == "confirmed")


def test_the_case_page_shows_the_match_and_its_drafted_notice(
    chromium: Any, server: LiveServer, people: dict[str, Person], safe: SafeEye
) -> None:
    kim = person(people, chromium, server, "kim")
    found = match_of(safe)
    assert found is not None

    def notice_listed() -> bool:
        kim.go(f"/cases/{CASE}")
        return kim.page.locator("a[href^='/notices/']").count() > 0

    wait_for("the drafted notice on the case page", notice_listed)
    assert kim.page.locator(f"a[href='/review/{found.id}']").count() >= 1


def test_an_auditor_cannot_confirm_and_a_counselor_cannot_manage_users(
    chromium: Any, server: LiveServer, people: dict[str, Person], safe: SafeEye
) -> None:
    found = match_of(safe)
    assert found is not None
    park = person(people, chromium, server, "park")
    assert park.go(f"/review/{found.id}").status == 403
    token = park.page.evaluate(
        "() => JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']"
    )
    answer = park.page.request.post(
        f"{server.url}/review/decisions",
        form={
            "csrf_token": token,
            "match_id": str(found.id),
            "decision": "reject",
            "reason": "not_victim",
        },
    )
    assert answer.status == 403
    assert match_of(safe).status == "confirmed"  # type: ignore[union-attr]
    kim = person(people, chromium, server, "kim")
    assert kim.go("/users").status == 403
    token = kim.page.evaluate(
        "() => JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']"
    )
    answer = kim.page.request.post(
        f"{server.url}/users",
        form={"csrf_token": token, "username": "mallory", "roles": "admin"},
    )
    assert answer.status == 403


def test_the_sos_form_makes_a_pending_case_whose_status_page_needs_code_and_pin(
    chromium: Any, server: LiveServer, people: dict[str, Person], safe: SafeEye, shots: Path
) -> None:
    visitor = Person(chromium, server, locale="ko-KR")
    people["visitor"] = visitor
    visitor.go("/sos")
    assert visitor.page.locator("html").get_attribute("lang") == "ko"
    visitor.page.check("input[name=reporter][value=victim]")
    visitor.page.fill("textarea[name=urls]", "https://leak.example/board/123\n")
    visitor.page.click("form[action='/sos'] button[type=submit]")
    visitor.page.wait_for_load_state()
    code, pin = (text.strip() for text in visitor.page.locator("code.secret").all_inner_texts())
    with safe.db.session(read_only=True) as session:
        pending = session.execute(select(Case).where(Case.status == "pending")).scalars().all()
        assert len(pending) == 1
    stranger = Person(chromium, server)
    people["stranger"] = stranger
    stranger.go("/status")
    stranger.page.fill("input[name=code]", code)
    stranger.page.fill("input[name=pin]", "000000" if pin != "000000" else "111111")
    stranger.page.click("form[action='/status'] button[type=submit]")
    stranger.page.wait_for_load_state()
    assert stranger.page.locator("input[name=grant]").count() == 0
    assert pending[0].code not in stranger.page.content()
    visitor.go("/status")
    visitor.page.fill("input[name=code]", code)
    visitor.page.fill("input[name=pin]", pin)
    visitor.page.click("form[action='/status'] button[type=submit]")
    visitor.page.wait_for_load_state()
    assert visitor.page.locator("input[name=grant]").count() >= 1
    assert visitor.page.locator("img").count() == 0 and visitor.page.locator("video").count() == 0
    visitor.page.screenshot(path=str(shots / "status-ko.png"))
    visitor.go("/status?lang=en")
    visitor.page.fill("input[name=code]", code)
    visitor.page.fill("input[name=pin]", pin)
    visitor.page.click("form[action='/status'] button[type=submit]")
    visitor.page.wait_for_load_state()
    assert visitor.page.locator("html").get_attribute("lang") == "en"
    visitor.page.screenshot(path=str(shots / "status-en.png"))


@pytest.mark.parametrize("language", ["ko", "en"])
def test_screenshots_of_the_dashboard_queue_and_case_page(
    chromium: Any,
    server: LiveServer,
    people: dict[str, Person],
    safe: SafeEye,
    shots: Path,
    language: str,
) -> None:
    viewer = person(people, chromium, server, f"viewer-{language}")
    for name, path in (("dashboard", "/"), ("case", f"/cases/{CASE}")):
        answer = viewer.go(path)
        assert answer.status == 200, path
        assert viewer.page.locator("html").get_attribute("lang") == language
        viewer.page.screenshot(path=str(shots / f"{name}-{language}.png"))
    assert (shots / f"dashboard-{language}.png").stat().st_size > 10_000
