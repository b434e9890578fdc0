"""One's own account in the workbench: the password (other sessions end), language and blur
level, the second factor, API tokens shown once, sessions; a person on a one-time password is
sent to the password form first; the same through /api/v1."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import act, make_app, make_settings
from safeeye.accounts import create_user
from safeeye.app import SafeEye
from safeeye.web.app import create_app
from safeeye.web.routes.account import qr_modules, qr_svg_path
from webtools import INLINE_CODE, PASSWORD, api_token, browser, csrf_of, form_token, sign_in, user

NEW_PASSWORD = "a brand new passphrase for kim"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("account") / "data"))
    yield app
    app.close()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    return create_app(safe)


def post(client: TestClient, path: str, page: str = "/account", **fields: str):  # type: ignore[no-untyped-def]
    """A form posted with the CSRF token of one of the session's pages."""
    return client.post(path, data={"csrf_token": csrf_of(client, page), **fields})


def change(client: TestClient, current: str, new: str, again: str | None = None):  # type: ignore[no-untyped-def]
    """The password form, posted."""
    fields = {"current_password": current, "new_password": new}
    page = "/account/password"
    return post(client, page, page, **fields, new_password_again=new if again is None else again)


def test_a_password_change_ends_the_other_sessions_and_the_new_password_works(
    web: FastAPI, safe: SafeEye
) -> None:
    user(safe, "pw", "counselor")
    with browser(web, "pw") as here, browser(web, "pw") as elsewhere:
        page = here.get("/account/password")
        assert page.status_code == 200 and 'autocomplete="new-password"' in page.text
        wrong = change(here, "not it", NEW_PASSWORD)
        assert wrong.status_code == 403
        assert "The current password is not right" in wrong.text and "not it" not in wrong.text
        typo = change(here, PASSWORD, NEW_PASSWORD, "typo")
        assert typo.status_code == 422 and "are not the same" in typo.text
        weak = change(here, PASSWORD, "short")
        assert weak.status_code == 422 and "does not follow the rules" in weak.text
        changed = change(here, PASSWORD, NEW_PASSWORD)
        assert changed.status_code == 303
        assert changed.headers["location"] == "/account?done=password"
        assert "Your password is changed" in here.get("/account?done=password").text
        assert elsewhere.get("/account").headers["location"].startswith("/login")
    with browser(web) as fresh:
        assert sign_in(fresh, "pw").status_code == 401
        assert sign_in(fresh, "pw", NEW_PASSWORD).status_code == 303


def test_the_language_setting_changes_the_pages_and_the_blur_level_is_kept(
    web: FastAPI, safe: SafeEye
) -> None:
    user(safe, "lang", "reviewer", name="Lang")
    with browser(web, "lang") as client:
        english = client.get("/account")
        assert '<html lang="en">' in english.text and "My account" in english.text
        saved = post(client, "/account/preferences", language="ko", blur_level="medium")
        assert saved.status_code == 303 and saved.headers["location"] == "/account?done=preferences"
        korean = client.get("/account?done=preferences")
        assert '<html lang="ko">' in korean.text and "내 계정" in korean.text
        assert "설정을 저장했습니다" in korean.text
        assert 'value="medium" checked' in korean.text
        assert "<h1>비밀번호 변경</h1>" in client.get("/account/password").text
        account = client.get("/api/v1/account").json()
        assert (account["language"], account["blur_level"]) == ("ko", "medium")
        bad = post(client, "/account/preferences", language="fr", blur_level="medium")
        assert bad.status_code == 422  # not a language the pages speak


def test_a_second_factor_is_set_up_with_a_code_and_then_asked_at_sign_in(
    web: FastAPI, safe: SafeEye
) -> None:
    user(safe, "totp", "auditor")
    with browser(web, "totp") as client:
        assert "Set up a second factor" in client.get("/account/totp").text
        setup = post(client, "/account/totp/enrol", "/account/totp")
        assert setup.status_code == 200
        secret = re.search(r'name="secret" value="([A-Z2-7]+)"', setup.text).group(1)  # type: ignore[union-attr]
        assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) in setup.text
        assert "otpauth://totp/safeeye:totp?secret=" in setup.text
        assert '<svg class="qr"' in setup.text  # drawn on the server: no script, no image URL
        wrong = post(client, "/account/totp", "/account/totp", code="000000", secret=secret)
        assert wrong.status_code == 422 and "does not match" in wrong.text and secret in wrong.text
        code = pyotp.TOTP(secret).now()
        on = post(client, "/account/totp", "/account/totp", code=code, secret=secret)
        assert on.status_code == 303 and on.headers["location"] == "/account/totp?done=on"
        assert "The second factor is on" in client.get("/account/totp?done=on").text
    with browser(web) as fresh:
        assert sign_in(fresh, "totp").status_code == 401  # the code is asked for
        assert sign_in(fresh, "totp", totp_code=code).status_code == 401  # used already
        later = pyotp.TOTP(secret).at(time.time() + 30)
        assert sign_in(fresh, "totp", totp_code=later).status_code == 303
        refused = post(fresh, "/account/totp/disable", "/account/totp", password="wrong")
        assert refused.status_code == 403 and "The password is not right" in refused.text
        off = post(fresh, "/account/totp/disable", "/account/totp", password=PASSWORD)
        assert off.status_code == 303
        assert fresh.get("/api/v1/account").json()["totp_enabled"] is False


