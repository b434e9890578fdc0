"""The notices and batches pages and their API: lists with filters and paging, one notice's
story and text, recording an answer, drafting, approving a batch (sent by the runner through a
local SMTP server), refusals shown plainly, and roles."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from conftest import TESTER, act, make_app, make_settings
from local_smtp import Mailbox, smtp_server
from safeeye.accounts import create_user
from safeeye.app import SafeEye
from safeeye.cases.service import create_case
from safeeye.db.models import (
    AuditEvent,
    Batch,
    Case,
    Match,
    Media,
    Notice,
    RecipientAnswer,
    Sighting,
)
from safeeye.db.types import utcnow
from safeeye.takedown.recipients import add_recipient, update_recipient
from safeeye.tasks.runner import InProcessRunner
from safeeye.web.app import create_app
from webtools import INLINE_CODE, api_token, browser, form_token, sign_in, user

DESK = "abuse@leak.example"
#: The one-time password of an account that acts with no role until it chooses its own.
NO_ROLE: dict[str, str] = {}


def add_confirmed_match(app: SafeEye, code: str, urls: list[str], seed: str) -> int:
    """A confirmed match of case ``code``: one file seen at ``urls`` (rows written directly:
    the pipeline is not what these tests are about)."""
    digest = hashlib.sha256(seed.encode()).hexdigest()
    with app.db.session() as session:
        case_id = session.scalar(select(Case.id).where(Case.code == code))
        media = Media(
            sha256=digest, md5=digest[:32], size_bytes=1000, media_type="image", format="jpeg"
        )
        session.add(media)
        session.flush()
        for url in urls:
            session.add(
                Sighting(
                    media_id=media.id,
                    sha256=digest,
                    location=url,
                    location_key=hashlib.sha256(url.encode()).hexdigest(),
                    page_url=url,
                    server_ip="127.0.0.1",
                )
            )
        match = Match(
            media_id=media.id,
            case_id=case_id,
            kind="hash",
            distance=0.0,
            evidence_sealed=b"",
            status="confirmed",
        )
        session.add(match)
        session.commit()
        return match.id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SafeEye, Mailbox]]:
    """Case NT-1 with one file at two places of leak.example, whose abuse desk takes e-mail;
    the regulator's link is off (its endpoint is not set here)."""
    with smtp_server() as (mailbox, port):
        settings = make_settings(
            tmp_path_factory.mktemp("notices") / "data",
            smtp_port=port,
            evidence_screenshots=False,
            org_email="takedown@center.example",
        )
        app = make_app(settings)
        act(app, update_recipient, "kcsc", enabled=False)
        act(
            app,
            add_recipient,
            "Leak site abuse desk",
            key="leak-desk",
            kind="platform",
            connector="email",
            address=DESK,
            covers=("leak.example",),
            languages=("ko", "en"),
        )
        act(app, create_case, "NT-1")
        add_confirmed_match(
            app, "NT-1", ["https://leak.example/a.jpg", "https://leak.example/b.jpg"], "one"
        )
        for name, roles in {
            "rev": ("reviewer",),
            "cou": ("counselor",),
            "aud": ("auditor",),
            "adm": ("admin",),
        }.items():
            user(app, name, *roles)
        NO_ROLE["password"] = act(app, create_user, "nobody", ["counselor"]).password
        yield app, mailbox
        app.close()


@pytest.fixture(scope="module")
def web(world: tuple[SafeEye, Mailbox]) -> FastAPI:
    return create_app(world[0])


@pytest.fixture(scope="module")
def drafted(world: tuple[SafeEye, Mailbox], web: FastAPI) -> dict[str, int]:
    """The reviewer drafts notices from the notices page: one batch of two."""
    with browser(web, "rev") as client:
        page = client.get("/notices")
        assert page.status_code == 200
        assert "Draft notices for confirmed matches" in page.text
        answer = client.post("/notices/draft", data={"csrf_token": form_token(page.text)})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/batches?state=draft&drafted=2"
    with world[0].db.session(read_only=True) as session:
        notices = list(session.scalars(select(Notice).order_by(Notice.id)))
    assert len(notices) == 2 and notices[0].batch_id == notices[1].batch_id
    return {"batch": notices[0].batch_id, "notice": notices[0].id, "other": notices[1].id}


