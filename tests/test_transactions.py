"""Units of work: everything in one commits together or not at all, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import TESTER
from safeeye.app import SafeEye
from safeeye.db.models import AuditEvent, Media, Sighting
from safeeye.pipeline.analyze import MediaAnalysis
from safeeye.pipeline.record import SightingFacts, store_media, store_sighting
from safeeye.signals.hashes import ContentHashes


class _Boom(Exception):
    pass


def _analysis(sha: str) -> MediaAnalysis:
    return MediaAnalysis(hashes=ContentHashes(sha, "0" * 32, 10))


def _counts(app: SafeEye) -> tuple[int, int, int]:
    with app.db.session(read_only=True) as session:
        return (
            session.execute(select(func.count(Media.id))).scalar_one(),
            session.execute(select(func.count(Sighting.id))).scalar_one(),
            session.execute(select(func.count(AuditEvent.id))).scalar_one(),
        )


def test_a_failure_after_a_savepoint_rolls_back_the_whole_unit_of_work(
    any_db_app: SafeEye,
) -> None:
    app = any_db_app
    before = _counts(app)
    with pytest.raises(_Boom), app.work(TESTER) as work:
        # store_media and store_sighting each use a savepoint (begin_nested) internally.
        media = store_media(work, None, _analysis("a" * 64))
        store_sighting(work.session, media, _analysis("a" * 64), SightingFacts(location="x"))
        work.audit("media.scanned", "media", media.id if media else None)
        raise _Boom
    assert _counts(app) == before


def test_the_unit_of_work_commits_everything_on_success(any_db_app: SafeEye) -> None:
    app = any_db_app
    with app.work(TESTER) as work:
        media = store_media(work, None, _analysis("b" * 64))
        store_sighting(work.session, media, _analysis("b" * 64), SightingFacts(location="y"))
    media_rows, sightings, _ = _counts(app)
    assert (media_rows, sightings) == (1, 1)


def test_two_writers_on_sqlite_wait_for_each_other_instead_of_failing(app: SafeEye) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(20):
                with app.work(TESTER) as work:
                    # Read first, then write: the pattern that fails with a deferred BEGIN.
                    work.session.execute(select(func.count(Media.id))).scalar_one()
                    store_media(work, None, _analysis(f"{n}{i:063d}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _counts(app)[0] == 40


def test_database_files_are_written_with_secure_delete(tmp_path: Path, app: SafeEye) -> None:
    with app.db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA secure_delete").scalar_one() == 1
