"""Who may use which route, as one table: every route of the workbench (pages and API) is in
``ROUTES`` with the roles that may use it, and each is asked by every role and by nobody.

An allowed role may get any answer but 401, 403 or a server error (the objects named do not
exist, so nothing changes); any other role gets 403, before its request is even read; nobody
signed in gets 401 from the API and the sign-in page (or a refusal) from a page. A route added
without a row here fails the first test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from conftest import make_app, make_settings
from safeeye.app import SafeEye
from safeeye.web.app import create_app
from webtools import ROLES, api_token, operations, user

A, C, R, U = "admin", "counselor", "reviewer", "auditor"
EVERYONE = frozenset(ROLES)
READERS = frozenset({A, C, R, U})
PUBLIC = "public"

#: (method, path) -> the roles that may use it, or PUBLIC (no account needed).
ROUTES: dict[tuple[str, str], frozenset[str] | str] = {
    # the dashboard and one's own account
    ("GET", "/"): EVERYONE,
    ("GET", "/api/v1/me"): EVERYONE,
    ("GET", "/api/v1/dashboard"): READERS,
    ("GET", "/account"): EVERYONE,
    ("GET", "/account/password"): EVERYONE,
    ("GET", "/account/totp"): EVERYONE,
    ("POST", "/account/password"): EVERYONE,
    ("POST", "/account/preferences"): EVERYONE,
    ("POST", "/account/sessions/{session_id}/revoke"): EVERYONE,
    ("POST", "/account/tokens"): EVERYONE,
    ("POST", "/account/tokens/{token_id}/revoke"): EVERYONE,
    ("POST", "/account/totp"): EVERYONE,
    ("POST", "/account/totp/disable"): EVERYONE,
    ("POST", "/account/totp/enrol"): EVERYONE,
    ("GET", "/api/v1/account"): EVERYONE,
    ("PATCH", "/api/v1/account"): EVERYONE,
    ("POST", "/api/v1/account/password"): EVERYONE,
    ("GET", "/api/v1/account/sessions"): EVERYONE,
    ("DELETE", "/api/v1/account/sessions/{session_id}"): EVERYONE,
    ("GET", "/api/v1/account/tokens"): EVERYONE,
    ("POST", "/api/v1/account/tokens"): EVERYONE,
    ("DELETE", "/api/v1/account/tokens/{token_id}"): EVERYONE,
    ("POST", "/api/v1/account/totp"): EVERYONE,
    ("POST", "/api/v1/account/totp/disable"): EVERYONE,
    ("POST", "/api/v1/account/totp/enrol"): EVERYONE,
    # cases
    ("GET", "/cases"): READERS,
    ("GET", "/cases/{code}"): READERS,
    ("POST", "/cases"): frozenset({C}),
    ("POST", "/cases/{code}/consent"): frozenset({C}),
    ("POST", "/cases/{code}/consent/withdraw"): frozenset({C}),
    ("POST", "/cases/{code}/minor"): frozenset({C}),
    ("POST", "/cases/{code}/faces"): frozenset({C}),
    ("POST", "/cases/{code}/known"): frozenset({C}),
    ("POST", "/cases/{code}/allowlist"): frozenset({C}),
    ("POST", "/cases/{code}/allowlist/{place_id}/remove"): frozenset({C}),
    ("GET", "/cases/{code}/purge"): frozenset({C}),
    ("POST", "/cases/{code}/purge"): frozenset({C}),
    ("GET", "/api/v1/cases"): READERS,
    ("GET", "/api/v1/cases/{code}"): READERS,
    ("POST", "/api/v1/cases"): frozenset({C}),
    ("POST", "/api/v1/cases/{code}/consent"): frozenset({C}),
    ("POST", "/api/v1/cases/{code}/consent/withdraw"): frozenset({C}),
    ("POST", "/api/v1/cases/{code}/minor"): frozenset({C}),
    ("POST", "/api/v1/cases/{code}/faces"): frozenset({C}),
    ("POST", "/api/v1/cases/{code}/known"): frozenset({C}),
    ("POST", "/api/v1/cases/{code}/purge"): frozenset({C}),
    ("GET", "/api/v1/cases/{code}/allowlist"): frozenset({C, R}),
    ("POST", "/api/v1/cases/{code}/allowlist"): frozenset({C}),
    ("DELETE", "/api/v1/cases/{code}/allowlist/{place_id}"): frozenset({C}),
    # the SOS intake (counselors)
    ("GET", "/intake"): frozenset({C}),
    ("POST", "/intake/{case_code}/accept"): frozenset({C}),
    ("GET", "/api/v1/intake"): frozenset({C}),
    ("POST", "/api/v1/intake/{case_code}/accept"): frozenset({C}),
    ("POST", "/intake/{case_code}/contact-handled"): frozenset({C}),
    ("POST", "/api/v1/intake/{case_code}/contact-handled"): frozenset({C}),
    # sources
    ("GET", "/sources"): READERS,
    ("POST", "/sources"): frozenset({C}),
    ("POST", "/sources/{source_id}/pause"): frozenset({C}),
    ("POST", "/sources/{source_id}/resume"): frozenset({C}),
    ("POST", "/sources/{source_id}/visit"): frozenset({C}),
    ("GET", "/api/v1/sources"): READERS,
    ("POST", "/api/v1/sources"): frozenset({C}),
    ("POST", "/api/v1/sources/{source_id}/pause"): frozenset({C}),
    ("POST", "/api/v1/sources/{source_id}/resume"): frozenset({C}),
    ("POST", "/api/v1/sources/{source_id}/visit"): frozenset({C}),
    # review
    ("GET", "/review"): frozenset({R}),
    ("POST", "/review/decisions"): frozenset({R}),
    ("GET", "/review/{match_id}"): frozenset({R}),
    ("POST", "/review/{match_id}/decision"): frozenset({R}),
    ("GET", "/review/{match_id}/preview.jpg"): frozenset({R}),
    ("GET", "/review/{match_id}/faces/{side}.jpg"): frozenset({R}),
    ("GET", "/review/{match_id}/frames/{number}.jpg"): frozenset({R}),
    ("GET", "/api/v1/review/queue"): frozenset({R}),
    ("GET", "/api/v1/review/reveals"): frozenset({R}),
    ("GET", "/api/v1/matches/{match_id}"): frozenset({R}),
    ("GET", "/api/v1/matches/{match_id}/preview"): frozenset({R}),
    ("GET", "/api/v1/matches/{match_id}/faces/{side}"): frozenset({R}),
    ("GET", "/api/v1/matches/{match_id}/frames/{number}"): frozenset({R}),
    ("POST", "/api/v1/matches/decisions"): frozenset({R}),
    # notices and batches
    ("GET", "/notices"): READERS,
    ("GET", "/notices/{notice_id}"): READERS,
    ("POST", "/notices/draft"): frozenset({R}),
    ("POST", "/notices/{notice_id}/answers"): frozenset({R}),
    ("GET", "/batches"): READERS,
    ("GET", "/batches/{batch_id}"): READERS,
    ("POST", "/batches/{batch_id}/approve"): frozenset({R}),
    ("GET", "/api/v1/notices"): READERS,
    ("GET", "/api/v1/notices/{notice_id}"): READERS,
    ("POST", "/api/v1/notices/draft"): frozenset({R}),
    ("POST", "/api/v1/notices/{notice_id}/answers"): frozenset({R}),
    ("GET", "/api/v1/batches"): READERS,
    ("GET", "/api/v1/batches/{batch_id}"): READERS,
    ("POST", "/api/v1/batches/{batch_id}/approve"): frozenset({R}),
    # recipients (administrators edit)
    ("GET", "/recipients"): READERS,
    ("GET", "/recipients/{key}"): READERS,
    ("GET", "/recipients/new"): frozenset({A}),
    ("GET", "/recipients/{key}/edit"): frozenset({A}),
    ("POST", "/recipients"): frozenset({A}),
    ("POST", "/recipients/{key}"): frozenset({A}),
    ("GET", "/api/v1/recipients"): READERS,
    ("GET", "/api/v1/recipients/{key}"): READERS,
    ("POST", "/api/v1/recipients"): frozenset({A}),
    ("PATCH", "/api/v1/recipients/{key}"): frozenset({A}),
    # the audit log
    ("GET", "/audit"): frozenset({U}),
    ("POST", "/audit/verify"): frozenset({U}),
    ("GET", "/api/v1/audit/events"): frozenset({U}),
    ("POST", "/api/v1/audit/verify"): frozenset({U}),
    # accounts (administrators)
    ("GET", "/users"): frozenset({A}),
    ("POST", "/users"): frozenset({A}),
    ("GET", "/users/{username}"): frozenset({A}),
    ("POST", "/users/{username}"): frozenset({A}),
    ("POST", "/users/{username}/disable"): frozenset({A}),
    ("POST", "/users/{username}/enable"): frozenset({A}),
    ("POST", "/users/{username}/reset"): frozenset({A}),
    ("POST", "/users/{username}/totp/disable"): frozenset({A}),
    ("POST", "/users/{username}/tokens/{token_id}/revoke"): frozenset({A}),
    ("GET", "/api/v1/users"): frozenset({A}),
    ("POST", "/api/v1/users"): frozenset({A}),
    ("GET", "/api/v1/users/{username}"): frozenset({A}),
    ("PATCH", "/api/v1/users/{username}"): frozenset({A}),
    ("POST", "/api/v1/users/{username}/disable"): frozenset({A}),
    ("POST", "/api/v1/users/{username}/enable"): frozenset({A}),
    ("POST", "/api/v1/users/{username}/reset"): frozenset({A}),
    ("POST", "/api/v1/users/{username}/totp/disable"): frozenset({A}),
    ("GET", "/api/v1/users/{username}/tokens"): frozenset({A}),
    ("DELETE", "/api/v1/users/{username}/tokens/{token_id}"): frozenset({A}),
    # without an account: the victim's side, signing in, the machine-readable parts
    ("GET", "/sos"): PUBLIC,
    ("POST", "/sos"): PUBLIC,
    ("GET", "/status"): PUBLIC,
    ("POST", "/status"): PUBLIC,
    ("POST", "/status/contact"): PUBLIC,
    ("POST", "/status/withdraw"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/api/v1/openapi.json"): PUBLIC,
}

#: A value for each path parameter that names nothing that exists.
MISSING = {"code": "NO-SUCH-CASE", "case_code": "NO-SUCH-CASE", "username": "nosuchuser",
           "key": "no-such-recipient", "side": "found", "number": "0"}  # fmt: skip
ABSENT_ID = "2147483000"
PARAMETER = re.compile(r"\{(\w+)\}")


def concrete(path: str) -> str:
    return PARAMETER.sub(lambda m: MISSING.get(m.group(1), ABSENT_ID), path)


def allowed_roles(rule: frozenset[str] | str) -> frozenset[str]:
    """An administrator may everything the others may."""
    return frozenset(ROLES) if rule == PUBLIC else rule | {A}  # type: ignore[operator]


def public_answer(answer: Any) -> bool:
    """A public route answers for itself: no server error, never the sign-in page (its own
    refusals, such as an unknown tracking code or a missing CSRF token, are its business)."""
    location = answer.headers.get("location", "")
    return answer.status_code < 500 and not location.startswith("/login")


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("roles") / "data"))
    yield app
    app.close()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    return create_app(safe)


@pytest.fixture(scope="module")
def tokens(safe: SafeEye) -> dict[str, str]:
    """A bearer token per role (a token reaches pages too, without a CSRF token)."""
    made = {}
    for role in ROLES:
        user(safe, f"only-{role}", role)
        made[role] = api_token(safe, f"only-{role}")
    return made


def test_every_route_is_in_the_table(web: FastAPI) -> None:
    served = set(operations(web))
    assert served - set(ROUTES) == set(), "routes without a row in ROUTES"
    assert set(ROUTES) - served == set(), "rows in ROUTES for routes that do not exist"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_gets_exactly_the_routes_of_the_table(
    web: FastAPI, tokens: dict[str, str], role: str
) -> None:
    wrong = []
    with TestClient(web, follow_redirects=False) as client:
        for (method, path), rule in ROUTES.items():
            if path == "/logout":
                continue  # would end nothing (a token is no session); see test_web_skeleton
            answer = client.request(
                method, concrete(path), headers={"Authorization": f"Bearer {tokens[role]}"}
            )
            if rule == PUBLIC:
                if not public_answer(answer):
                    wrong.append(f"{method} {path}: {answer.status_code}, a public route")
            elif role in allowed_roles(rule):
                if answer.status_code in (401, 403) or answer.status_code >= 500:
                    wrong.append(f"{method} {path}: {answer.status_code}, should be allowed")
            elif answer.status_code != 403:
                wrong.append(f"{method} {path}: {answer.status_code}, should be 403")
    assert not wrong, "\n".join(wrong)


def test_nobody_signed_in_is_turned_away_from_every_route_but_the_public_ones(
    web: FastAPI,
) -> None:
    wrong = []
    with TestClient(web, follow_redirects=False) as client:
        for (method, path), rule in ROUTES.items():
            answer = client.request(method, concrete(path))
            status = answer.status_code
            if rule == PUBLIC:
                ok = public_answer(answer)
            elif path.startswith("/api/"):
                ok = status == 401
            elif method == "GET":
                ok = status == 303 and answer.headers["location"].startswith("/login")
            else:  # a form posted by nobody: refused before anything is read
                ok = status in (401, 403)
            if not ok:
                wrong.append(f"{method} {path}: {status}")
    assert not wrong, "\n".join(wrong)
