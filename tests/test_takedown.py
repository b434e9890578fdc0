"""The takedown flow end to end, against real local parts: a test site the monitor scans, the
regulator's HTTPS system link (signed, schema-checked), an SMTP server for the hosting network's
abuse desk. A confirmed match becomes notices, an officer's approval sends them, rechecks see
the file go (or stay, and then reminders and escalation follow), and a re-upload elsewhere is
reported again citing the first notice."""

from __future__ import annotations

import csv
import email.policy
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import FACES, TESTER, act, make_app, make_settings
from hostile_server import HostileServer, status
from local_https import ServerTLS, make_tls
from local_smtp import Mailbox, smtp_server
from regulator_receiver import RegulatorReceiver
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.db.models import Match, MediaFrame, Notice, Recheck, Sighting
from safeeye.db.types import utcnow
from safeeye.ingest.monitor import Monitor
from safeeye.ingest.service import add_source
from safeeye.pipeline.detectors import Detectors
from safeeye.review.decisions import confirm
from safeeye.takedown.connectors.api import published_key
from safeeye.takedown.dispatch import approve_batch, list_batches
from safeeye.takedown.drafting import draft_notices
from safeeye.takedown.follow_up import overdue_notices, unreported_matches
from safeeye.takedown.recipients import add_recipient, update_recipient
from safeeye.tasks.runner import InProcessRunner
from safeeye.tasks.scheduler import follow_up_in_process
from stopncii_endpoint import StopNCIIEndpoint

FACE = FACES / "obama2.jpg"
PAGE = '<html{lang}><head><title>gallery</title></head><body><img src="{src}"></body></html>'
HOST_DESK = "abuse@host.example"
UPSTREAM_DESK = "abuse@upstream.example"


@dataclass
class World:
    app: SafeEye
    site: HostileServer
    receiver: RegulatorReceiver
    mailbox: Mailbox
    tls: ServerTLS


def _settings(data: Path, site: HostileServer, tls: ServerTLS, smtp_port: int, **extra: Any) -> Any:
    return make_settings(
        data,
        fetch_allowlist=("127.0.0.1",),
        fetch_host_interval=0.0,
        evidence_screenshots=False,  # test_evidence takes the screenshots
        connector_ca_bundle=tls.ca_file,
        smtp_port=smtp_port,
        org_email="takedown@center.example",
        rdap_bootstrap_url=site.url("/no-rdap/"),
        **extra,
    )


def _serve(site: HostileServer, page: str, image: str, lang: str | None = None) -> None:
    html = PAGE.format(src=image, lang=f' lang="{lang}"' if lang else "")
    site.add(page, html.encode(), content_type="text/html; charset=utf-8")
    site.add(image, FACE.read_bytes(), content_type="image/jpeg")


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path, detectors: Detectors) -> Iterator[World]:
    """Case TD-1 registered with one face; a gallery page showing another photo of him; the
    directory with the regulator's link at the local receiver and the local network's abuse
    desk (Japanese first), which escalates to its upstream's desk. On SQLite, or on the
    database a test names (``indirect`` parameter)."""
    database = getattr(request, "param", "sqlite")
    url = request.getfixturevalue("postgres_schema") if database == "postgres" else None
    tls = make_tls(tmp_path / "tls")
    with HostileServer() as site, smtp_server() as (mailbox, port):
        _serve(site, "/gallery/one.html", "/img/a.jpg")
        settings = _settings(tmp_path / "data", site, tls, port, database_url=url)
        app = make_app(settings, detectors)
        with RegulatorReceiver(published_key(app).public_key, tls) as receiver:
            act(app, update_recipient, "kcsc", address=receiver.url)
            act(
                app,
                add_recipient,
                "Upstream transit abuse desk",
                key="upstream",
                kind="hosting",
                connector="email",
                address=UPSTREAM_DESK,
            )
            _local_host(app, languages=("ja", "en"), escalates_to="upstream")
            act(app, create_case, "TD-1")
            act(app, add_faces, "TD-1", [FACES / "obama.jpg"])
            _scan(app, site.url("/gallery/one.html"))
            yield World(app, site, receiver, mailbox, tls)
        app.close()


def _local_host(app: SafeEye, **extra: Any) -> None:
    """The abuse desk of the network the test site runs on (127.0.0.0/8), by e-mail."""
    act(
        app,
        add_recipient,
        "Local hosting network",
        key="local-host",
        kind="hosting",
        connector="email",
        address=HOST_DESK,
        covers=("127.0.0.0/8",),
        **extra,
    )