def test_the_qr_code_of_a_key_reads_back_as_its_address() -> None:
    uri = pyotp.TOTP(pyotp.random_base32()).provisioning_uri(name="kim", issuer_name="safeeye")
    modules = qr_modules(uri)
    assert modules is not None
    dark = np.array(modules, dtype=bool)
    picture = np.where(np.kron(dark, np.ones((8, 8), dtype=bool)), 0, 255).astype(np.uint8)
    picture = np.pad(picture, 32, constant_values=255)
    # Two of OpenCV's decoders: the classic one misreads about 7 % of valid codes (each one
    # that it missed, the ArUco-based one read: 200 random keys tried).
    decoded = (
        cv2.QRCodeDetector().detectAndDecode(picture)[0]
        or cv2.QRCodeDetectorAruco().detectAndDecode(picture)[0]
    )
    assert decoded == uri
    path = qr_svg_path(modules)
    assert path.count("M") == sum(  # one rectangle per run of dark modules in a row
        sum(1 for x, cell in enumerate(row) if cell and (x == 0 or not row[x - 1]))
        for row in modules
    )


def test_a_new_token_is_shown_once_works_as_a_bearer_and_stops_when_revoked(
    web: FastAPI, safe: SafeEye
) -> None:
    user(safe, "tok", "counselor")
    with browser(web, "tok") as client:
        made = post(client, "/account/tokens", name="nightly export", lifetime="30")
        assert made.status_code == 201
        token = re.search(r"sey_[A-Za-z0-9_-]{20,}", made.text).group(0)  # type: ignore[union-attr]
        assert "shown only this once" in made.text
        listed = client.get("/account").text
        assert token not in listed and token[:12] in listed and "nightly export" in listed
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/me", headers=bearer).json()["username"] == "tok"
        token_id = client.get("/api/v1/account/tokens").json()[0]["id"]
        revoked = post(client, f"/account/tokens/{token_id}/revoke")
        assert revoked.status_code == 303
        assert client.get("/api/v1/me", headers=bearer).status_code == 401
        assert client.get("/api/v1/account/tokens").json()[0]["status"] == "revoked"
        blank = post(client, "/account/tokens", name="   ")
        assert blank.status_code == 422 and "Give the token a name" in blank.text


def test_sessions_are_listed_and_one_can_be_ended(web: FastAPI, safe: SafeEye) -> None:
    user(safe, "sess", "reviewer")
    with browser(web, "sess") as here, browser(web, "sess") as there:
        assert there.get("/account").status_code == 200
        sessions = here.get("/api/v1/account/sessions").json()
        assert len(sessions) == 2
        page = here.get("/account").text
        assert page.count("(this browser)") == 1
        other = max(s["id"] for s in sessions)  # ``there`` signed in last
        assert post(here, f"/account/sessions/{other}/revoke").status_code == 303
        assert there.get("/account").status_code == 303
        assert here.get("/account").status_code == 200
        assert len(here.get("/api/v1/account/sessions").json()) == 1


def test_a_one_time_password_leads_to_the_password_form_until_it_is_changed(
    web: FastAPI, safe: SafeEye
) -> None:
    issued = act(safe, create_user, "once", ["counselor"], language="en")
    assert issued.password
    with browser(web) as client:
        signed = sign_in(client, "once", issued.password, next="/cases")
        assert signed.status_code == 303 and signed.headers["location"] == "/account/password"
        for page in ("/", "/account", "/users", "/login"):
            answer = client.get(page)
            assert answer.status_code == 303, page
            assert answer.headers["location"] == "/account/password"
        htmx = client.get("/account", headers={"HX-Request": "true"})
        assert htmx.headers["hx-redirect"] == "/account/password"
        assert client.get("/api/v1/me").json()["roles"] == []  # the API is not redirected
        form = client.get("/account/password")
        assert "meant for one sign-in only" in form.text
        changed = change(client, issued.password, NEW_PASSWORD)
        assert changed.status_code == 303 and changed.headers["location"] == "/"
        assert client.get("/").status_code == 200
        assert client.get("/api/v1/me").json()["roles"] == ["counselor"]


