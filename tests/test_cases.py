"""Cases: registration, references encrypted under the case key, and purge."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import FACES, act
from safeeye.app import SafeEye
from safeeye.cases.service import add_faces, add_known, create_case, list_cases, purge_case
from safeeye.db.models import AuditEvent, Case, Match, Media, Reference, ReferenceFace
from safeeye.errors import ConflictError, NotFoundError, SafeEyeError
from safeeye.pipeline.scan import Scanner


def test_case_codes_are_unique_and_pseudonymous(any_db_app: SafeEye) -> None:
    act(any_db_app, create_case, "SOS-2026-0001", "signed intake form")
    with pytest.raises(ConflictError):
        act(any_db_app, create_case, "SOS-2026-0001")
    with pytest.raises(SafeEyeError, match="case code"):
        act(any_db_app, create_case, "Kim Min-ji / 010-1234")
    (summary,) = act(any_db_app, list_cases)
    assert summary.code == "SOS-2026-0001" and summary.status == "open"


def test_references_are_stored_encrypted_under_the_case_key(any_db_app: SafeEye) -> None:
    app = any_db_app
    act(app, create_case, "C1")
    (outcome,) = act(app, add_faces, "C1", [FACES / "obama.jpg"])
    assert outcome.error is None
    raw = (FACES / "obama.jpg").read_bytes()
    with app.db.session() as session:
        ref = session.execute(select(Reference)).scalar_one()
        case = session.execute(select(Case)).scalar_one()
        blob = app.blobs.path(ref.blob_address).read_bytes()
        assert raw[:256] not in blob
        assert app.blobs.get_bytes(ref.blob_address, app.keys.case_key(case)) == raw
        face = session.execute(select(ReferenceFace)).scalar_one()
        assert len(face.embedding_sealed) > 128 * 4  # sealed, not raw floats


def test_purge_destroys_key_references_embeddings_and_exclusive_media(
    any_db_app: SafeEye, tmp_path: Path
) -> None:
    app = any_db_app
    act(app, create_case, "C1")
    act(app, create_case, "C2")
    act(app, add_faces, "C1", [FACES / "obama.jpg"])
    act(app, add_faces, "C2", [FACES / "biden2.jpg"])
    act(app, add_known, "C1", [FACES / "obama2.jpg"])
    results = Scanner(app).scan_paths([FACES / "obama3.jpg", FACES / "two_people.jpg"])
    assert {m.case for r in results for m in r.matches} == {"C1", "C2"}
    with app.db.session() as session:
        addresses = [r.blob_address for r in session.execute(select(Reference)).scalars()]
        case_id = session.execute(select(Case.id).where(Case.code == "C1")).scalar_one()
    report = act(app, purge_case, "C1")
    assert report.references == 2 and report.media == 1  # obama3 only; two_people is C2's too
    with app.db.session() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.code == f"purged-{case_id}"  # the code is gone too
        assert case.status == "purged" and case.wrapped_key is None
        assert (
            session.scalar(
                select(func.count()).select_from(Reference).where(Reference.case_id == case.id)
            )
            == 0
        )
        assert (
            session.scalar(
                select(func.count())
                .select_from(ReferenceFace)
                .where(ReferenceFace.case_id == case.id)
            )
            == 0
        )
        assert session.scalar(select(func.count()).select_from(Media)) == 1
        assert session.execute(
            select(AuditEvent).where(AuditEvent.action == "case.purged")
        ).scalar_one()
    assert not app.blobs.exists(addresses[0]) and not app.blobs.exists(addresses[2])
    # After the purge, the person is no longer found; the other case still is.
    again = Scanner(app).scan_paths([FACES / "obama3.jpg", FACES / "two_people.jpg"])
    assert {m.case for r in again for m in r.matches} == {"C2"}
    with pytest.raises(NotFoundError):
        act(app, add_faces, "C1", [FACES / "obama.jpg"])
    with pytest.raises(ConflictError):
        act(app, add_faces, f"purged-{case_id}", [FACES / "obama.jpg"])
    with app.db.session() as session:
        assert app.audit.verify(session).ok


def test_a_new_case_finds_media_scanned_before_it_existed(any_db_app: SafeEye) -> None:
    from safeeye.pipeline.rematch import rematch_archive

    app = any_db_app
    Scanner(app).scan_paths([FACES / "obama2.jpg", FACES / "biden.jpg", FACES / "obama3.jpg"])
    act(app, create_case, "LATE")
    act(app, add_faces, "LATE", [FACES / "obama.jpg"])
    report = act(app, rematch_archive, "LATE")
    assert (report.media_checked, report.new_matches) == (3, 2)
    assert act(app, rematch_archive, "LATE").new_matches == 0  # nothing twice
    with app.db.session() as session:
        assert len(session.execute(select(Match)).scalars().all()) == 2
        assert app.audit.verify(session).ok