def test_the_notice_pages_open_for_readers_and_are_refused_to_others(
    web: FastAPI, drafted: dict[str, int]
) -> None:
    pages = [
        "/notices",
        f"/notices/{drafted['notice']}",
        "/batches",
        f"/batches/{drafted['batch']}",
    ]
    for name in ("rev", "cou", "aud", "adm"):
        with browser(web, name) as client:
            for path in pages:
                assert client.get(path).status_code == 200, (name, path)
    with browser(web) as client:
        assert sign_in(client, "nobody", NO_ROLE["password"]).status_code == 303
        for path in pages:  # refused, or sent to choose a password first
            assert client.get(path).status_code in (303, 403), path
            assert client.get(f"/api/v1{path}").status_code == 403, path
    with browser(web, "cou") as client:
        token = form_token(client.get("/notices").text)
        assert "Draft notices for confirmed matches" not in client.get("/notices").text
        assert client.post("/notices/draft", data={"csrf_token": token}).status_code == 403
        approve = f"/batches/{drafted['batch']}/approve"
        assert client.post(approve, data={"csrf_token": token}).status_code == 403
        answer = f"/notices/{drafted['notice']}/answers"
        assert client.post(answer, data={"csrf_token": token, "kind": "other"}).status_code == 403


def test_a_notice_page_shows_its_story_evidence_and_text_escaped(
    web: FastAPI, drafted: dict[str, int], world: tuple[SafeEye, Mailbox]
) -> None:
    with browser(web, "cou") as client:
        page = client.get(f"/notices/{drafted['notice']}").text
    assert "https://leak.example/a.jpg" in page
    assert "Leak site abuse desk" in page and "NT-1" in page
    assert re.search(r'class="digest">[0-9a-f]{64}<', page)  # the evidence package's digest
    assert "notice-text" in page and "<pre" in page  # the notice's text, as text
    assert "Record an answer" not in page  # a counselor reads; a reviewer records
    with browser(web, "rev") as client:
        assert "Record an answer" in client.get(f"/notices/{drafted['notice']}").text


def test_the_notices_list_filters_by_state_case_and_recipient_and_pages(
    web: FastAPI, drafted: dict[str, int]
) -> None:
    with browser(web, "aud") as client:
        both = client.get("/notices?state=draft&case=NT-1&recipient=leak-desk").text
        assert f'href="/notices/{drafted["notice"]}"' in both
        assert f'href="/notices/{drafted["other"]}"' in both
        none = client.get("/notices?state=removed").text
        assert f'href="/notices/{drafted["notice"]}"' not in none
        first = client.get("/notices?limit=1").text
        assert f'href="/notices/{drafted["other"]}"' in first  # newest first
        assert f'href="/notices/{drafted["notice"]}"' not in first
        assert 'rel="next"' in first and "offset=1" in first
        second = client.get("/notices?limit=1&offset=1").text
        assert f'href="/notices/{drafted["notice"]}"' in second
        assert client.get("/notices?case=NO-SUCH").status_code == 404
        assert client.get("/notices?state=nonsense").status_code == 422
        assert client.get("/notices?limit=0").status_code == 422


def test_recording_an_answer_writes_an_audit_event_and_a_refusal_needs_a_reason(
    web: FastAPI, drafted: dict[str, int], world: tuple[SafeEye, Mailbox]
) -> None:
    path = f"/notices/{drafted['other']}"
    with browser(web, "rev") as client:
        token = form_token(client.get(path).text)
        refused = client.post(f"{path}/answers", data={"csrf_token": token, "kind": "refused"})
        assert refused.status_code == 422
        assert "reason" in refused.text and 'role="alert"' in refused.text
        saved = client.post(
            f"{path}/answers",
            data={"csrf_token": token, "kind": "other", "reason": "asked for <the> case number"},
        )
        assert saved.status_code == 303 and saved.headers["location"].startswith(path)
        page = client.get(path).text
        assert "asked for &lt;the&gt; case number" in page
    with world[0].db.session(read_only=True) as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "notice.answered",
                AuditEvent.object_id == str(drafted["other"]),
            )
        ).one()
    assert event.actor == "user:rev" and event.details["kind"] == "other"