def _scan(app: SafeEye, page_url: str) -> None:
    act(app, add_source, "url", page_url)
    monitor = Monitor(app)
    try:
        reports = monitor.run_once()
    finally:
        monitor.close()
    assert all(r.status == "done" for r in reports), [r.errors for r in reports]


def _matches(app: SafeEye) -> list[int]:
    with app.db.session(read_only=True) as session:
        return list(session.execute(select(Match.id).order_by(Match.id)).scalars())


def _notices(app: SafeEye) -> list[Notice]:
    with app.db.session(read_only=True) as session:
        return list(session.execute(select(Notice).order_by(Notice.id)).scalars())


def _run(app: SafeEye, task: str, ids: list[int]) -> dict[tuple[str, int], Any]:
    runner = InProcessRunner(app, TESTER)
    try:
        for row_id in ids:
            runner.submit(task, row_id)
        return runner.drain()
    finally:
        runner.close()


def _send_all(app: SafeEye) -> None:
    for batch in act(app, list_batches, "draft"):
        act(app, approve_batch, batch.id)
    _run(app, "dispatch_batch", [b.id for b in act(app, list_batches, "approved")])


def _recheck_now(app: SafeEye, **shift: timedelta) -> dict[tuple[str, int], Any]:
    """Make every open notice due (moving its times back by ``shift``), then recheck them."""
    with app.db.session() as session:
        now = utcnow()
        due = []
        for notice in session.execute(select(Notice).where(Notice.next_check_at.is_not(None))):
            row = notice[0]
            row.next_check_at = now - timedelta(seconds=1)
            for column, by in shift.items():
                setattr(row, column, getattr(row, column) - by)
            due.append(row.id)
        session.commit()
    return _run(app, "recheck_notice", due)


def _messages(mailbox: Mailbox) -> list[EmailMessage]:
    return [
        message_from_bytes(e.original_content, policy=email.policy.default)  # type: ignore[misc]
        for e in mailbox.envelopes
    ]


def _text_parts(message: EmailMessage) -> list[tuple[str | None, str]]:
    return [
        (part.get("Content-Language"), part.get_content())
        for part in message.walk()
        if part.get_content_type() == "text/plain"
    ]


@pytest.mark.parametrize("world", ["sqlite", "postgres"], indirect=True)
def test_a_confirmed_match_goes_out_signed_to_the_regulator_and_by_mail_in_the_desks_language(
    world: World,
) -> None:
    app, receiver, mailbox = world.app, world.receiver, world.mailbox
    (match_id,) = _matches(app)
    act(app, confirm, [match_id], category="synthetic")

    report = act(app, draft_notices, case="TD-1")
    assert sorted(n.recipient for n in report.notices) == ["kcsc", "local-host"]
    assert {n.status for n in report.notices} == {"draft"}  # an officer approves new matches
    assert receiver.requests == [] and mailbox.envelopes == []
    assert act(app, draft_notices, case="TD-1").notices == []  # drafted once

    _send_all(app)

    # The regulator's link: one signed request that the receiver checked against the schema.
    (request,) = receiver.accepted
    assert request.payload is not None
    (item,) = request.payload["items"]
    image_url = world.site.url("/img/a.jpg")
    kcsc = next(n for n in _notices(app) if n.language == "ko")
    assert item["ref"] == kcsc.idempotency_key and image_url in json.dumps(item)
    assert request.answer is not None and request.answer["items"][0]["status"] == "accepted"

    # The hosting network's desk: one e-mail in Japanese with the English attached.
    (message,) = _messages(mailbox)
    assert message["To"] == HOST_DESK and message["From"].addresses[0].addr_spec.startswith(
        "takedown@"
    )
    parts = _text_parts(message)
    languages = [language for language, _ in parts]
    assert languages[:1] == ["ja"] and "en" in languages
    japanese, english = parts[0][1], dict(parts)["en"]
    with app.db.session(read_only=True) as session:
        sighting = session.execute(select(Sighting)).scalar_one()
        sha256 = sighting.sha256
    for text in (japanese, english):
        assert image_url in text and world.site.url("/gallery/one.html") in text
        assert sha256 in text
        assert "[DSA 16(2)(a)]" in text or "[AUP breach]" in text  # a legal basis by marker
        assert "takedown@center.example" in text  # the contact
    assert "good faith" in english.lower()
    assert "obama" not in (japanese + english).lower()  # no name: the desk's form needs none

    sent = _notices(app)
    assert {n.status for n in sent} == {"sent"}
    assert all(n.deadline_at is not None and n.sent_at is not None for n in sent)
    assert {round((n.deadline_at - n.sent_at).total_seconds() / 3600) for n in sent} == {24}

    # Sending again sends nothing: every batch went out.
    _run(app, "dispatch_batch", [b.id for b in act(app, list_batches)])
    assert len(receiver.requests) == 1 and len(mailbox.envelopes) == 1


