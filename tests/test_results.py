"""Results a person can see: `matches list` and `sightings list` on real scans of the fixtures."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import FACES, VIDEO, act
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.errors import PermissionDenied, ValidationError
from safeeye.ingest.monitor import Monitor
from safeeye.ingest.service import add_source
from safeeye.ingest.sightings import list_sightings
from safeeye.review.matches import list_matches
from safeeye.work import Actor, Role
from telegram_export import CHANNEL_NAME, build_single_chat_export

MATCH_FIELDS = {
    "match_id",
    "case",
    "kind",
    "distance",
    "threshold",
    "status",
    "media_id",
    "sha256",
    "media_type",
    "frames",
    "frame_count",
    "created_at",
    "first_seen",
    "last_seen",
    "sightings_total",
    "sightings",
}
SIGHTING_FIELDS = {
    "sighting_id",
    "source_id",
    "location",
    "page_url",
    "chat",
    "message_id",
    "first_seen",
    "last_seen",
    "times_seen",
    "http_status",
    "sha256",
    "media_id",
    "media_type",
    "cases",
    "error",
}


def run(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str, code: int = 0) -> Any:
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def scanned(app: SafeEye, monkeypatch: pytest.MonkeyPatch) -> SafeEye:
    """Three cases (a face, a known image, a face seen in a video) and five uploaded files:
    four of them match one case each, one matches none."""
    for code, command, reference in [
        ("CASE-OBAMA", "add-face", FACES / "obama.jpg"),
        ("CASE-ROSE", "add-known", FACES / "rose_leslie1.jpg"),
        ("CASE-LMM", "add-face", FACES / "lin-manuel-miranda.png"),
    ]:
        run(app, monkeypatch, "case", "create", code, "--consent", "test")
        run(app, monkeypatch, "case", command, code, str(reference))
    files = [FACES / "obama2.jpg", FACES / "rose_leslie1.jpg", FACES / "biden.jpg", VIDEO]
    (visit,) = run(app, monkeypatch, "source", "upload", *map(str, files))["visits"]
    assert visit["media_new"] == 4 and visit["failures"] == 0
    return app


def test_matches_list_shows_case_kind_distance_threshold_file_where_and_when(
    scanned: SafeEye, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    matches = run(scanned, monkeypatch, "matches", "list")
    assert all(set(m) == MATCH_FIELDS for m in matches)
    ids = [m["match_id"] for m in matches]
    assert ids == sorted(ids, reverse=True)  # newest first
    by_case = {m["case"]: m for m in matches}
    assert sorted(by_case) == ["CASE-LMM", "CASE-OBAMA", "CASE-ROSE"] and len(matches) == 3

    face = by_case["CASE-OBAMA"]
    photo = FACES / "obama2.jpg"
    assert (face["kind"], face["threshold"], face["media_type"]) == ("face", 0.6, "image")
    assert 0 <= face["distance"] <= face["threshold"] and face["status"] == "pending"
    assert face["sha256"] == sha256(photo) and (face["frames"], face["frame_count"]) == ([0.0], 1)
    (seen,) = face["sightings"]
    assert set(seen) == SIGHTING_FIELDS and face["sightings_total"] == 1
    assert seen["location"] == str(photo.resolve()) and seen["cases"] == ["CASE-OBAMA"]
    assert (face["first_seen"], face["last_seen"]) == (seen["first_seen"], seen["last_seen"])

    known = by_case["CASE-ROSE"]
    assert (known["kind"], known["threshold"], known["distance"]) == ("hash", 31.0, 0.0)
    assert known["sha256"] == sha256(FACES / "rose_leslie1.jpg")

    video = by_case["CASE-LMM"]
    assert video["media_type"] == "video" and video["sha256"] == sha256(VIDEO)
    assert len(video["frames"]) == video["frame_count"] >= 3
    assert video["frames"] == sorted(video["frames"]) and all(
        0 <= t <= 10.1 for t in video["frames"]
    )

    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "CASE-" not in logged and face["sha256"] not in logged and "obama2" not in logged


def test_matches_list_of_one_case_and_of_a_case_that_does_not_exist(
    scanned: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    (only,) = run(scanned, monkeypatch, "matches", "list", "--case", "CASE-ROSE")
    assert only["case"] == "CASE-ROSE"
    missing = run(scanned, monkeypatch, "matches", "list", "--case", "CASE-NONE", code=2)
    assert missing["error"].startswith("not_found")


def test_sightings_list_shows_every_file_seen_with_the_cases_it_matches(
    scanned: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    sightings = run(scanned, monkeypatch, "sightings", "list")
    assert len(sightings) == 4 and all(set(s) == SIGHTING_FIELDS for s in sightings)
    by_file = {Path(s["location"]).name: s for s in sightings}
    assert by_file["biden.jpg"]["cases"] == [] and by_file["biden.jpg"]["media_type"] == "image"
    assert by_file["rose_leslie1.jpg"]["cases"] == ["CASE-ROSE"]
    assert by_file[VIDEO.name]["sha256"] == sha256(VIDEO)
    assert all(s["times_seen"] == 1 and s["chat"] is None for s in sightings)


def test_both_lists_page_newest_first(scanned: SafeEye, monkeypatch: pytest.MonkeyPatch) -> None:
    every = [s["sighting_id"] for s in run(scanned, monkeypatch, "sightings", "list")]
    first = run(scanned, monkeypatch, "sightings", "list", "--limit", "3")
    rest = run(scanned, monkeypatch, "sightings", "list", "--before", str(first[-1]["sighting_id"]))
    assert [s["sighting_id"] for s in first + rest] == every == sorted(every, reverse=True)
    matches = act(scanned, list_matches, limit=2)
    older = act(scanned, list_matches, limit=2, before=matches[-1].match_id)
    assert [m.match_id for m in matches + older] == [m.match_id for m in act(scanned, list_matches)]
    assert len(matches) == 2 and len(older) == 1
    for bad in ({"limit": 0}, {"limit": 1001}, {"before": 0}):
        with pytest.raises(ValidationError):
            act(scanned, list_sightings, **bad)
    out = run(scanned, monkeypatch, "matches", "list", "--limit", "0", code=2)
    assert out["error"].startswith("invalid")


def test_a_purged_cases_matches_and_files_are_gone_from_both_lists(
    scanned: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(scanned, monkeypatch, "case", "purge", "CASE-ROSE")
    matches = run(scanned, monkeypatch, "matches", "list")
    assert sorted(m["case"] for m in matches) == ["CASE-LMM", "CASE-OBAMA"]
    located = {Path(s["location"]).name for s in run(scanned, monkeypatch, "sightings", "list")}
    assert "rose_leslie1.jpg" not in located and "biden.jpg" in located


def test_the_lists_are_for_reviewers_counselors_and_auditors(scanned: SafeEye) -> None:
    for role in (Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR):
        person = Actor(f"user:{role}", frozenset({role}))
        assert len(scanned.call(person, list_matches)) == 3
        assert len(scanned.call(person, list_sightings)) == 4
    worker = Actor.system("worker")
    for service in (list_matches, list_sightings):
        with pytest.raises(PermissionDenied):
            scanned.call(worker, service)


def test_the_tables_for_people_name_the_case_and_where_it_was_seen(
    scanned: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(cli._state, "app", scanned)
    matches = CliRunner().invoke(cli.app, ["matches", "list"], env={"COLUMNS": "300"})
    sightings = CliRunner().invoke(cli.app, ["sightings", "list"], env={"COLUMNS": "300"})
    assert matches.exit_code == 0 and sightings.exit_code == 0
    assert "CASE-OBAMA" in matches.stdout and "obama2.jpg" in matches.stdout
    assert "0.6" in matches.stdout and "biden.jpg" in sightings.stdout


def test_a_telegram_match_names_its_chat_and_message(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = build_single_chat_export(tmp_path / "ChatExport_2024-03-15")
    run(app, monkeypatch, "case", "create", "CASE-BIDEN")
    run(app, monkeypatch, "case", "add-face", "CASE-BIDEN", str(FACES / "biden2.jpg"))
    run(app, monkeypatch, "source", "import-telegram", str(built.root))
    matches = run(app, monkeypatch, "matches", "list", "--case", "CASE-BIDEN")
    seen = [s for m in matches for s in m["sightings"]]
    assert seen and all(s["chat"] == CHANNEL_NAME for s in seen)
    message_ids = {e.message_id for e in built.media}
    assert all(
        s["message_id"] in message_ids and s["location"].startswith("https://t.me/") for s in seen
    )


def test_the_lists_read_the_same_on_every_database(any_db_app: SafeEye) -> None:
    app = any_db_app
    act(app, create_case, "CASE-OBAMA")
    act(app, add_faces, "CASE-OBAMA", [FACES / "obama.jpg"])
    files = [str(FACES / name) for name in ("obama2.jpg", "biden.jpg", "obama3.jpg")]
    act(app, add_source, "upload", "upload", config={"files": files})
    monitor = Monitor(app)
    try:
        (visit,) = monitor.run_once()
    finally:
        monitor.close()
    assert visit.matches == 2 and len(visit.new_matches) == 2
    matches = act(app, list_matches, case="CASE-OBAMA", limit=1)
    older = act(app, list_matches, case="CASE-OBAMA", before=matches[0].match_id)
    assert [m.match_id for m in matches + older] == sorted(
        (m.match_id for m in visit.new_matches), reverse=True
    )
    assert all(len(m.sightings) == m.sightings_total == 1 for m in matches + older)
    sightings = act(app, list_sightings)
    assert [s.location for s in sightings] == files[::-1]  # newest first
    assert [s.cases for s in sightings] == [("CASE-OBAMA",), (), ("CASE-OBAMA",)]
