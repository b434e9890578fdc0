"""Purge means gone: after a purge no byte of the case remains anywhere in the data dir, even
while a monitor in another process holds the database open."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from conftest import FACES, act
from safeeye.app import SafeEye
from safeeye.cases.sealing import open_reference_hash, open_reference_hashes
from safeeye.cases.service import add_faces, add_known, create_case, purge_case
from safeeye.db.models import (
    AuditEvent,
    Case,
    Match,
    Media,
    Reference,
    ReferenceFace,
    ReferenceFeatures,
    ReferenceHash,
    Visit,
)
from safeeye.ingest.service import add_source
from safeeye.pipeline.scan import Scanner

CODE = "SOS-PURGE-7731"
CONSENT = "signed intake form 7731-QXZ, counselor Park"


@pytest.fixture
def monitor(app: SafeEye, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``safeeye discover`` in another process on the same data dir, watching a folder."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    act(app, add_source, "folder", str(inbox), interval_seconds=1)
    env = {**os.environ, "SAFEEYE_DATA_DIR": str(app.settings.data_dir), "SAFEEYE_ACTOR": "mon"}
    process = subprocess.Popen(
        [sys.executable, "-c", "from safeeye.cli import app; app()", "discover"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until it has visited (its connection is open)
        with app.db.session(read_only=True) as session:
            if session.execute(select(Visit.id)).first():
                break
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.2)
    else:
        pytest.fail("the monitor never visited its source")
    yield process
    process.terminate()
    process.wait(timeout=30)


def _needles(app: SafeEye) -> dict[str, bytes]:
    """Every sealed value and plaintext identifier of the case, as it is stored."""
    found: dict[str, bytes] = {"code": CODE.encode(), "consent": CONSENT.encode()}
    with app.db.session(read_only=True) as session:
        case = session.execute(select(Case).where(Case.code == CODE)).scalar_one()
        key = app.keys.case_key(case)
        found["wrapped key"] = case.wrapped_key or b""
        found["sealed consent"] = case.consent_sealed or b""
        for ref in session.scalars(select(Reference).where(Reference.case_id == case.id)):
            found[f"sealed label {ref.id}"] = ref.label_sealed or b""
            found[f"sealed hashes {ref.id}"] = ref.hashes_sealed
            found[f"content digest {ref.id}"] = ref.content_digest.encode()
            sha256, md5 = open_reference_hashes(key, ref.id, ref.hashes_sealed)
            found[f"reference sha256 {ref.id}"] = sha256.encode()
            found[f"reference sha256 raw {ref.id}"] = bytes.fromhex(sha256)
            found[f"reference md5 {ref.id}"] = md5.encode()
        for face in session.scalars(select(ReferenceFace).where(ReferenceFace.case_id == case.id)):
            found[f"sealed embedding {face.id}"] = face.embedding_sealed
        for features in session.scalars(
            select(ReferenceFeatures).where(ReferenceFeatures.case_id == case.id)
        ):
            found[f"sealed features {features.id}"] = features.features_sealed
        for row in session.scalars(select(ReferenceHash).where(ReferenceHash.case_id == case.id)):
            found[f"sealed pdq {row.id}"] = row.hash_sealed
            found[f"pdq {row.id}"] = open_reference_hash(key, row.id, row.hash_sealed).encode()
        for match in session.scalars(select(Match).where(Match.case_id == case.id)):
            found[f"sealed evidence {match.id}"] = match.evidence_sealed
            media = session.get(Media, match.media_id)
            assert media is not None
            found[f"matched media sha256 {media.id}"] = media.sha256.encode()
            found[f"matched media raw sha256 {media.id}"] = bytes.fromhex(media.sha256)
    return {name: value for name, value in found.items() if value}


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


def _fragments(value: bytes) -> list[bytes]:
    """Pieces of a value to look for: a long one spans database pages, so its whole run of
    bytes need not stand anywhere in one piece, but each 24-byte stretch of it would."""
    if len(value) <= 48:
        return [value]
    middle = len(value) // 2
    return [value[:24], value[middle : middle + 24], value[-24:]]


def _found(needles: dict[str, bytes], content: bytes) -> set[str]:
    return {name for name, value in needles.items() if any(f in content for f in _fragments(value))}


STORED_AS_IS = ("code", "wrapped key", "sealed", "content digest", "matched media sha256 ")


def test_a_purge_leaves_no_byte_of_the_case_in_the_data_dir(
    app: SafeEye, monitor: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    act(app, create_case, CODE, CONSENT)
    act(app, add_faces, CODE, [FACES / "obama.jpg"])
    act(app, add_known, CODE, [FACES / "obama2.jpg"])
    act(app, create_case, "OTHER-1")  # another case stays readable
    act(app, add_faces, "OTHER-1", [FACES / "biden2.jpg"])
    leaked = tmp_path / "leaked.jpg"
    shutil.copy(FACES / "obama3.jpg", leaked)
    (result,) = Scanner(app).scan_paths([leaked])
    assert [m.case for m in result.matches] == [CODE]
    needles = _needles(app)
    data_dir = app.settings.data_dir
    before = _found(needles, b"".join(p.read_bytes() for p in _files(data_dir)))
    # The test looks where the values are: each stored value is found before the purge (in
    # the database or its write-ahead log), so not finding it later means something; the
    # plaintext of what is sealed (consent, hashes) is never found at all.
    assert {n for n in needles if n.startswith(STORED_AS_IS)} <= before
    assert not {n for n in needles if n.startswith(("consent", "reference", "pdq"))} & before

    act(app, purge_case, CODE)

    assert monitor.poll() is None  # the monitor kept the database open all along
    leftovers = []
    for path in _files(data_dir):
        content = path.read_bytes()
        leftovers += [
            f"{name} in {path.name}" for name, value in needles.items() if value in content
        ]
    assert leftovers == []
    with app.db.session(read_only=True) as session:  # the other case and the log are intact
        other = session.execute(select(Case).where(Case.code == "OTHER-1")).scalar_one()
        assert app.keys.case_key(other)
        assert app.audit.verify(session).ok
        purged = session.execute(
            select(AuditEvent).where(AuditEvent.action == "case.purged")
        ).scalar_one()
        assert CODE not in str(purged.details)