REMOVALS = {
    "file_gone": ("removed", lambda site: site.route("/img/a.jpg", status(404))),
    "other_content": (
        "changed",
        lambda site: site.add(
            "/img/a.jpg", (FACES / "obama3.jpg").read_bytes(), content_type="image/jpeg"
        ),
    ),
    "page_no_longer_shows_it": (
        "unlinked",
        lambda site: site.add(
            "/gallery/one.html",
            PAGE.format(src="/img/other.jpg", lang="").encode(),
            content_type="text/html",
        ),
    ),
}


@pytest.mark.parametrize("how", list(REMOVALS))
def test_rechecks_verify_the_removal_with_its_time(world: World, how: str) -> None:
    app = world.app
    act(app, confirm, _matches(app))
    act(app, draft_notices, case="TD-1")
    _send_all(app)

    first = _recheck_now(app)
    assert {r.result for r in first.values()} == {"present"}
    assert {n.status for n in _notices(app)} == {"sent"}

    result, take_down = REMOVALS[how]
    take_down(world.site)
    _recheck_now(app)
    notices = _notices(app)
    assert {n.status for n in notices} == {"removed"}
    assert all(n.removed_at is not None and n.removed_at >= n.sent_at for n in notices)
    with app.db.session(read_only=True) as session:
        results = list(session.execute(select(Recheck.result).order_by(Recheck.id)).scalars())
    assert results.count("present") == 2 and result in results  # each check kept
    assert _recheck_now(app) == {}  # a removed notice is not checked again


def test_a_notice_left_unanswered_is_resent_then_escalated_past_its_deadline(
    world: World,
) -> None:
    app, mailbox = world.app, world.mailbox
    act(app, confirm, _matches(app))
    act(app, draft_notices, case="TD-1")
    _send_all(app)
    (desk,) = [n for n in _notices(app) if n.language == "ja"]

    # A day later the file is still up and the desk said nothing: a reminder.
    outcome = _recheck_now(app, sent_at=timedelta(hours=25))
    assert outcome[("recheck_notice", desk.id)].action == "resent"
    reminder = _messages(mailbox)[-1]
    assert len(mailbox.envelopes) == 2 and reminder["To"] == HOST_DESK
    assert reminder["In-Reply-To"] == _messages(mailbox)[0]["Message-ID"]

    # Past its deadline: the next rung of the ladder gets a notice citing this one.
    outcome = _recheck_now(app, deadline_at=timedelta(hours=25))
    step = outcome[("recheck_notice", desk.id)]
    assert step.action == "escalated" and step.new_notice_id is not None
    notices = {n.id: n for n in _notices(app)}
    assert notices[desk.id].status == "escalated"
    upstream = notices[step.new_notice_id]
    assert upstream.escalated_from_id == desk.id and upstream.escalation_level == 1
    assert upstream.status == "sent"  # escalation goes out by itself
    last = _messages(mailbox)[-1]
    assert last["To"] == UPSTREAM_DESK
    body = _text_parts(last)[0][1]
    assert desk.idempotency_key in body  # it cites the notice that was not acted on
    overdue = act(app, overdue_notices)
    assert desk.id in {n.id for n in overdue}


