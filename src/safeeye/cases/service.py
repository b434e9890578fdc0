"""Cases: registration under a pseudonymous code, consent, references, purge.

Every function takes the caller's unit of work (``Work``): the session, and the actor whose
role is checked and who is named in the audit log. Nothing here prints or knows HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from safeeye.cases.sealing import (
    reference_digest,
    seal_consent,
    seal_reference_hash,
    seal_reference_hashes,
)
from safeeye.crypto import seal
from safeeye.db.models import (
    AllowedPlace,
    Case,
    Match,
    Media,
    Notice,
    Reference,
    ReferenceFace,
    ReferenceFeatures,
    ReferenceHash,
    Review,
    Sighting,
    SosReport,
    UrlState,
)
from safeeye.db.states import CaseStatus, move
from safeeye.db.types import utcnow
from safeeye.errors import ConflictError, MediaError, NotFoundError, SafeEyeError, ValidationError
from safeeye.media.decode import open_media
from safeeye.signals.hashes import ContentHashes, hash_file
from safeeye.signals.local_features import LocalFeatures, extract_features
from safeeye.signals.pdq import pdq_hash
from safeeye.signals.variants import known_hashes
from safeeye.work import Role, Work

CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")


@dataclass(frozen=True)
class ReferenceOutcome:
    """What happened to one file given as a reference."""

    input: str
    reference_id: int | None
    faces: int = 0
    hashes: int = 0
    error: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class CaseSummary:
    """A case as the CLI, the web pages and the API show it (never its key or consent text)."""

    id: int
    code: str
    status: str
    consent: bool
    face_references: int
    known_references: int
    matches: int
    created_at: str


@dataclass(frozen=True)
class PurgeReport:
    """What a purge destroyed."""

    code: str
    references: int
    media: int
    blobs: int


def get_case(session: Session, code: str) -> Case:
    case = session.execute(select(Case).where(Case.code == code)).scalar_one_or_none()
    if case is None:
        raise NotFoundError(f"no case with code {code!r}")
    return case


def _open_case(session: Session, code: str) -> Case:
    case = get_case(session, code)
    if case.status == CaseStatus.PURGED:
        raise ConflictError(f"case {code} was purged")
    return case


#: The longest basis of consent kept (a sentence or two: where and how it was given).
MAX_CONSENT_CHARS = 2000


def create_case(
    work: Work, code: str, consent_basis: str | None = None, *, minor: bool = False
) -> CaseSummary:
    """Register a victim under ``code`` (pseudonymous: never a name) with a fresh data key;
    ``minor``: the victim is a minor (their matches come first in review)."""
    work.require(Role.COUNSELOR, action="create cases")
    if not CODE_PATTERN.match(code):
        raise ValidationError(
            "a case code is 2–64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    consent_basis = _consent_text(consent_basis) if (consent_basis or "").strip() else None
    session = work.session
    if session.execute(select(Case.id).where(Case.code == code)).first():
        raise ConflictError(f"a case with code {code!r} exists already")
    case = Case(code=code, status=CaseStatus.OPEN, minor=minor)
    if consent_basis:
        case.consent_at = utcnow()
    session.add(case)
    session.flush()
    key, case.wrapped_key = work.app.keys.new_case_key(case.id)
    if consent_basis:
        case.consent_sealed = seal_consent(key, case.id, consent_basis)
    work.audit(
        "case.created",
        "case",
        case.id,
        {"consent": bool(consent_basis), "minor": minor},
        case=(case.id, key),
        private={"code": code},
    )
    return _summaries(session, [case])[0]


def record_consent(work: Work, code: str, basis: str) -> CaseSummary:
    """Record the victim's consent (or replace the one recorded): ``basis`` says where and how
    it was given; it is sealed under the case key, and the time is now."""
    work.require(Role.COUNSELOR, action="record consent")
    text = _consent_text(basis)
    case = _open_case(work.session, code)
    key = work.app.keys.case_key(case)
    replaced = case.consent_at is not None
    case.consent_at = utcnow()
    case.consent_sealed = seal_consent(key, case.id, text)
    work.audit(
        "case.consent_recorded",
        "case",
        case.id,
        {"replaced": replaced},
        case=(case.id, key),
        private={"case": code, "basis": text},
    )
    return _summaries(work.session, [case])[0]


def withdraw_consent(work: Work, code: str) -> tuple[CaseSummary, int]:
    """The victim withdrew her consent (told to a counselor): face matching stops at once, as
    when she withdraws it on the status page: the case's face references are deleted (the
    matcher drops them at its next refresh), the recorded consent goes, and an SOS report of
    the case shows the withdrawal. Returns the case and how many face references went."""
    work.require(Role.COUNSELOR, action="withdraw consent")
    case = _open_case(work.session, code)
    key = work.app.keys.case_key(case)
    if case.consent_at is None and case.consent_sealed is None:
        raise ConflictError("no consent is recorded for this case", code="state")
    removed = remove_face_references(work, case.id)
    now = utcnow()
    case.consent_at = case.consent_sealed = None
    report = work.session.execute(
        select(SosReport).where(SosReport.case_id == case.id)
    ).scalar_one_or_none()
    if report is not None and report.consent_withdrawn_at is None:
        report.consent_withdrawn_at = report.last_event_at = now
    work.audit(
        "case.consent_withdrawn",
        "case",
        case.id,
        {"face_references_removed": removed},
        case=(case.id, key),
        private={"case": code},
    )
    return _summaries(work.session, [case])[0], removed


def remove_face_references(work: Work, case_id: int) -> int:
    """Delete the case's face references (rows now, encrypted photos once committed); how
    many went."""
    session = work.session
    refs = list(
        session.execute(
            select(Reference).where(Reference.case_id == case_id, Reference.kind == "face")
        ).scalars()
    )
    ids = [ref.id for ref in refs]
    if not ids:
        return 0
    for model in (ReferenceFace, ReferenceHash, ReferenceFeatures):
        session.execute(delete(model).where(model.reference_id.in_(ids)))
    blobs = [ref.blob_address for ref in refs]
    session.execute(delete(Reference).where(Reference.id.in_(ids)))
    app = work.app

    def destroy_photos() -> None:
        for address in blobs:
            app.blobs.delete(address)

    work.after_commit(destroy_photos)
    return len(ids)


def set_minor(work: Work, code: str, minor: bool) -> CaseSummary:
    """Mark the victim as a minor, or not (a minor's matches come first in review)."""
    work.require(Role.COUNSELOR, action="mark a case as a minor's")
    case = _open_case(work.session, code)
    if case.minor != minor:
        case.minor = minor
        work.audit("case.minor_set", "case", case.id, {"minor": minor})
    return _summaries(work.session, [case])[0]


def _consent_text(basis: str | None) -> str:
    text = (basis or "").strip()
    if not text:
        raise ValidationError("say where and how the victim gave consent")
    if len(text) > MAX_CONSENT_CHARS:
        raise ValidationError(f"the basis of consent is at most {MAX_CONSENT_CHARS} characters")
    return text


def list_cases(work: Work) -> list[CaseSummary]:
    """Every case, oldest first (purged ones as tombstones)."""
    work.require(Role.COUNSELOR, Role.REVIEWER, Role.AUDITOR, action="list cases")
    cases = list(work.session.execute(select(Case).order_by(Case.id)).scalars())
    return _summaries(work.session, cases)


def _summaries(session: Session, cases: list[Case]) -> list[CaseSummary]:
    ids = [case.id for case in cases]
    counts = dict(
        session.execute(
            select(Match.case_id, func.count(Match.id))
            .where(Match.case_id.in_(ids))
            .group_by(Match.case_id)
        ).all()
    )
    refs: dict[tuple[int, str], int] = {
        (case_id, kind): n
        for case_id, kind, n in session.execute(
            select(Reference.case_id, Reference.kind, func.count(Reference.id))
            .where(Reference.case_id.in_(ids))
            .group_by(Reference.case_id, Reference.kind)
        )
    }
    return [
        CaseSummary(
            id=case.id,
            code=case.code,
            status=case.status,
            consent=case.consent_at is not None,
            face_references=refs.get((case.id, "face"), 0),
            known_references=refs.get((case.id, "known"), 0),
            matches=counts.get(case.id, 0),
            created_at=case.created_at.isoformat(),
        )
        for case in cases
    ]


def add_faces(work: Work, code: str, photos: list[Path]) -> list[ReferenceOutcome]:
    """Add face reference photos; each must show a face (the largest is used if several).
    Each photo commits on its own: a bad one is reported and the others are kept."""
    return _add_each(work, code, photos, _add_face)


def _add_each(
    work: Work,
    code: str,
    files: list[Path],
    add: Callable[[Work, str, Path], ReferenceOutcome],
) -> list[ReferenceOutcome]:
    work.require(Role.COUNSELOR, action="add references")
    outcomes = []
    for path in files:
        try:
            outcomes.append(add(work, code, path))
            work.commit()
        except (MediaError, OSError) as exc:
            outcomes.append(ReferenceOutcome(str(path), None, error=_error_text(exc)))
    return outcomes


def _add_face(work: Work, code: str, photo: Path) -> ReferenceOutcome:
    app = work.app
    content = hash_file(photo)
    with open_media(photo, app.settings.media_limits, app.settings.sampling) as media:
        if media.info.media_type != "image":
            raise MediaError("a face reference must be a photo, not a video", code="unsupported")
        frame = next(media.frames())
        format_ = media.info.format
    faces = app.detectors.faces.predict(frame.image)
    if not faces:
        return ReferenceOutcome(str(photo), None, error="no_face: no face was found in the photo")
    face = faces[0]
    session = work.session
    case = _open_case(session, code)
    key = app.keys.case_key(case)
    existing = _existing_reference(session, case.id, key, "face", content.sha256)
    if existing is not None:
        return ReferenceOutcome(str(photo), existing, faces=1, note="already registered")
    address = app.blobs.put_file(photo, key, f"case:{case.id}", content.sha256)
    reference = _new_reference(session, case.id, key, "face", content, photo.name)
    reference.media_type, reference.format, reference.blob_address = "image", format_, address
    row = ReferenceFace(
        reference_id=reference.id, case_id=case.id, box=list(face.box), embedding_sealed=b""
    )
    session.add(row)
    session.flush()
    row.embedding_sealed = seal(
        key, face.embedding.astype(np.float32).tobytes(), f"face:{row.id}".encode()
    )
    work.audit(
        "reference.added",
        "reference",
        reference.id,
        {"kind": "face", "faces_in_photo": len(faces)},
        case=(case.id, key),
        private={"case": code},
    )
    note = f"{len(faces)} faces in the photo; the largest was used" if len(faces) > 1 else None
    return ReferenceOutcome(str(photo), reference.id, faces=1, note=note)


def add_known(work: Work, code: str, files: list[Path]) -> list[ReferenceOutcome]:
    """Add known images or videos of the victim; they are matched by exact and perceptual hash.
    Each file commits on its own: a bad one is reported and the others are kept."""
    return _add_each(work, code, files, _add_known)


def _add_known(work: Work, code: str, path: Path) -> ReferenceOutcome:
    app = work.app
    content = hash_file(path)
    rows: list[tuple[str, str, int, float]] = []  # variant, hex, quality, frame time
    features: list[LocalFeatures] = []
    with open_media(path, app.settings.media_limits, app.settings.sampling) as media:
        info = media.info
        for frame in media.frames():
            if info.media_type == "image" and not info.animated:
                rows.extend(
                    (v.variant, v.hash.hex, v.hash.quality, 0.0) for v in known_hashes(frame.image)
                )
                features = [
                    extract_features(frame.image),
                    extract_features(frame.image, mirrored=True),
                ]
            else:
                h = pdq_hash(frame.image)
                rows.append((f"frame:{frame.reason}", h.hex, h.quality, frame.time))
    session = work.session
    case = _open_case(session, code)
    key = app.keys.case_key(case)
    existing = _existing_reference(session, case.id, key, "known", content.sha256)
    if existing is not None:
        return ReferenceOutcome(str(path), existing, note="already registered")
    address = app.blobs.put_file(path, key, f"case:{case.id}", content.sha256)
    reference = _new_reference(session, case.id, key, "known", content, path.name)
    reference.media_type, reference.format = info.media_type, info.format
    reference.blob_address = address
    hash_rows = [
        ReferenceHash(
            reference_id=reference.id,
            case_id=case.id,
            algorithm="pdq",
            variant=variant,
            hash_sealed=b"",
            quality=quality,
            frame_time=time,
        )
        for variant, _hex, quality, time in rows
    ]
    session.add_all(hash_rows)
    session.flush()
    for row, (_variant, hex_, _quality, _time) in zip(hash_rows, rows, strict=True):
        row.hash_sealed = seal_reference_hash(key, row.id, hex_)
    for feature_set in features:
        row = ReferenceFeatures(
            reference_id=reference.id,
            case_id=case.id,
            mirrored=feature_set.mirrored,
            features_sealed=b"",
        )
        session.add(row)
        session.flush()
        row.features_sealed = seal(key, feature_set.to_bytes(), f"features:{row.id}".encode())
    work.audit(
        "reference.added",
        "reference",
        reference.id,
        {"kind": "known", "media_type": info.media_type, "hashes": len(rows)},
        case=(case.id, key),
        private={"case": code},
    )
    return ReferenceOutcome(str(path), reference.id, hashes=len(rows))


def _existing_reference(
    session: Session, case_id: int, key: bytes, kind: str, sha256: str
) -> int | None:
    """The id of the case's reference with this content, if it was given before."""
    return session.execute(
        select(Reference.id).where(
            Reference.case_id == case_id,
            Reference.kind == kind,
            Reference.content_digest == reference_digest(key, kind, sha256),
        )
    ).scalar_one_or_none()


def _new_reference(
    session: Session, case_id: int, key: bytes, kind: str, content: ContentHashes, name: str
) -> Reference:
    """A reference row with its content hashes and file name sealed under the case key."""
    reference = Reference(
        case_id=case_id,
        kind=kind,
        content_digest=reference_digest(key, kind, content.sha256),
        hashes_sealed=b"",
        media_type="image",
        blob_address="",
        label_sealed=seal(key, name.encode(), b"label"),
    )
    session.add(reference)
    session.flush()
    reference.hashes_sealed = seal_reference_hashes(key, reference.id, content.sha256, content.md5)
    return reference


def purge_case(work: Work, code: str) -> PurgeReport:
    """Destroy a case's key, references, embeddings, matches and the media no other case needs,
    so that nothing of it can be read back from the database, its log or the blob store.

    The case row stays as a tombstone (status "purged", its code replaced by ``purged-ID``) so
    the audit trail still resolves; what the audit log says about the case was sealed under the
    case key and dies with it. Once the unit of work commits, the blobs are destroyed and, on
    SQLite, the write-ahead log is emptied (deleted content is zeroed by ``secure_delete``);
    PostgreSQL needs its operator (docs/security.md).
    """
    work.require(Role.COUNSELOR, action="purge cases")
    session = work.session
    case = _open_case(session, code)
    refs = list(session.execute(select(Reference).where(Reference.case_id == case.id)).scalars())
    matched_media = set(
        session.execute(select(Match.media_id).where(Match.case_id == case.id)).scalars()
    )
    shared = set(
        session.execute(
            select(Match.media_id).where(
                Match.media_id.in_(matched_media), Match.case_id != case.id
            )
        ).scalars()
    )
    media_rows = list(
        session.execute(select(Media).where(Media.id.in_(matched_media - shared))).scalars()
    )
    blobs = [ref.blob_address for ref in refs]
    blobs += [m.blob_address for m in media_rows if m.blob_address]
    session.execute(
        update(UrlState)
        .where(UrlState.sha256.in_([m.sha256 for m in media_rows]))
        .values(sha256=None)
    )
    session.execute(delete(Sighting).where(Sighting.media_id.in_([m.id for m in media_rows])))
    for media in media_rows:
        session.delete(media)
    for ref in refs:
        session.delete(ref)
    # What links the case to content, and the SOS report that opened it (its PIN hash and
    # dates need not outlive the case; what it said was sealed under the case key).
    for model in (Notice, Review, AllowedPlace, Match, SosReport):
        session.execute(delete(model).where(model.case_id == case.id))
    case.wrapped_key = case.consent_sealed = None
    case.code = f"purged-{case.id}"
    move(case, CaseStatus.PURGED)
    case.purged_at = utcnow()
    report = PurgeReport(code, references=len(refs), media=len(media_rows), blobs=len(blobs))
    work.audit(
        "case.purged", "case", case.id, {"references": report.references, "media": report.media}
    )
    app = work.app

    def destroy_files() -> None:
        # The rows are gone and the key with them; now the files (a blob left by a failure
        # here is encrypted under a destroyed case key, or is media no case matches any more).
        for address in blobs:
            app.blobs.delete(address)
        app.db.flush_deleted()

    work.after_commit(destroy_files)
    return report


def _error_text(exc: Exception) -> str:
    if isinstance(exc, SafeEyeError):
        return exc.as_text()
    return f"io: {exc.strerror or exc.__class__.__name__}" if isinstance(exc, OSError) else str(exc)
