"""Face matching end to end through the CLI, on the real models and the fixture photos/video."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FACES, VIDEO
from safeeye import cli
from safeeye.app import SafeEye


def run(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str) -> list | dict:  # type: ignore[type-arg]
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def register(app: SafeEye, monkeypatch: pytest.MonkeyPatch, code: str, *photos: Path) -> None:
    run(app, monkeypatch, "case", "create", code, "--consent", "test")
    outcomes = run(app, monkeypatch, "case", "add-face", code, *map(str, photos))
    assert all(o["error"] is None for o in outcomes), outcomes


def face_matches(result: dict) -> list[dict]:  # type: ignore[type-arg]
    return [m for m in result["matches"] if m["kind"] == "face"]


def test_other_photos_of_the_reference_person_match_and_others_do_not(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(app, monkeypatch, "CASE-OBAMA", FACES / "obama.jpg")
    names = ["obama2.jpg", "obama3.jpg", "biden.jpg", "rose_leslie1.jpg"]
    results = run(app, monkeypatch, "scan", *(str(FACES / n) for n in names))
    assert [Path(r["input"]).name for r in results] == names  # input order kept
    by_name = {Path(r["input"]).name: r for r in results}
    for name in ("obama2.jpg", "obama3.jpg"):
        (match,) = face_matches(by_name[name])
        assert match["case"] == "CASE-OBAMA" and match["distance"] <= 0.6
        assert by_name[name]["faces"] >= 1 and by_name[name]["error"] is None
    assert face_matches(by_name["biden.jpg"]) == []
    assert face_matches(by_name["rose_leslie1.jpg"]) == []


def test_a_group_photo_matches_the_case_of_one_person_in_it(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(app, monkeypatch, "CASE-BIDEN", FACES / "biden2.jpg")
    (result,) = run(app, monkeypatch, "scan", str(FACES / "two_people.jpg"))
    assert result["faces"] == 2
    (match,) = face_matches(result)
    assert match["case"] == "CASE-BIDEN"


def test_video_matches_with_the_timestamps_where_the_person_appears(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(app, monkeypatch, "CASE-LMM", FACES / "lin-manuel-miranda.png")
    (result,) = run(app, monkeypatch, "scan", str(VIDEO))
    assert result["media_type"] == "video" and result["error"] is None
    (match,) = face_matches(result)
    assert match["case"] == "CASE-LMM"
    times = match["frames"]
    assert len(times) >= 3, times
    assert all(0.0 <= t <= 10.1 for t in times) and times == sorted(times)
    assert match["frame_count"] == len(times)


def test_a_photo_without_a_face_is_refused_as_face_reference(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from PIL import Image

    blank = tmp_path / "wall.png"
    Image.new("RGB", (300, 200), (200, 180, 160)).save(blank)
    run(app, monkeypatch, "case", "create", "CASE-X")
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, ["case", "add-face", "CASE-X", str(blank), "--json"])
    assert result.exit_code == 1
    (outcome,) = json.loads(result.stdout)
    assert outcome["error"].startswith("no_face")