def test_a_reupload_under_another_url_gets_a_new_notice_citing_the_first(
    tmp_path: Path, detectors: Detectors
) -> None:
    tls = make_tls(tmp_path / "tls")
    with HostileServer() as site, smtp_server() as (_, port):
        _serve(site, "/gallery/one.html", "/img/a.jpg")
        settings = _settings(tmp_path / "data", site, tls, port, auto_send_reuploads=True)
        app = make_app(settings, detectors)
        with RegulatorReceiver(published_key(app).public_key, tls) as receiver:
            act(app, update_recipient, "kcsc", address=receiver.url)
            act(app, create_case, "TD-2")
            act(app, add_faces, "TD-2", [FACES / "obama.jpg"])
            _scan(app, site.url("/gallery/one.html"))
            act(app, confirm, _matches(app), category="synthetic")
            act(app, draft_notices, case="TD-2")
            _send_all(app)
            (first,) = _notices(app)
            assert len(receiver.accepted) == 1

            site.route("/img/a.jpg", status(404))
            _serve(site, "/board/two.html", "/media/copy.jpg")  # the same file, elsewhere
            _scan(app, site.url("/board/two.html"))
            with app.db.session(read_only=True) as session:
                assert unreported_matches(session) == _matches(app)
            stop = threading.Event()  # the follow-up `safeeye discover` runs beside it
            follow_up = threading.Thread(target=follow_up_in_process, args=(app, TESTER, stop))
            follow_up.start()
            try:
                deadline = time.monotonic() + 30
                while len(receiver.accepted) < 2 and time.monotonic() < deadline:
                    time.sleep(0.05)
            finally:
                stop.set()
                follow_up.join()

            second = _notices(app)[-1]
            assert second.id != first.id and second.cites_id == first.id
            assert second.automatic and second.status == "sent"  # no person needed
            (_, request) = receiver.accepted
            assert request.payload is not None
            (item,) = request.payload["items"]
            assert site.url("/media/copy.jpg") in json.dumps(item)
            assert first.idempotency_key in json.dumps(item)  # the earlier notice, cited
        app.close()


# -- exactly once across a killed dispatcher ------------------------------------------------

COPIES = 24


def _dispatcher_env(app: SafeEye, site: HostileServer, tls: ServerTLS, smtp_port: int) -> dict:
    settings = app.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEEYE_")}
    env.update(
        SAFEEYE_DATA_DIR=str(settings.data_dir),
        SAFEEYE_ACTOR="dispatcher",
        SAFEEYE_FETCH_ALLOWLIST="127.0.0.1",
        SAFEEYE_CONNECTOR_CA_BUNDLE=str(tls.ca_file),
        SAFEEYE_SMTP_PORT=str(smtp_port),
        SAFEEYE_ORG_EMAIL="takedown@center.example",
        SAFEEYE_RDAP_BOOTSTRAP_URL=site.url("/no-rdap/"),
        SAFEEYE_TASK_LEASE_SECONDS=str(LEASE),
    )
    return env


LEASE = 3.0


def _dispatcher(env: dict, log: Path) -> subprocess.Popen[bytes]:
    """`safeeye notices send --approved` in a process of its own."""
    command = [sys.executable, "-c", "from safeeye.cli import app; app()"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*command, "notices", "send", "--approved", "--json"], env=env, stdout=out, stderr=out
        )