def test_the_account_api(web: FastAPI, safe: SafeEye) -> None:
    user(safe, "robot", "reviewer")
    bearer = {"Authorization": f"Bearer {api_token(safe, 'robot')}"}
    with TestClient(web, headers=bearer) as api:
        me = api.get("/api/v1/account").json()
        assert me["username"] == "robot" and me["roles"] == ["reviewer"]
        assert "password_hash" not in me
        changed = api.patch("/api/v1/account", json={"language": "ko", "blur_level": "light"})
        assert changed.status_code == 200 and changed.json()["blur_level"] == "light"
        assert api.patch("/api/v1/account", json={"language": "fr"}).status_code == 422
        assert api.patch("/api/v1/account", json={"roles": ["admin"]}).status_code == 422
        surrogate = '{"display_name": "\\ud800"}'  # JSON may escape what UTF-8 cannot carry
        assert api.patch("/api/v1/account", content=surrogate, headers=JSON).status_code == 422

        wrong = api.post(
            "/api/v1/account/password",
            json={"current_password": "nope", "new_password": NEW_PASSWORD},
        )
        assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "bad_password"
        weak = api.post(
            "/api/v1/account/password", json={"current_password": PASSWORD, "new_password": "x"}
        )
        assert weak.status_code == 422
        surrogate = '{"current_password": "\\udcff", "new_password": "' + NEW_PASSWORD + '"}'
        unencodable = api.post("/api/v1/account/password", content=surrogate, headers=JSON)
        assert unencodable.status_code == 422
        ok = api.post(
            "/api/v1/account/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert ok.status_code == 200 and ok.json()["must_change_password"] is False

        made = api.post("/api/v1/account/tokens", json={"name": "ci", "expires_days": 7})
        assert made.status_code == 201 and made.json()["token"].startswith("sey_")
        assert api.post("/api/v1/account/tokens", json={"name": ""}).status_code == 422
        forever = {"name": "x", "expires_days": 0}
        assert api.post("/api/v1/account/tokens", json=forever).status_code == 422
        listed = api.get("/api/v1/account/tokens").json()
        assert {t["name"] for t in listed} == {"robot tests", "ci"}
        assert all("token" not in t for t in listed)
        mine = next(t["id"] for t in listed if t["name"] == "robot tests")
        itself = api.delete(f"/api/v1/account/tokens/{mine}")
        assert itself.status_code == 409  # the token in use cannot revoke itself
        other = api.delete(f"/api/v1/account/tokens/{made.json()['id']}")
        assert other.status_code == 200 and other.json()["status"] == "revoked"
        assert api.delete("/api/v1/account/tokens/999999").status_code == 404
        assert api.delete("/api/v1/account/tokens/99999999999").status_code == 422

        enrol = api.post("/api/v1/account/totp/enrol").json()
        assert enrol["uri"].startswith("otpauth://")
        assert api.post("/api/v1/account/totp", json={"code": "123"}).status_code == 422
        code = pyotp.TOTP(enrol["secret"]).now()
        assert api.post("/api/v1/account/totp", json={"code": code}).json()["totp_enabled"]
        refused = api.post("/api/v1/account/totp/disable", json={"password": "nope"})
        assert refused.status_code == 403
        off = api.post("/api/v1/account/totp/disable", json={"password": NEW_PASSWORD})
        assert off.status_code == 200 and off.json()["totp_enabled"] is False
        assert api.get("/api/v1/account/sessions").json() == []
        assert api.delete("/api/v1/account/sessions/424242").status_code == 404


def test_the_account_pages_have_no_inline_script_or_style(web: FastAPI, safe: SafeEye) -> None:
    user(safe, "plain", "counselor")
    with browser(web, "plain") as client:
        pages = [
            client.get("/account").text,
            client.get("/account/password").text,
            client.get("/account/totp").text,
            post(client, "/account/totp/enrol", "/account/totp").text,
            post(client, "/account/tokens", name="x").text,
        ]
    for page in pages:
        assert not INLINE_CODE.search(page)
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
        assert form_token(page)
