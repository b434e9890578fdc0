"""The web workbench's skeleton: strict headers on every answer, sign-in and sign-out through
the accounts service, CSRF on every form, typed errors as statuses, no stack trace ever, Korean
pages by default with a complete catalog, static files."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from fastapi import FastAPI
from fastapi.testclient import TestClient

import webtools
from conftest import act, make_app, make_settings
from safeeye.accounts import create_api_token, create_user
from safeeye.app import SafeEye
from safeeye.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from safeeye.web.app import create_app
from safeeye.web.auth import SignedIn
from safeeye.web.rendering import static_url
from safeeye.web.routes.session import local_target
from safeeye.web.security import CONTENT_SECURITY_POLICY
from webtools import INLINE_CODE, PASSWORD, form_token, sign_in

WEB = Path(__file__).parent.parent / "src" / "safeeye" / "web"
SECRET = "https://leak.example/victim-name.jpg"


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("web") / "data"))
    yield app
    app.close()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    app = create_app(safe)

    def refuse(kind: str) -> None:
        errors = {
            "invalid": ValidationError("the case code <b>X</b> is malformed"),
            "missing": NotFoundError("no case SOS-1"),
            "taken": ConflictError("the case code is taken"),
            "forbidden": PermissionDenied("user:kim may not purge cases"),
        }
        raise errors[kind]

    def boom() -> None:
        raise RuntimeError(f"could not read {SECRET}")

    def private(me: SignedIn) -> dict[str, str]:
        return {"username": me.username}

    # Routes a test needs, behind the same guards as every other route.
    app.add_api_route("/test/refuse/{kind}", refuse)
    app.add_api_route("/api/v1/test/refuse/{kind}", refuse)
    app.add_api_route("/test/boom", boom)
    app.add_api_route("/api/v1/test/boom", boom)
    app.add_api_route("/test/private", private)
    return app


@pytest.fixture
def client(web: FastAPI) -> Iterator[TestClient]:
    # raise_server_exceptions stays on: an exception that reached the server would fail the
    # test, so a 500 seen here was answered by the app itself.
    with TestClient(web, follow_redirects=False) as browser:
        yield browser


def user(safe: SafeEye, username: str, *roles: str, name: str = "") -> None:
    """An account on the installation's default language (Korean)."""
    webtools.user(safe, username, *roles, name=name, language="ko")


def assert_strict_headers(response, *, https: bool = False) -> None:  # type: ignore[no-untyped-def]
    headers = response.headers
    csp = headers["content-security-policy"]
    assert csp == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert "camera=()" in headers["permissions-policy"]
    assert headers["cross-origin-opener-policy"] == "same-origin"
    assert ("strict-transport-security" in headers) is https
    if not response.request.url.path.startswith("/static/"):
        assert headers["cache-control"] == "no-store"


def test_every_answer_carries_strict_security_headers_and_is_never_cached(
    client: TestClient, safe: SafeEye
) -> None:
    user(safe, "headers", "reviewer")
    answers = [
        client.get("/login"),
        client.get("/"),
        client.get("/api/v1/me"),
        client.get("/no/such/page"),
        client.post("/login", data={"username": "x", "password": "y"}),
        client.get("/test/refuse/missing"),
        client.get("/test/boom"),
        client.get(static_url("safeeye.css")),
    ]
    assert sign_in(client, "headers").status_code == 303
    answers += [client.get("/"), client.get("/api/v1/me")]
    assert [a.status_code for a in answers] == [200, 303, 401, 404, 403, 404, 500, 200, 200, 200]
    for answer in answers:
        assert_strict_headers(answer)
    with TestClient(client.app, base_url="https://testserver", follow_redirects=False) as https:
        assert_strict_headers(https.get("/login"), https=True)


def test_anonymous_page_goes_to_sign_in_and_anonymous_api_gets_401_json(
    client: TestClient,
) -> None:
    page = client.get("/test/private?case=SOS-1")
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Ftest%2Fprivate%3Fcase%3DSOS-1"
    assert client.get("/").headers["location"] == "/login"
    htmx = client.get("/", headers={"HX-Request": "true"})
    assert htmx.status_code == 401 and htmx.headers["hx-redirect"] == "/login"
    api = client.get("/api/v1/me")
    assert api.status_code == 401
    assert api.json() == {
        "error": {"code": "unauthenticated", "message": "sign in or send a valid bearer token"}
    }
    assert api.headers["www-authenticate"] == "Bearer"