def _wait_for(condition: Any, what: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"the dispatcher ended before {what}: {log.read_text()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_dispatcher_killed_mid_batch_neither_loses_nor_repeats_a_notice(
    tmp_path: Path, detectors: Detectors
) -> None:
    tls = make_tls(tmp_path / "tls")
    log = tmp_path / "dispatcher.log"
    with HostileServer() as site, smtp_server() as (mailbox, port):
        images = "".join(f'<img src="/img/c{i}.jpg">' for i in range(COPIES))
        site.add(
            "/gallery/many.html",
            f"<html><body>{images}</body></html>".encode(),
            content_type="text/html",
        )
        for i in range(COPIES):
            site.add(f"/img/c{i}.jpg", FACE.read_bytes(), content_type="image/jpeg")
        app = make_app(_settings(tmp_path / "data", site, tls, port), detectors)
        with RegulatorReceiver(published_key(app).public_key, tls) as receiver:
            act(app, update_recipient, "kcsc", address=receiver.url)
            _local_host(app)
            act(app, create_case, "TD-3")
            act(app, add_faces, "TD-3", [FACES / "obama.jpg"])
            _scan(app, site.url("/gallery/many.html"))
            act(app, confirm, _matches(app))
            act(app, draft_notices, case="TD-3")
            for batch in act(app, list_batches, "draft"):
                act(app, approve_batch, batch.id)
            notices = _notices(app)
            assert len(notices) == 2 * COPIES
            env = _dispatcher_env(app, site, tls, port)

            # Killed while the e-mails go out one by one (the server takes its time).
            mailbox.delay = 0.15
            first = _dispatcher(env, log)
            _wait_for(
                lambda: len(mailbox.envelopes) >= COPIES // 3, "a third of the e-mails", first, log
            )
            first.send_signal(signal.SIGKILL)
            first.wait()
            mailbox.delay = 0.0

            # Killed after the regulator took the batch in, before the answer came back.
            receiver.answer_late(1, seconds=30)
            time.sleep(LEASE)  # the dead process's leases run out
            second = _dispatcher(env, log)
            _wait_for(lambda: receiver.accepted, "the regulator's batch", second, log)
            second.send_signal(signal.SIGKILL)
            second.wait()

            time.sleep(LEASE)
            third = _dispatcher(env, log)
            assert third.wait(timeout=120) == 0, log.read_text()

            # Nothing lost: every notice went out and is marked sent.
            assert {n.status for n in _notices(app)} == {"sent"}, log.read_text()
            refs = {n.idempotency_key for n in notices}
            # The regulator took each item once; the repeat was answered "duplicate".
            assert set(receiver.items) == refs & {
                n.idempotency_key for n in notices if n.language == "ko"
            }
            first_answer, repeat = receiver.accepted
            assert {i["status"] for i in first_answer.answer["items"]} == {"accepted"}
            assert {i["status"] for i in repeat.answer["items"]} == {"duplicate"}
            # Each e-mail arrived; at most the one in flight at the kill came twice, under the
            # same Message-ID, so the desk's mail system sees one message.
            ids = [m["Message-ID"] for m in _messages(mailbox)]
            assert len(set(ids)) == COPIES
            assert len(ids) - len(set(ids)) <= 1
        app.close()


# -- the commands ---------------------------------------------------------------------------


