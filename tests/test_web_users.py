"""Managing accounts in the workbench (administrators only): the list, a new account whose
one-time password is shown once and leads to the password form, roles and name, disabling
(never the last administrator, never oneself), resets, a lost second factor, tokens; the same
through /api/v1; anyone else gets 403."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import act, make_app, make_settings
from safeeye.accounts import confirm_totp, enrol_totp
from safeeye.app import SafeEye
from safeeye.web.app import create_app
from webtools import INLINE_CODE, api_token, browser, csrf_of, sign_in, user

ONE_TIME = re.compile(r'<code class="secret">([a-z2-9]{5}(?:-[a-z2-9]{5}){3})</code>')
NEW_PASSWORD = "my very own passphrase now"


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("users") / "data"))
    user(app, "boss", "admin", name="Boss")
    yield app
    app.close()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    return create_app(safe)


def post(client: TestClient, path: str, **fields: object):  # type: ignore[no-untyped-def]
    return client.post(path, data={"csrf_token": csrf_of(client, "/account"), **fields})


def test_an_admin_makes_an_account_whose_one_time_password_leads_to_the_password_form(
    web: FastAPI,
) -> None:
    with browser(web, "boss") as admin:
        listing = admin.get("/users")
        assert listing.status_code == 200 and "<code>boss</code>" in listing.text
        made = post(
            admin,
            "/users",
            username="Han",
            display_name="한 상담사",
            roles=["counselor", "reviewer"],
            language="ko",
        )
        assert made.status_code == 201 and "shown only this once" in made.text
        password = ONE_TIME.search(made.text).group(1)  # type: ignore[union-attr]
        assert password not in admin.get("/users/han").text  # never shown again
        taken = post(admin, "/users", username="han", roles=["counselor"])
        assert taken.status_code == 409 and "already taken" in taken.text
        assert 'value="han"' in taken.text  # the form keeps what was typed
        nameless = post(admin, "/users", username="9lives", roles=["counselor"])
        assert nameless.status_code == 422 and "a letter first" in nameless.text
        roleless = post(admin, "/users", username="norole")
        assert roleless.status_code == 422 and "at least one role" in roleless.text
    with browser(web) as han:
        signed = sign_in(han, "han", password)
        assert signed.status_code == 303 and signed.headers["location"] == "/account/password"
        page = han.get("/account/password")
        assert (
            '<html lang="ko">' in page.text and "본인만 아는 새 비밀번호로 바꿔 주세요" in page.text
        )
        changed = han.post(
            "/account/password",
            data={
                "csrf_token": csrf_of(han, "/account/password"),
                "current_password": password,
                "new_password": NEW_PASSWORD,
                "new_password_again": NEW_PASSWORD,
            },
        )
        assert changed.status_code == 303 and changed.headers["location"] == "/"
        assert han.get("/api/v1/me").json()["roles"] == ["counselor", "reviewer"]


def test_nobody_but_an_admin_manages_accounts(web: FastAPI, safe: SafeEye) -> None:
    for role in ("counselor", "reviewer", "auditor"):
        user(safe, f"not-{role}", role)
        with browser(web, f"not-{role}") as client:
            assert client.get("/users").status_code == 403
            assert client.get("/users/boss").status_code == 403
            made = post(client, "/users", username="sneaky", roles=["admin"])
            assert made.status_code == 403
            assert post(client, "/users/boss/disable").status_code == 403
            assert post(client, "/users/boss/reset").status_code == 403
            assert client.get("/api/v1/users").status_code == 403
            body = {"username": "sneaky", "roles": ["admin"]}
            assert client.post("/api/v1/users", json=body, headers=_csrf(client)).status_code == 403
            assert 'href="/users"' not in client.get("/account").text  # not in the menu
    assert act(safe, _usernames).isdisjoint({"sneaky"})


def _usernames(work) -> set[str]:  # type: ignore[no-untyped-def]
    from safeeye.accounts import list_users

    return {account.username for account in list_users(work)}


def test_roles_name_disable_enable_reset_and_a_lost_second_factor(
    web: FastAPI, safe: SafeEye
) -> None:
    user(safe, "yoon", "counselor", name="Yoon")
    enrolment = safe.call(_as("yoon"), enrol_totp)
    safe.call(_as("yoon"), confirm_totp, pyotp.TOTP(enrolment.secret).now())
    with browser(web, "boss") as admin, browser(web) as yoon:
        code = pyotp.TOTP(enrolment.secret).at(_later())
        assert sign_in(yoon, "yoon", totp_code=code).status_code == 303
        detail = admin.get("/users/yoon")
        assert detail.status_code == 200 and "Turn the second factor off" in detail.text

        saved = post(admin, "/users/yoon", display_name="윤 검토", roles=["reviewer", "auditor"])
        assert saved.status_code == 303 and saved.headers["location"] == "/users/yoon?done=saved"
        assert yoon.get("/api/v1/me").json()["roles"] == ["auditor", "reviewer"]
        assert "윤 검토" in admin.get("/users").text

        assert post(admin, "/users/yoon/totp/disable").status_code == 303
        assert admin.get("/api/v1/users/yoon").json()["totp_enabled"] is False

        token = api_token(safe, "yoon")
        bearer = {"Authorization": f"Bearer {token}"}
        assert post(admin, "/users/yoon/disable").status_code == 303
        assert yoon.get("/account").status_code == 303  # signed out
        assert TestClient(web).get("/api/v1/me", headers=bearer).status_code == 401
        assert "No (disabled)" in admin.get("/users").text
        assert post(admin, "/users/yoon/enable").status_code == 303
        assert TestClient(web).get("/api/v1/me", headers=bearer).status_code == 200

        token_id = admin.get("/api/v1/users/yoon/tokens").json()[0]["id"]
        assert token[:12] in admin.get("/users/yoon").text
        assert post(admin, f"/users/yoon/tokens/{token_id}/revoke").status_code == 303
        assert TestClient(web).get("/api/v1/me", headers=bearer).status_code == 401

        reset = post(admin, "/users/yoon/reset")
        assert reset.status_code == 200 and "The password is reset" in reset.text
        password = ONE_TIME.search(reset.text).group(1)  # type: ignore[union-attr]
        with browser(web) as again:
            signed = sign_in(again, "yoon", password)
            assert signed.headers["location"] == "/account/password"


def test_the_last_administrator_cannot_be_disabled_and_nobody_disables_themselves(
    tmp_path: Path,
) -> None:
    safe = make_app(make_settings(tmp_path / "data"))
    try:
        web = create_app(safe)
        user(safe, "only", "admin")
        with browser(web, "only") as admin:
            refused = post(admin, "/users/only/disable")
            assert refused.status_code == 409
            assert "last administrator who can sign in" in refused.text
            demoted = post(admin, "/users/only", display_name="x", roles=["auditor"])
            assert demoted.status_code == 409 and "last administrator" in demoted.text
            assert admin.get("/api/v1/account").json()["roles"] == ["admin"]
            api = admin.post("/api/v1/users/only/disable", headers=_csrf(admin))
            assert api.status_code == 409 and api.json()["error"]["code"] == "last_admin"

            user(safe, "second", "admin")
            own = post(admin, "/users/only/disable")
            assert own.status_code == 409 and "your own account" in own.text
            own_reset = post(admin, "/users/only/reset")
            assert own_reset.status_code == 409
            assert post(admin, "/users/second/disable").status_code == 303
            assert admin.get("/users/only").status_code == 200
    finally:
        safe.close()


def test_the_users_api(web: FastAPI, safe: SafeEye) -> None:
    user(safe, "ops", "admin")
    bearer = {"Authorization": f"Bearer {api_token(safe, 'ops')}"}
    with TestClient(web, headers=bearer) as api:
        made = api.post(
            "/api/v1/users",
            json={"username": "api-made", "display_name": "API", "roles": ["auditor"]},
        )
        assert made.status_code == 201
        issued = made.json()
        assert issued["user"]["must_change_password"] and len(issued["one_time_password"]) == 23
        again = {"username": "api-made", "roles": ["auditor"]}
        assert api.post("/api/v1/users", json=again).status_code == 409
        for bad in (
            {"username": "x", "roles": ["auditor"]},
            {"username": "fine", "roles": []},
            {"username": "fine", "roles": ["system"]},
            {"username": "fine", "roles": ["auditor"], "password_hash": "x"},
            {"username": "Bad Name!", "roles": ["auditor"]},
        ):
            assert api.post("/api/v1/users", json=bad).status_code == 422, bad

        page = api.get("/api/v1/users", params={"limit": 2, "offset": 0}).json()
        assert len(page["users"]) == 2 and page["total"] >= 3
        assert api.get("/api/v1/users", params={"limit": 0}).status_code == 422
        assert api.get("/api/v1/users/api-made").json()["display_name"] == "API"
        assert api.get("/api/v1/users/nobody").status_code == 404
        assert api.get("/api/v1/users/a%00b").status_code == 422

        change = {"roles": ["reviewer"], "language": "en"}
        changed = api.patch("/api/v1/users/api-made", json=change)
        assert changed.status_code == 200 and changed.json()["roles"] == ["reviewer"]
        assert api.patch("/api/v1/users/ops", json={"roles": ["auditor"]}).status_code == 409
        assert api.post("/api/v1/users/ops/disable").status_code == 409
        assert api.post("/api/v1/users/ops/reset").status_code == 409
        assert api.post("/api/v1/users/ops/totp/disable").status_code == 403

        assert api.post("/api/v1/users/api-made/disable").json()["disabled"] is True
        assert api.post("/api/v1/users/api-made/enable").json()["disabled"] is False
        reset = api.post("/api/v1/users/api-made/reset").json()
        assert reset["one_time_password"] != issued["one_time_password"]
        assert api.post("/api/v1/users/api-made/totp/disable").status_code == 200
        assert api.get("/api/v1/users/api-made/tokens").json() == []
        theirs = api_token(safe, "api-made")
        token_id = api.get("/api/v1/users/api-made/tokens").json()[0]["id"]
        assert api.delete(f"/api/v1/users/ops/tokens/{token_id}").status_code == 404
        assert api.delete(f"/api/v1/users/api-made/tokens/{token_id}").status_code == 204
        refused = TestClient(web).get("/api/v1/me", headers={"Authorization": f"Bearer {theirs}"})
        assert refused.status_code == 401
        assert api.get("/api/v1/me").status_code == 200  # still an administrator


def test_the_list_pages_on_the_server(web: FastAPI, safe: SafeEye) -> None:
    for n in range(3):
        user(safe, f"page{n}", "auditor")
    with browser(web, "boss") as admin:
        first = admin.get("/users?limit=2").text
        assert first.count("<tr>") + first.count('<tr class="account-disabled">') == 3  # + head
        assert 'rel="next"' in first and 'rel="prev"' not in first
        second = admin.get("/users?limit=2&offset=2").text
        assert 'rel="prev"' in second and "<code>boss</code>" not in second
        assert admin.get("/users?offset=1000000").status_code == 200
        assert admin.get("/users?limit=501").status_code == 422


def test_the_users_pages_have_no_inline_script_or_style(web: FastAPI) -> None:
    with browser(web, "boss") as admin:
        pages = [
            admin.get("/users").text,
            admin.get("/users/boss").text,
            post(admin, "/users", username="plain", roles=["auditor"]).text,
            post(admin, "/users/plain/reset").text,
            post(admin, "/users/boss/disable").text,
        ]
    for page in pages:
        assert not INLINE_CODE.search(page)
        assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))


def _as(username: str):  # type: ignore[no-untyped-def]
    from safeeye.work import Actor, Role

    return Actor(f"user:{username}", frozenset({Role.COUNSELOR}))


def _later() -> float:
    import time

    return time.time() + 30


def _csrf(client: TestClient) -> dict[str, str]:
    return {"X-CSRF-Token": csrf_of(client, "/account")}
