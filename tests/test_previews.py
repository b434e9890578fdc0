"""What a reviewer sees: blurred pictures (at their level, greyscale if asked) unless asked,
each sharp look audited and counted per workday, the victim's reference face beside the face
found, a video's frames cut in memory, and why it matched in numbers."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageStat
from sqlalchemy import func, select

from conftest import FACES, VIDEO, act, make_app, make_settings
from safeeye.accounts import BlurLevel
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.db.models import AuditEvent, Match
from safeeye.errors import NotFoundError, PermissionDenied, ValidationError
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.scan import Scanner
from safeeye.review.exposure import day_start, reveals_by_reviewer, reveals_today
from safeeye.review.previews import (
    STRIP_FRAMES,
    FrameReason,
    MatchView,
    face_crop,
    face_pair,
    frame_strip,
    match_frame,
    match_preview,
    match_view,
)
from safeeye.work import Actor, Role, Work


@pytest.fixture
def face_match(app: SafeEye) -> tuple[SafeEye, int]:
    act(app, create_case, "PV-1")
    act(app, add_faces, "PV-1", [FACES / "obama.jpg"])
    Scanner(app).scan_paths([FACES / "obama2.jpg"])
    with app.db.session(read_only=True) as session:
        (match_id,) = session.execute(select(Match.id)).scalars().all()
    return app, match_id


def _sharpness(jpeg: bytes) -> float:
    with Image.open(io.BytesIO(jpeg)) as image:
        edges = image.convert("L").filter(ImageFilter.FIND_EDGES)
        return float(ImageStat.Stat(edges).var[0])


def _revealed(app: SafeEye) -> int:
    with app.db.session(read_only=True) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action == "media.revealed")
            )
            or 0
        )


def _mode(jpeg: bytes) -> str:
    with Image.open(io.BytesIO(jpeg)) as image:
        return str(image.mode)


def _files(folder: Path) -> set[Path]:
    return {
        p for p in folder.rglob("*") if p.is_file() and "wal" not in p.name and "shm" not in p.name
    }


def _faces(detectors: Detectors, jpeg: bytes) -> int:
    with Image.open(io.BytesIO(jpeg)) as image:
        return len(detectors.faces.predict(np.asarray(image.convert("RGB"))))


def test_the_preview_is_blurred_unless_asked_and_each_sharp_look_is_audited(
    face_match: tuple[SafeEye, int], detectors: Detectors
) -> None:
    app, match_id = face_match
    hidden = act(app, match_preview, match_id)
    assert hidden.blurred and max(hidden.width, hidden.height) <= 640
    assert _revealed(app) == 0
    shown = act(app, match_preview, match_id, reveal=True)
    assert not shown.blurred and _revealed(app) == 1
    assert _sharpness(hidden.jpeg) * 20 < _sharpness(shown.jpeg)
    assert _faces(detectors, shown.jpeg) >= 1 and _faces(detectors, hidden.jpeg) == 0


def test_a_face_match_shows_the_reference_face_beside_the_face_found_and_why(
    face_match: tuple[SafeEye, int], detectors: Detectors
) -> None:
    app, match_id = face_match
    view = act(app, match_view, match_id)
    assert view.kind == "face" and view.threshold == app.settings.face_distance
    assert view.distance <= view.threshold and view.frames[0].box is not None
    assert "face distance" in view.why() and f"{view.threshold:g}" in view.why()
    reference, found = act(app, face_pair, match_id, reveal=True)
    assert not reference.blurred and not found.blurred
    assert max(found.width, found.height) <= 256
    assert _faces(detectors, reference.jpeg) == 1 and _faces(detectors, found.jpeg) == 1
    blurred_pair = act(app, face_pair, match_id)
    assert all(p.blurred for p in blurred_pair)
    assert _revealed(app) == 1


def test_only_reviewers_see_pictures_and_auditors_read_why(
    face_match: tuple[SafeEye, int],
) -> None:
    app, match_id = face_match
    auditor = Actor("user:audit", frozenset({Role.AUDITOR}))
    assert app.call(auditor, match_view, match_id).match_id == match_id
    with pytest.raises(PermissionDenied):
        app.call(auditor, match_preview, match_id)
    with pytest.raises(PermissionDenied):
        app.call(auditor, face_pair, match_id)


def test_a_blurred_preview_follows_the_persons_level_and_may_be_greyscale(
    face_match: tuple[SafeEye, int],
) -> None:
    app, match_id = face_match
    strong = act(app, match_preview, match_id, greyscale=True)
    medium = act(app, match_preview, match_id, level="medium")
    light = act(app, match_preview, match_id, level=BlurLevel.LIGHT)
    sharp = act(app, match_preview, match_id, reveal=True, greyscale=True)
    assert _sharpness(strong.jpeg) < _sharpness(medium.jpeg) < _sharpness(light.jpeg)
    assert _sharpness(light.jpeg) * 3 < _sharpness(sharp.jpeg)
    assert _mode(strong.jpeg) == "L" and _mode(light.jpeg) == "RGB"
    assert _mode(sharp.jpeg) == "RGB"  # a sharp look is the picture as it is
    faces = act(app, face_crop, match_id, "found", level="light", greyscale=True)
    assert faces.blurred and _mode(faces.jpeg) == "L"
    with pytest.raises(ValidationError):
        act(app, match_preview, match_id, level="none")
    with pytest.raises(ValidationError):
        act(app, face_crop, match_id, "left")
    with pytest.raises(ValidationError):
        act(app, match_frame, match_id, 0)  # a still has no frame strip
    assert _revealed(app) == 1


def test_a_video_match_shows_the_frame_it_is_about_and_a_strip_cut_in_memory(
    app: SafeEye, detectors: Detectors, tmp_path: Path
) -> None:
    act(app, create_case, "PV-V")
    act(app, add_faces, "PV-V", [FACES / "lin-manuel-miranda.png"])
    Scanner(app).scan_paths([VIDEO])
    with app.db.session(read_only=True) as session:
        (match_id,) = session.execute(select(Match.id)).scalars().all()
    files_before = _files(app.settings.data_dir)
    view = act(app, match_view, match_id)
    assert view.media_type == "video" and view.frame_count > 1
    strip = frame_strip(view)
    assert 1 < len(strip) <= STRIP_FRAMES and list(strip) == sorted(strip)
    assert min(view.frames, key=lambda f: f.distance).time in strip
    hidden = act(app, match_preview, match_id)
    shown = act(app, match_preview, match_id, reveal=True)
    assert hidden.blurred and not shown.blurred and (shown.width, shown.height) == (640, 360)
    assert _faces(detectors, shown.jpeg) >= 1 and _faces(detectors, hidden.jpeg) == 0
    _reference, found = act(app, face_pair, match_id, reveal=True)
    assert _faces(detectors, found.jpeg) == 1  # the face is in the frame cut at its time
    for number, time in enumerate(strip):
        at, frame = act(app, match_frame, match_id, number)
        assert at == time and frame.blurred
    with pytest.raises(NotFoundError):
        act(app, match_frame, match_id, len(strip))
    at, sharp = act(app, match_frame, match_id, 0, reveal=True)
    assert _sharpness(frame.jpeg) * 5 < _sharpness(sharp.jpeg)
    assert _revealed(app) == 3
    assert _files(app.settings.data_dir) == files_before  # nothing written out


def test_the_strip_spreads_many_matched_frames_and_keeps_the_best() -> None:
    frames = tuple(
        FrameReason(time=float(t), distance=0.5 - (0.2 if t == 13 else 0), reference_id=1, box=None)
        for t in range(40)
    )
    view = MatchView(1, "C", "face", False, 0.3, 0.6, 40, frames, "video", 0.9, "pending")
    strip = frame_strip(view)
    assert len(strip) == STRIP_FRAMES and 13.0 in strip and strip[0] == 0.0 and strip[-1] == 39.0
    still = MatchView(1, "C", "face", False, 0.3, 0.6, 1, frames[:1], "image", 0.9, "pending")
    assert frame_strip(still) == ()


def test_each_persons_reveals_are_counted_per_workday(face_match: tuple[SafeEye, int]) -> None:
    app, match_id = face_match
    kim = Actor("user:kim", frozenset({Role.REVIEWER}))
    lee = Actor("user:lee", frozenset({Role.REVIEWER}))
    admin = Actor("user:boss", frozenset({Role.ADMIN}))
    for _ in range(3):
        app.call(kim, match_preview, match_id, reveal=True)
    app.call(kim, match_preview, match_id)  # a blurred look is not counted
    app.call(lee, face_crop, match_id, "found", reveal=True)
    mine = app.call(kim, reveals_today)
    assert (mine.username, mine.count, mine.limit) == ("kim", 3, 40) and not mine.past_limit
    assert app.call(admin, reveals_today, "lee").count == 1
    with pytest.raises(PermissionDenied):
        app.call(kim, reveals_today, "lee")
    board = app.call(admin, reveals_by_reviewer)
    assert [(r.username, r.count) for r in board] == [("kim", 3), ("lee", 1)]
    with pytest.raises(PermissionDenied):
        app.call(kim, reveals_by_reviewer)
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert app.call(kim, reveals_today, now=tomorrow).count == 0
    # The workday starts at midnight in Seoul: 23:30 UTC is already the next day there.
    late = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    with app.db.session(read_only=True) as session:
        start = day_start(Work(app, session, kim), late)
    assert start == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)


def test_past_the_limit_a_break_is_suggested(tmp_path: Path, detectors: Detectors) -> None:
    app = make_app(make_settings(tmp_path / "data", reveals_before_break=2), detectors)
    act(app, create_case, "PV-2")
    act(app, add_faces, "PV-2", [FACES / "obama.jpg"])
    Scanner(app).scan_paths([FACES / "obama2.jpg"])
    with app.db.session(read_only=True) as session:
        (match_id,) = session.execute(select(Match.id)).scalars().all()
    kim = Actor("user:kim", frozenset({Role.REVIEWER}))
    app.call(kim, match_preview, match_id, reveal=True)
    assert not app.call(kim, reveals_today).past_limit
    app.call(kim, face_pair, match_id, reveal=True)
    looks = app.call(kim, reveals_today)
    assert looks.past_limit and looks.left == 0
    app.close()