def test_a_request_for_more_information_is_its_own_answer_and_says_what_they_ask(
    web: FastAPI, drafted: dict[str, int], world: tuple[SafeEye, Mailbox]
) -> None:
    path = f"/notices/{drafted['other']}"
    with browser(web, "rev") as client:
        page = client.get(path).text
        assert 'value="more_info"' in page
        token = form_token(page)
        bare = client.post(f"{path}/answers", data={"csrf_token": token, "kind": "more_info"})
        assert bare.status_code == 422
        asked = client.post(
            f"{path}/answers",
            data={"csrf_token": token, "kind": "more_info", "reason": "proof of identity"},
        )
        assert asked.status_code == 303
        assert "They ask for more information" in client.get(path).text
    with world[0].db.session(read_only=True) as session:
        kinds = session.scalars(
            select(RecipientAnswer.kind).where(RecipientAnswer.notice_id == drafted["other"])
        ).all()
    assert "more_info" in kinds


def test_approving_a_batch_makes_it_ready_and_the_runner_sends_it(
    web: FastAPI, drafted: dict[str, int], world: tuple[SafeEye, Mailbox]
) -> None:
    app, mailbox = world
    path = f"/batches/{drafted['batch']}"
    with browser(web, "rev") as client:
        page = client.get(path).text
        assert "Approve and send" in page
        approved = client.post(f"{path}/approve", data={"csrf_token": form_token(page)})
        assert approved.status_code == 303
        assert "Approve and send" not in client.get(path).text
    with app.db.session(read_only=True) as session:
        assert session.get(Batch, drafted["batch"]).status == "approved"  # type: ignore[union-attr]
    assert not mailbox.envelopes  # nothing is sent inside the request
    runner = InProcessRunner(app, TESTER)
    try:
        runner.submit("dispatch_batch", drafted["batch"])
        runner.drain()
    finally:
        runner.close()
    with app.db.session(read_only=True) as session:
        assert session.get(Batch, drafted["batch"]).status == "sent"  # type: ignore[union-attr]
    assert len(mailbox.envelopes) == 2 and all(DESK in e.rcpt_tos for e in mailbox.envelopes)
    with browser(web, "rev") as client:
        page = client.get(path)
        assert "Approve and send" not in page.text
        again = client.post(f"{path}/approve", data={"csrf_token": form_token(page.text)})
        assert again.status_code == 409 and 'role="alert"' in again.text  # shown plainly
        sent = client.get("/batches?state=sent").text
        assert '<a href="/batches?state=sent">Sent</a></dt><dd>1</dd>' in sent
        assert f'href="/batches/{drafted["batch"]}"' in sent


def test_overdue_notices_are_marked_on_the_list(
    web: FastAPI, drafted: dict[str, int], world: tuple[SafeEye, Mailbox]
) -> None:
    app = world[0]
    with app.db.session() as session:
        notice = session.get(Notice, drafted["notice"])
        assert notice is not None
        if notice.status != "sent":
            pytest.skip("the batch was not sent")
        notice.deadline_at = utcnow() - timedelta(hours=1)
        session.commit()
    with browser(web, "cou") as client:
        page = client.get("/notices?overdue=1").text
        assert 'class="overdue"' in page and f'href="/notices/{drafted["notice"]}"' in page
        detail = client.get(f"/notices/{drafted['notice']}").text
        assert "hours past" in detail


