"""The other source kinds end to end: a Telegram export import, a watched folder, uploads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import FACES, act
from safeeye import cli
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.db.models import Match, Sighting
from safeeye.ingest.monitor import Monitor
from safeeye.ingest.service import add_source, list_sources, make_due
from telegram_export import CHANNEL_ID, CHANNEL_NAME, build_single_chat_export


def _cli(app: SafeEye, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict:  # type: ignore[type-arg]
    monkeypatch.setitem(cli._state, "app", app)
    result = CliRunner().invoke(cli.app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_telegram_export_imports_with_chat_message_date_and_link(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = build_single_chat_export(tmp_path / "ChatExport_2024-03-15")
    act(app, create_case, "CASE-BIDEN")
    act(app, add_faces, "CASE-BIDEN", [FACES / "biden2.jpg"])
    out = _cli(app, monkeypatch, "source", "import-telegram", str(built.root))
    (visit,) = out["visits"]
    assert visit["status"] == "done" and visit["media_new"] >= 3 and visit["matches"] >= 1
    assert visit["failures"] >= len(built.missing)  # left-out and missing files are reported
    with app.db.session() as session:
        sightings = session.execute(select(Sighting)).scalars().all()
        by_file = {s.evidence["file"]: s for s in sightings if s.evidence}
        for expected in built.media:
            if expected.kind == "sticker":
                continue
            sighting = by_file[expected.relative_path]
            evidence = sighting.evidence
            assert evidence["chat"] == CHANNEL_NAME and evidence["chat_id"] == CHANNEL_ID
            assert evidence["message_id"] == expected.message_id
            assert evidence["date"] == expected.date.isoformat()
            assert sighting.location == f"https://t.me/c/{CHANNEL_ID}/{expected.message_id}"
        matched = {m.media_id for m in session.execute(select(Match)).scalars()}
        assert any(s.media_id in matched for s in sightings)


def test_a_watched_folder_picks_up_new_files_only(any_db_app: SafeEye, tmp_path: Path) -> None:
    app = any_db_app
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(FACES / "obama.jpg", inbox / "a.jpg")
    source = act(app, add_source, "folder", str(inbox), interval_seconds=60)
    monitor = Monitor(app)
    try:
        (first,) = monitor.run_once()
        shutil.copy(FACES / "biden.jpg", inbox / "b.jpg")
        act(app, make_due, source.id)
        (second,) = monitor.run_once()
    finally:
        monitor.close()
    assert (first.media_new, second.media_new, second.unchanged) == (1, 1, 1)
    with app.db.session() as session:
        assert len(session.execute(select(Sighting)).scalars().all()) == 2


def test_upload_of_files_scans_them_as_sightings(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _cli(
        app,
        monkeypatch,
        "source",
        "upload",
        str(FACES / "obama2.jpg"),
        str(FACES / "rose_leslie1.jpg"),
    )
    (visit,) = out["visits"]
    assert visit["media_new"] == 2 and visit["failures"] == 0
    listed = _cli(app, monkeypatch, "source", "list")
    assert [s["kind"] for s in listed] == ["upload"] and listed[0]["sightings"] == 2


def test_a_source_that_breaks_fails_its_visit_and_the_monitor_goes_on(
    app: SafeEye, tmp_path: Path
) -> None:
    not_an_export = tmp_path / "export"
    not_an_export.mkdir()
    (not_an_export / "result.json").write_text("{ this is not json")
    broken = act(app, add_source, "telegram", str(not_an_export), interval_seconds=60)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    shutil.copy(FACES / "obama.jpg", inbox / "a.jpg")
    act(app, add_source, "folder", str(inbox), interval_seconds=60)
    monitor = Monitor(app)
    try:
        first, second = monitor.run_once()
    finally:
        monitor.close()
    assert first.source_id == broken.id and first.status == "failed"
    assert first.errors[0].startswith("telegram_export")
    assert second.status == "done" and second.media_new == 1
    listed = {s.id: s for s in act(app, list_sources)}
    assert listed[broken.id].last_status == "failed" and listed[broken.id].next_due_at
