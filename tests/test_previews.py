"""What a reviewer sees: blurred pictures unless asked, each sharp look audited, the victim's
reference face beside the face found, and why it matched in numbers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageStat
from sqlalchemy import func, select

from conftest import FACES, act
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, create_case
from safeeye.db.models import AuditEvent, Match
from safeeye.errors import PermissionDenied
from safeeye.pipeline.detectors import Detectors
from safeeye.pipeline.scan import Scanner
from safeeye.review.previews import face_pair, match_preview, match_view
from safeeye.work import Actor, Role


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