def test_the_api_lists_reads_answers_and_approves_with_a_bearer_token(
    web: FastAPI, world: tuple[SafeEye, Mailbox], drafted: dict[str, int]
) -> None:
    app = world[0]
    add_confirmed_match(app, "NT-1", ["https://leak.example/c.jpg"], "two")
    reviewer = {"Authorization": f"Bearer {api_token(app, 'rev')}"}
    counselor = {"Authorization": f"Bearer {api_token(app, 'cou')}"}
    with browser(web) as client:
        made = client.post("/api/v1/notices/draft", json={"evidence": False}, headers=reviewer)
        assert made.status_code == 200, made.text
        assert len(made.json()["notices"]) == 1 and len(made.json()["batches"]) == 1
        new_batch = made.json()["batches"][0]
        assert client.post("/api/v1/notices/draft", json={}, headers=counselor).status_code == 403

        listed = client.get("/api/v1/notices?case=NT-1&limit=2", headers=counselor).json()
        assert len(listed["notices"]) == 2 and listed["has_more"] is True
        one = client.get(f"/api/v1/notices/{drafted['notice']}", headers=counselor).json()
        assert one["notice"]["url"] == "https://leak.example/a.jpg"
        assert one["evidence_sha256"] and one["body"]
        assert client.get("/api/v1/notices/999999", headers=counselor).status_code == 404
        assert client.get("/api/v1/notices?state=bogus", headers=counselor).status_code == 422
        for bad in ("case=%00", "recipient=a%00b", "limit=501", "batch=99999999999999999999"):
            assert client.get(f"/api/v1/notices?{bad}", headers=counselor).status_code == 422

        answer = {"kind": "acknowledged"}
        path = f"/api/v1/notices/{drafted['notice']}/answers"
        assert client.post(path, json=answer, headers=counselor).status_code == 403
        assert client.post(path, json=answer, headers=reviewer).json() == {
            "notice": drafted["notice"],
            "answer": "acknowledged",
        }
        assert client.post(path, json={"kind": "maybe"}, headers=reviewer).status_code == 422
        nul = {"kind": "other", "reason": "a\x00b"}
        assert client.post(path, json=nul, headers=reviewer).status_code == 422

        batches = client.get("/api/v1/batches?state=draft", headers=counselor).json()
        assert [b["id"] for b in batches["batches"]] == [new_batch]
        detail = client.get(f"/api/v1/batches/{new_batch}", headers=counselor).json()
        assert detail["batch"]["notices"] == 1 and detail["by_state"] == {"draft": 1}
        approve = f"/api/v1/batches/{new_batch}/approve"
        assert client.post(approve, headers=counselor).status_code == 403
        approved = client.post(approve, headers=reviewer)
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        assert client.post("/api/v1/batches/999999/approve", headers=reviewer).status_code == 404


class Recorder:
    """A runner that only notes what it is handed."""

    def __init__(self) -> None:
        self.submitted: list[tuple[str, int]] = []

    def submit(self, task: str, row_id: int) -> None:
        self.submitted.append((task, row_id))


def test_an_approved_batch_goes_to_the_applications_runner_when_it_has_one(
    world: tuple[SafeEye, Mailbox],
) -> None:
    app = world[0]
    add_confirmed_match(app, "NT-1", ["https://leak.example/d.jpg"], "three")
    web = create_app(app)
    web.state.runner = runner = Recorder()
    with browser(web, "rev") as client:
        page = client.get("/notices")
        assert (
            client.post("/notices/draft", data={"csrf_token": form_token(page.text)}).status_code
            == 303
        )
        with app.db.session(read_only=True) as session:
            newest = select(Batch.id).where(Batch.status == "draft").order_by(Batch.id.desc())
            batch = session.scalars(newest).first()
        approve = client.post(
            f"/batches/{batch}/approve", data={"csrf_token": form_token(page.text)}
        )
        assert approve.status_code == 303
    assert runner.submitted == [("dispatch_batch", batch)]


def test_the_notice_pages_carry_no_inline_script_or_style(
    web: FastAPI, drafted: dict[str, int], tmp_path: Path
) -> None:
    with browser(web, "adm") as client:
        for path in (
            "/notices",
            f"/notices/{drafted['notice']}",
            "/batches",
            f"/batches/{drafted['batch']}",
        ):
            page = client.get(path).text
            assert not INLINE_CODE.search(page), path
            assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", page))
