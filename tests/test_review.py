"""Review decisions: a person confirms, rejects with a reason, escalates or reopens a match;
each is audited; the victim's own places are never reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import FACES, act
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.db.models import AuditEvent, Case, Match, Review
from safeeye.errors import ConflictError, PermissionDenied, ValidationError
from safeeye.pipeline.scan import Scanner
from safeeye.review.decisions import (
    RejectReason,
    allow_place,
    allowed_for,
    confirm,
    escalate,
    list_allowed,
    reject,
    reopen,
    review_note,
)
from safeeye.work import Actor, Role


@pytest.fixture
def matched(any_db_app: SafeEye) -> tuple[SafeEye, list[int]]:
    """Three face matches of case REV-1 (three photos of the same man)."""
    app = any_db_app
    act(app, create_case, "REV-1")
    act(app, add_faces, "REV-1", [FACES / "obama.jpg"])
    Scanner(app).scan_paths([FACES / n for n in ("obama2.jpg", "obama3.jpg", "two_people.jpg")])
    with app.db.session(read_only=True) as session:
        ids = list(session.execute(select(Match.id).order_by(Match.id)).scalars())
    assert len(ids) == 3
    return app, ids


def _run(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str) -> object:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_decisions_move_the_match_and_are_audited_with_their_reason(
    matched: tuple[SafeEye, list[int]],
) -> None:
    app, (first, second, third) = matched
    (confirmed,) = act(app, confirm, [first], "the victim's face, seen by two reviewers")
    assert confirmed.status == confirmed.decision == "confirmed"
    (rejected,) = act(app, reject, [second], RejectReason.NOT_VICTIM)
    assert rejected.status == "rejected" and rejected.reason == "not_victim"
    act(app, escalate, [third])
    (late,) = act(app, confirm, [third])  # a senior reviewer decides the escalated one
    assert late.status == "confirmed"
    with app.db.session(read_only=True) as session:
        statuses = dict(session.execute(select(Match.id, Match.status)).all())
        assert statuses == {first: "confirmed", second: "rejected", third: "confirmed"}
        actions = list(
            session.execute(
                select(AuditEvent.action).where(AuditEvent.action.like("match.%"))
            ).scalars()
        )
        assert actions.count("match.confirmed") == 2 and "match.rejected" in actions
        assert "match.escalated" in actions
        review = session.execute(select(Review).where(Review.match_id == first)).scalar_one()
        assert review.note_sealed and b"reviewers" not in review.note_sealed
        assert app.audit.verify(session).ok
    assert act(app, review_note, review.id) == "the victim's face, seen by two reviewers"
    (back,) = act(app, reopen, [second])
    assert back.status == "pending"


def test_impossible_moves_and_missing_reasons_are_refused(
    matched: tuple[SafeEye, list[int]],
) -> None:
    app, (first, second, _) = matched
    act(app, reject, [first], "not_sexual")
    with pytest.raises(ConflictError):
        act(app, escalate, [first])  # a rejected match is reopened first, not escalated
    with pytest.raises(ValidationError, match="reason"):
        act(app, reject, [second], "because")
    with pytest.raises(ValidationError, match="note"):
        act(app, reject, [second], RejectReason.OTHER)
    with app.db.session(read_only=True) as session:
        assert session.get(Match, second).status == "pending"  # type: ignore[union-attr]


def test_only_reviewers_decide(matched: tuple[SafeEye, list[int]]) -> None:
    app, (first, *_rest) = matched
    auditor = Actor("user:audrey", frozenset({Role.AUDITOR}))
    with pytest.raises(PermissionDenied):
        app.call(auditor, confirm, [first])
    reviewer = Actor("user:rita", frozenset({Role.REVIEWER}))
    (decision,) = app.call(reviewer, confirm, [first])
    assert decision.actor == "user:rita"


def test_the_cli_lists_pending_matches_and_takes_decisions(
    matched: tuple[SafeEye, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, (first, second, third) = matched
    pending = _run(app, monkeypatch, "review", "list")
    assert sorted(m["match_id"] for m in pending) == [first, second, third]  # type: ignore[union-attr]
    _run(app, monkeypatch, "review", "confirm", str(first), str(third))
    out = _run(app, monkeypatch, "review", "reject", str(second), "--reason", "own_publication")
    assert out[0]["reason"] == "own_publication"  # type: ignore[index]
    assert _run(app, monkeypatch, "review", "list") == []
    confirmed = _run(app, monkeypatch, "review", "list", "--status", "confirmed")
    assert sorted(m["match_id"] for m in confirmed) == [first, third]  # type: ignore[union-attr]


def test_the_victims_own_places_are_sealed_and_recognised(app: SafeEye, tmp_path: Path) -> None:
    act(app, create_case, "OWN-1")
    act(app, allow_place, "OWN-1", "host", "her-blog.example")
    act(app, allow_place, "OWN-1", "account", "@HerName")
    act(app, allow_place, "OWN-1", "url", "https://photos.example/albums/her/")
    with app.db.session(read_only=True) as session:
        case = session.execute(select(Case).where(Case.code == "OWN-1")).scalar_one()
        raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert b"her-blog.example" not in raw and b"hername" not in raw  # sealed in the database
    with app.work(Actor.operator("test")) as work:
        case = work.session.merge(case)
        assert allowed_for(work, case, "https://www.her-blog.example/post/1.jpg")
        assert allowed_for(work, case, "https://t.me/hername/123")
        assert allowed_for(work, case, "https://photos.example/albums/her/7.jpg")
        assert not allowed_for(work, case, "https://photos.example/albums/other/7.jpg")
        assert not allowed_for(work, case, "https://leak.example/her-blog.example.jpg")
    assert [p.kind for p in act(app, list_allowed, "OWN-1")] == ["host", "account", "url"]