def test_a_form_without_its_csrf_token_is_refused_with_403(
    client: TestClient, safe: SafeEye
) -> None:
    user(safe, "csrf", "counselor")
    fields = {"username": "csrf", "password": PASSWORD}
    refused = client.post("/login", data=fields)  # no token at all, no cookie yet
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert "Traceback" not in refused.text and "csrf" in refused.text
    token = form_token(client.get("/login").text)
    assert client.post("/login", data={**fields, "csrf_token": "forged"}).status_code == 403
    from_elsewhere = client.post(
        "/login", data={**fields, "csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert from_elsewhere.status_code == 403
    assert client.post("/login", data={**fields, "csrf_token": token}).status_code == 303

    # Signed in, the session's own token is needed: another's, or none, is refused...
    home = client.get("/")
    assert home.status_code == 200
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": token}).status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.get("/").status_code == 200  # ...and the session goes on
    # HTMX sends it as a header (the page puts it in hx-headers).
    assert '"X-CSRF-Token": "' + form_token(home.text) + '"' in home.text
    out = client.post("/logout", headers={"X-CSRF-Token": form_token(home.text)})
    assert out.status_code == 303


def test_sign_in_shows_the_name_and_roles_and_sign_out_ends_the_session(
    client: TestClient, safe: SafeEye
) -> None:
    user(safe, "kim", "reviewer", "counselor", name="김지원 <검토>")
    signed = sign_in(client, "Kim", next="/cases/SOS-1")
    assert signed.status_code == 303 and signed.headers["location"] == "/cases/SOS-1"
    cookie = client.cookies["safeeye_session"]
    assert "httponly" in signed.headers["set-cookie"].lower()

    home = client.get("/")
    assert home.status_code == 200
    assert "김지원 &lt;검토&gt;" in home.text and "<검토>" not in home.text  # escaped
    assert "검토자" in home.text and "상담사" in home.text  # the roles, in Korean
    me = client.get("/api/v1/me").json()
    assert me["username"] == "kim" and me["roles"] == ["counselor", "reviewer"]

    assert client.post("/logout", data={"csrf_token": form_token(home.text)}).status_code == 303
    assert client.get("/").headers["location"] == "/login"
    client.cookies.set("safeeye_session", cookie)  # the old cookie, kept by someone
    stale = client.get("/")
    assert stale.status_code == 303 and stale.headers["location"] == "/login"
    assert 'safeeye_session=""' in stale.headers["set-cookie"]  # the browser drops it
    client.cookies.set("safeeye_session", cookie)
    assert client.get("/api/v1/me").status_code == 401


def test_an_account_on_a_one_time_password_is_asked_to_change_it_and_acts_with_no_role(
    client: TestClient, safe: SafeEye
) -> None:
    issued = act(safe, create_user, "choi", ["admin"], display_name="최")
    assert issued.password and issued.account.must_change_password
    signed = sign_in(client, "choi", issued.password)
    assert signed.status_code == 303 and signed.headers["location"] == "/account/password"
    assert client.get("/").headers["location"] == "/account/password"
    page = client.get("/account/password").text
    assert "본인만 아는 새 비밀번호로 바꿔 주세요" in page
    assert "관리자" not in page and "역할을 요청해 주세요" not in page
    assert client.get("/api/v1/me").json()["roles"] == []


def test_a_wrong_password_shows_the_form_again_without_the_password(
    client: TestClient, safe: SafeEye
) -> None:
    user(safe, "park", "auditor")
    refused = sign_in(client, "park", "not the password at all")
    assert refused.status_code == 401
    assert "아이디, 비밀번호 또는 일회용 인증 코드가 맞지 않습니다" in refused.text
    assert 'value="park"' in refused.text and "not the password" not in refused.text
    assert "safeeye_session" not in client.cookies


def test_a_bearer_token_reaches_the_api_without_csrf_and_a_bad_one_is_never_the_cookie(
    client: TestClient, safe: SafeEye
) -> None:
    user(safe, "robot", "reviewer")
    token = act(safe, create_api_token, "test", "robot").token
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["credential"] == "token"
    posted = client.post("/logout", headers={"Authorization": f"Bearer {token}"})
    assert posted.status_code == 303  # no CSRF token needed
    assert sign_in(client, "robot").status_code == 303
    assert client.get("/api/v1/me").status_code == 200
    wrong = client.get("/api/v1/me", headers={"Authorization": "Bearer sey_wrong"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("invalid", 422, "invalid"),
        ("missing", 404, "not_found"),
        ("taken", 409, "conflict"),
        ("forbidden", 403, "forbidden"),
    ],
)
def test_a_typed_error_becomes_its_status_with_a_plain_message(
    client: TestClient, kind: str, status: int, code: str
) -> None:
    api = client.get(f"/api/v1/test/refuse/{kind}")
    assert api.status_code == status
    assert api.json()["error"]["code"] == code
    page = client.get(f"/test/refuse/{kind}")
    assert page.status_code == status and "text/html" in page.headers["content-type"]
    assert f"<code>{code}</code>" in page.text
    if kind == "invalid":
        assert "&lt;b&gt;X&lt;/b&gt;" in page.text  # a message is text, never markup


def test_an_unexpected_exception_is_a_500_without_a_trace_in_the_answer_or_the_log(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        page = client.get("/test/boom")
        api = client.get("/api/v1/test/boom")
    assert page.status_code == 500 and api.status_code == 500
    assert api.json() == {"error": {"code": "internal", "message": "internal"}}
    for text in (page.text, api.text):
        assert "Traceback" not in text and "RuntimeError" not in text and SECRET not in text
    assert "시스템에 문제가 생겼습니다" in page.text
    assert "RuntimeError" in caplog.text  # what failed, for whoever runs the server...
    assert SECRET not in caplog.text  # ...but not the message, which may quote victim data


def test_a_request_body_over_the_limit_is_refused_with_413(client: TestClient) -> None:
    big = client.post("/login", content=b"x" * (2 * 1024 * 1024))
    assert big.status_code == 413
    assert_strict_headers(big)
    token = form_token(client.get("/login").text)
    chunks = (
        b"csrf_token=" + token.encode() + b"&x=" if i == 0 else b"x" * 65536 for i in range(40)
    )
    streamed = client.post(  # no Content-Length: counted as it arrives
        "/login", content=chunks, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert streamed.status_code == 413 and "text/html" in streamed.headers["content-type"]
    assert_strict_headers(streamed)


def test_the_sign_in_page_is_korean_by_default_and_english_on_request(
    client: TestClient,
) -> None:
    korean = client.get("/login")
    assert '<html lang="ko">' in korean.text and "<h1>로그인</h1>" in korean.text
    english = client.get("/login?lang=en")
    assert '<html lang="en">' in english.text and "<h1>Sign in</h1>" in english.text
    assert client.cookies["lang"] == "en"
    assert "<h1>Sign in</h1>" in client.get("/login").text  # the cookie keeps the choice
    assert "<h1>로그인</h1>" in client.get("/login?lang=ko").text
    client.cookies.set("lang", "fr")
    assert "<h1>로그인</h1>" in client.get("/login?lang=xx").text


def test_a_signed_in_persons_language_setting_wins_over_the_switch(
    client: TestClient, safe: SafeEye
) -> None:
    act(safe, create_user, "lee", ["reviewer"], password=PASSWORD, language="en")
    assert sign_in(client, "lee").status_code == 303
    assert "Your roles" in client.get("/?lang=ko").text


def test_static_files_are_served_and_kept_by_version(client: TestClient) -> None:
    css = client.get(static_url("safeeye.css"))
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".card" in css.text
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    htmx = client.get(static_url("vendor/htmx.min.js"))
    assert htmx.status_code == 200 and 'version:"2.0.11"' in htmx.text
    assert client.get("/static/safeeye.css").headers["cache-control"] == "no-cache"
    assert client.get("/static/../app.py").status_code == 404


def test_pages_have_no_inline_script_style_or_event_handler(
    client: TestClient, safe: SafeEye
) -> None:
    user(safe, "inline", "admin")
    pages = [client.get("/login").text, client.get("/test/refuse/missing").text]
    sign_in(client, "inline")
    pages += [client.get("/").text, client.get("/test/boom").text]
    for page in pages:
        assert not INLINE_CODE.search(page)
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def test_after_sign_in_only_a_path_on_this_site_is_followed() -> None:
    assert local_target("/review?case=SOS-1") == "/review?case=SOS-1"
    for elsewhere in ("https://evil.example/", "//evil.example/", "/\\evil.example", "", None):
        assert local_target(elsewhere) == "/"


def test_every_message_of_the_pages_has_a_korean_translation() -> None:
    with (WEB / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    wanted = {
        message[2] for message in extract_from_dir(str(WEB), method_map, options_map)
    }  # (filename, lineno, message, comments, context)
    assert len(wanted) > 30
    with (WEB / "locale" / "ko" / "LC_MESSAGES" / "web.po").open("rb") as po:
        catalog = read_po(po, locale="ko")
    have = {m.id: m for m in catalog if m.id}
    missing = sorted(wanted - set(have))
    assert not missing, f"not in the Korean catalog (see docs/web.md): {missing}"
    assert not [m.id for m in have.values() if not m.string or m.fuzzy]
    assert not list(catalog.check())  # placeholders match their English source