def _cli(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_commands_take_a_match_from_review_to_a_verified_removal_and_its_report(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app = world.app
    (pending,) = _cli(app, monkeypatch, "review", "list")
    match_id = str(pending["match_id"])
    _cli(app, monkeypatch, "review", "confirm", match_id, "--category", "synthetic")
    drafted = _cli(app, monkeypatch, "notices", "draft", "--case", "TD-1")
    assert {n["recipient"] for n in drafted["notices"]} == {"kcsc", "local-host"}
    assert all(n["category"] == "synthetic" for n in drafted["notices"])
    batches = _cli(app, monkeypatch, "notices", "batches", "--status", "draft")
    assert {b["id"] for b in batches} == set(drafted["batches"])
    send = ["notices", "send"] + [f"--batch={b}" for b in drafted["batches"]]
    sent = _cli(app, monkeypatch, *send)
    assert {int(k) for k in sent["batches"]} == set(drafted["batches"])
    listed = _cli(app, monkeypatch, "notices", "list", "--status", "sent")
    assert len(listed) == 2 and len(world.receiver.accepted) == 1
    assert len(world.mailbox.envelopes) == 1

    desk = next(n for n in listed if n["recipient"] == "local-host")
    _cli(app, monkeypatch, "notices", "answer", str(desk["id"]), "--kind", "acknowledged")
    world.site.route("/img/a.jpg", status(410))
    with app.db.session() as session:  # the check is due
        for notice in session.execute(select(Notice)).scalars():
            notice.next_check_at = utcnow() - timedelta(seconds=1)
        session.commit()
    checks = _cli(app, monkeypatch, "recheck", "--once")["rechecks"]
    assert {(c["result"], c["action"]) for c in checks} == {("removed", "removed")}
    story = _cli(app, monkeypatch, "notices", "status", str(desk["id"]))
    assert story["notice"]["status"] == "removed" and story["notice"]["removed_at"]
    assert [a["kind"] for a in story["answers"]] == ["acknowledged"]
    assert [c["result"] for c in story["rechecks"]] == ["removed"]
    assert _cli(app, monkeypatch, "notices", "overdue") == []

    csv_file, pdf_file = tmp_path / "times.csv", tmp_path / "times.pdf"
    figures = _cli(
        app, monkeypatch, "report", "removal-times", "--csv", str(csv_file), "--pdf", str(pdf_file)
    )
    by_recipient = {f["recipient"]: f for f in figures}
    assert by_recipient["kcsc"]["notices"] == 1 and by_recipient["kcsc"]["removed_share"] == 1.0
    assert by_recipient["local-host"]["median_hours_to_removal"] is not None
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8-sig"))))
    assert {r["recipient"] for r in rows} == {"kcsc", "local-host"}
    assert {"notices", "removed", "removed_share"} <= set(rows[0])
    text = "".join(page.extract_text() for page in PdfReader(pdf_file).pages)
    assert "삭제 요청 처리 현황" in text and "방송통신심의위원회" in text  # Korean, embedded
    assert "Local hosting network" in text


def test_a_notice_is_in_the_pages_language_when_the_recipient_reads_it(
    tmp_path: Path, detectors: Detectors
) -> None:
    tls = make_tls(tmp_path / "tls")
    with HostileServer() as site, smtp_server() as (mailbox, port):
        _serve(site, "/forum/eins.html", "/img/a.jpg", lang="de-DE")
        app = make_app(_settings(tmp_path / "data", site, tls, port), detectors)
        _local_host(app, languages=("en", "de"))  # reads English first, German too
        act(app, create_case, "TD-4")
        act(app, add_faces, "TD-4", [FACES / "obama.jpg"])
        _scan(app, site.url("/forum/eins.html"))
        act(app, confirm, _matches(app))
        (notice,) = act(app, draft_notices, case="TD-4").notices
        assert notice.language == "de"
        _send_all(app)
        (message,) = _messages(mailbox)
        assert [language for language, _ in _text_parts(message)] == ["de", "en"]
        app.close()


def test_another_file_of_the_same_face_once_confirmed_cites_the_cases_first_notice(
    world: World,
) -> None:
    app, site = world.app, world.site
    act(app, confirm, _matches(app))
    act(app, draft_notices, case="TD-1")
    _send_all(app)
    first = _notices(app)[0]

    site.add(
        "/gallery/two.html",
        PAGE.format(src="/img/b.jpg", lang="").encode(),
        content_type="text/html",
    )
    site.add("/img/b.jpg", (FACES / "obama3.jpg").read_bytes(), content_type="image/jpeg")
    _scan(app, site.url("/gallery/two.html"))
    new_match = _matches(app)[-1]
    with app.db.session(read_only=True) as session:
        assert session.get(Match, new_match).status == "pending"  # a person decides first
    act(app, confirm, [new_match], category="synthetic")
    report = act(app, draft_notices, case="TD-1")
    assert report.notices and all(n.cites == first.id for n in report.notices)
    assert all(n.status == "draft" for n in report.notices)  # new media: an officer approves


def test_an_officer_shares_the_files_hashes_with_stopncii_once_per_file(
    tmp_path: Path, detectors: Detectors
) -> None:
    tls = make_tls(tmp_path / "tls")
    keys = {"stopncii_subscription_key": "sub-1", "stopncii_submit_key": "submit-1"}
    with (
        HostileServer() as site,
        smtp_server() as (_, port),
        StopNCIIEndpoint("sub-1", "submit-1", tls) as stopncii,
    ):
        _serve(site, "/gallery/one.html", "/img/a.jpg")
        _serve(site, "/board/two.html", "/media/copy.jpg")  # the same file twice
        app = make_app(_settings(tmp_path / "data", site, tls, port, **keys), detectors)
        act(app, update_recipient, "stopncii", address=stopncii.url)
        act(app, create_case, "TD-5")
        act(app, add_faces, "TD-5", [FACES / "obama.jpg"])
        _scan(app, site.url("/gallery/one.html"))
        _scan(app, site.url("/board/two.html"))
        act(app, confirm, _matches(app), category="synthetic")

        report = act(app, draft_notices, case="TD-5", to=["stopncii"])
        shared = [n for n in report.notices if n.recipient == "stopncii"]
        assert len(shared) == 1  # one file, two sightings: its hashes once
        assert act(app, draft_notices, case="TD-5", to=["stopncii"]).notices == []
        _send_all(app)

        with app.db.session(read_only=True) as session:
            media = session.execute(select(Sighting)).scalars().first()
            assert media is not None
            pdq = session.execute(
                select(MediaFrame.pdq_hex).where(MediaFrame.media_id == media.media_id)
            ).scalar_one()
        assert set(stopncii.records) == {("ImagePDQ", pdq)}
        assert {n.status for n in _notices(app) if n.id == shared[0].id} == {"sent"}
        app.close()
