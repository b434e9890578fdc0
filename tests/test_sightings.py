"""Sightings: one per location and content; scanned content is reused, not analysed again."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import select

from conftest import FACES
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent, Media, Sighting
from safeeye.pipeline.scan import Scanner


def test_seeing_the_same_content_again_updates_the_sighting(
    any_db_app: SafeEye, tmp_path: Path
) -> None:
    app = any_db_app
    spot = tmp_path / "upload.jpg"
    shutil.copy(FACES / "obama.jpg", spot)
    scanner = Scanner(app)
    (first,) = scanner.scan_paths([spot])
    (again,) = scanner.scan_paths([spot])
    assert again.reused and again.sighting_id == first.sighting_id
    shutil.copy(FACES / "biden.jpg", spot)  # the same place now shows other content
    (changed,) = scanner.scan_paths([spot])
    assert changed.sighting_id != first.sighting_id and not changed.reused
    with app.db.session() as session:
        sightings = session.execute(select(Sighting).order_by(Sighting.id)).scalars().all()
        assert [s.times_seen for s in sightings] == [2, 1]
        assert sightings[0].last_seen_at > sightings[0].seen_at
        assert len(session.execute(select(Media)).scalars().all()) == 2

        def events(action: str) -> int:
            rows = session.execute(select(AuditEvent).where(AuditEvent.action == action))
            return len(rows.scalars().all())

        assert events("sighting.recorded") == 3  # every time it was seen
        assert events("media.scanned") == 2  # each content analysed once
