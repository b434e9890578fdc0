"""The recipients pages and API: everyone with a role reads the directory; only an administrator
adds and edits (a refusal shows the form again with what to fix)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from conftest import make_app, make_settings
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent
from safeeye.web.app import create_app
from webtools import INLINE_CODE, api_token, browser, form_token, user

NEW = {
    "key": "example-abuse",
    "name": "Example <abuse> desk",
    "kind": "platform",
    "connector": "email",
    "address": "abuse@example.com",
    "languages": "ko, en",
    "deadline_hours": "48",
    "covers": "example.com\nexample.net",
    "jurisdiction": "KR",
    "escalates_to": "",
}


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SafeEye]:
    app = make_app(make_settings(tmp_path_factory.mktemp("recipients") / "data"))
    for name, role in (("adm", "admin"), ("cou", "counselor"), ("rev", "reviewer")):
        user(app, name, role)
    user(app, "aud", "auditor")
    yield app
    app.close()


@pytest.fixture(scope="module")
def web(safe: SafeEye) -> FastAPI:
    return create_app(safe)


def test_every_role_reads_the_directory(web: FastAPI) -> None:
    for name in ("adm", "cou", "rev", "aud"):
        with browser(web, name) as client:
            listed = client.get("/recipients")
            assert listed.status_code == 200
            assert 'href="/recipients/kcsc"' in listed.text  # a shipped entry
            detail = client.get("/recipients/kcsc")
            assert detail.status_code == 200 and "kcsc" in detail.text
            assert ('href="/recipients/new"' in listed.text) is (name == "adm")
    with browser(web, "cou") as client:
        assert client.get("/recipients/no-such-desk").status_code == 404
        paged = client.get("/recipients?limit=1").text
        assert (
            'rel="next"' in paged and len(re.findall(r'<tr(?: class="disabled")?>', paged)) == 2
        )  # and the head


def test_an_admin_adds_and_edits_a_recipient_and_a_counselor_cannot(
    web: FastAPI, safe: SafeEye
) -> None:
    with browser(web, "cou") as client:
        token = form_token(client.get("/").text)
        assert client.get("/recipients/new").status_code == 403
        refused = client.post("/recipients", data={**NEW, "csrf_token": token})
        assert refused.status_code == 403
        assert client.get("/recipients/kcsc/edit").status_code == 403
        assert client.post("/recipients/kcsc", data={**NEW, "csrf_token": token}).status_code == 403
    with browser(web, "adm") as client:
        form = client.get("/recipients/new")
        assert form.status_code == 200
        token = form_token(form.text)
        bad = client.post(
            "/recipients", data={**NEW, "address": "not an address", "csrf_token": token}
        )
        assert bad.status_code == 422 and 'role="alert"' in bad.text
        assert 'value="Example &lt;abuse&gt; desk"' in bad.text  # the form again, as typed
        added = client.post("/recipients", data={**NEW, "csrf_token": token})
        assert added.status_code == 303
        assert added.headers["location"].startswith("/recipients/example-abuse")
        page = client.get("/recipients/example-abuse").text
        assert "Example &lt;abuse&gt; desk" in page and "example.net" in page
        taken = client.post("/recipients", data={**NEW, "csrf_token": token})
        assert taken.status_code == 422 and "exists" in taken.text

        edit = client.get("/recipients/example-abuse/edit")
        assert edit.status_code == 200 and "example.com\nexample.net" in edit.text
        changed = {**NEW, "deadline_hours": "12", "enabled": "1", "csrf_token": token}
        saved = client.post("/recipients/example-abuse", data=changed)
        assert saved.status_code == 303
        assert "<dd>12</dd>" in client.get("/recipients/example-abuse").text
        off = {**NEW, "csrf_token": token}  # the box unticked: no longer in use
        assert client.post("/recipients/example-abuse", data=off).status_code == 303
        assert 'class="disabled"' in client.get("/recipients").text
    with safe.db.session(read_only=True) as session:
        query = select(AuditEvent.action).where(
            AuditEvent.actor == "user:adm", AuditEvent.action.startswith("recipient.")
        )
        actions = list(session.scalars(query.order_by(AuditEvent.id)))
    assert actions == ["recipient.add", "recipient.update", "recipient.update"]


def test_the_api_reads_adds_and_changes_recipients_by_role(web: FastAPI, safe: SafeEye) -> None:
    admin = {"Authorization": f"Bearer {api_token(safe, 'adm')}"}
    reviewer = {"Authorization": f"Bearer {api_token(safe, 'rev')}"}
    body = {
        "name": "API desk",
        "key": "api-desk",
        "kind": "hosting",
        "connector": "email",
        "address": "abuse@api.example",
        "covers": ["198.51.100.0/24"],
        "languages": ["en"],
    }
    with browser(web) as client:
        listed = client.get("/api/v1/recipients?limit=500", headers=reviewer).json()
        assert "kcsc" in [r["key"] for r in listed["recipients"]]
        one = client.get("/api/v1/recipients/kcsc", headers=reviewer).json()
        assert one["kind"] == "regulator"
        assert client.post("/api/v1/recipients", json=body, headers=reviewer).status_code == 403
        made = client.post("/api/v1/recipients", json=body, headers=admin)
        assert made.status_code == 201, made.text
        assert made.json()["networks"] == ["198.51.100.0/24"]
        assert client.post("/api/v1/recipients", json=body, headers=admin).status_code == 409
        nul = {**body, "key": "y", "name": "a\x00b"}
        assert client.post("/api/v1/recipients", json=nul, headers=admin).status_code == 422
        assert client.get("/api/v1/recipients/a%00b", headers=admin).status_code == 422
        wrong = {**body, "key": "x", "kind": "nonsense"}
        assert client.post("/api/v1/recipients", json=wrong, headers=admin).status_code == 422
        patch = {"deadline_hours": 6, "escalates_to": "kcsc"}
        path = "/api/v1/recipients/api-desk"
        assert client.patch(path, json=patch, headers=reviewer).status_code == 403
        changed = client.patch(path, json=patch, headers=admin).json()
        assert changed["deadline_hours"] == 6 and changed["escalates_to"] == "kcsc"
        missing = client.patch("/api/v1/recipients/nobody", json=patch, headers=admin)
        assert missing.status_code == 404


def test_the_recipient_pages_carry_no_inline_script_or_style(web: FastAPI) -> None:
    with browser(web, "adm") as client:
        for path in ("/recipients", "/recipients/kcsc", "/recipients/new", "/recipients/kcsc/edit"):
            page = client.get(path).text
            assert not INLINE_CODE.search(page), path
            assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
