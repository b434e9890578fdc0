"""Storing a scan: media, its signals, the sighting, and the matches, with audit events."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from safeeye.app import SafeEye
from safeeye.cases.sealing import seal_match_evidence
from safeeye.crypto import seal, unseal
from safeeye.db.models import Case, Match, Media, MediaFace, MediaFrame, Sighting, SignalValue
from safeeye.db.states import MatchStatus, MediaStatus, move
from safeeye.db.types import utcnow
from safeeye.errors import MediaError
from safeeye.matching.rules import MatchCandidate
from safeeye.media.decode import MediaInfo
from safeeye.pipeline.analyze import FrameAnalysis, MediaAnalysis
from safeeye.signals import registry
from safeeye.signals.faces import Face, FaceSignal
from safeeye.signals.hashes import ContentHashes
from safeeye.signals.nudity import NudityResult, NuditySignal
from safeeye.signals.variants import PdqSignal
from safeeye.signals.vpdq import VpdqSignal
from safeeye.work import Work

#: The signals kept in dedicated columns (``media_frames``, ``media_faces``, ``media``): the
#: matcher indexes PDQ and face embeddings (sealed under the signals key), the review queue
#: sorts by the sexual-content score, vPDQ is exchanged in its own text form. Every other
#: signal is stored by the same loop in ``signal_values``, by name and version, so a new one
#: needs no migration.
INDEXED_SIGNALS = frozenset({PdqSignal.name, FaceSignal.name, NuditySignal.name, VpdqSignal.name})
_PDQ, _VPDQ = PdqSignal(), VpdqSignal()


@dataclass
class SightingFacts:
    """Where and how the media was seen (for a local file, just its path)."""

    location: str
    page_url: str | None = None
    final_url: str | None = None
    http_status: int | None = None
    http_headers: dict[str, str] | None = None
    server_ip: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    source_id: int | None = None


@dataclass(frozen=True)
class StoredMatch:
    match_id: int
    case_code: str
    candidate: MatchCandidate
    new: bool


def find_scanned_media(session: Session, sha256: str) -> Media | None:
    """The media row for this content if it was scanned successfully before."""
    media = session.execute(select(Media).where(Media.sha256 == sha256)).scalar_one_or_none()
    return media if media is not None and media.status == "scanned" else None


def media_row(session: Session, hashes: ContentHashes) -> Media:
    """The media row of this content, made (pending, queued now) if there is none yet."""
    media = session.execute(select(Media).where(Media.sha256 == hashes.sha256)).scalar_one_or_none()
    if media is not None:
        return media
    media = Media(
        sha256=hashes.sha256,
        md5=hashes.md5,
        size_bytes=hashes.size,
        status=MediaStatus.PENDING,
        attempts=0,
        queued_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(media)
    except DBIntegrityError:  # another worker took the same content in just now
        media = session.execute(select(Media).where(Media.sha256 == hashes.sha256)).scalar_one()
    return media


def store_media(work: Work, path: Path | None, analysis: MediaAnalysis) -> Media | None:
    """Create or update the media row with the analysis; None for content with no bytes."""
    app, session = work.app, work.session
    hashes = analysis.hashes
    if hashes.size == 0:
        return None
    media = media_row(session, hashes)
    if media.status == MediaStatus.SCANNED:
        return media
    info = analysis.info
    if info is not None:
        media.media_type, media.format = info.media_type, info.format
        media.width, media.height, media.duration = info.width, info.height, info.duration
    media.scanned_at = utcnow()
    if analysis.error is not None and not analysis.frames:
        # Least data kept: content that could not be scanned (unsupported, broken, hostile)
        # leaves only its hashes and the failure, never its bytes.
        move(media, MediaStatus.FAILED)
        media.error = analysis.error.as_text()
        return media
    if path is not None and media.blob_address is None:
        media.blob_address = app.blobs.put_file(path, app.keys.media, "media", hashes.sha256)
    move(media, MediaStatus.SCANNED)
    media.error = analysis.error.as_text() if analysis.error else None
    media.face_count = analysis.face_count
    media.sexual_score = analysis.sexual_score
    media.sexual_scores = analysis.sexual_scores
    media.vpdq = _VPDQ.encode(analysis.vpdq) if analysis.vpdq else None
    session.flush()
    for frame in analysis.frames:
        pdq = frame.pdq
        session.add(
            MediaFrame(
                media_id=media.id,
                frame_index=frame.index,
                time=frame.time,
                reason=frame.reason,
                pdq_hex=pdq.hex if pdq else None,
                pdq_quality=pdq.quality if pdq else None,
                pdq_variants=_PDQ.encode(frame.variants),
                sexual_score=frame.nudity.sexual_score,
                sexual_scores=dict(frame.nudity.scores),
                face_count=len(frame.faces),
            )
        )
        for face in frame.faces:
            row = MediaFace(
                media_id=media.id,
                frame_index=frame.index,
                frame_time=frame.time,
                box=list(face.box),
                embedding_sealed=b"",
            )
            session.add(row)
            session.flush()
            row.embedding_sealed = seal(
                app.keys.signals,
                face.embedding.astype(np.float32).tobytes(),
                f"media-face:{row.id}".encode(),
            )
    store_signal_values(work, media.id, analysis)
    return media


def store_signal_values(work: Work, media_id: int, analysis: MediaAnalysis) -> None:
    """Every stored signal not in ``INDEXED_SIGNALS``, in ``signal_values``: a row per frame
    with a value, or one per media for a whole-file or whole-media signal."""
    registry.load_modules(work.app.settings.signal_modules)
    rows = [
        {
            "media_id": media_id,
            "frame_index": index,
            "signal": signal.name,
            "version": signal.version,
            "value": signal.encode(value),
        }
        for signal in registry.signals()
        if signal.stored and signal.name not in INDEXED_SIGNALS
        for index, value in analysis.signal_values(signal)
    ]
    if rows:
        work.session.execute(insert(SignalValue), rows)


def stored_analysis(app: SafeEye, media: Media) -> MediaAnalysis:
    """The analysis of already-scanned media, rebuilt from the database for re-matching: the
    indexed signals from their columns, the others from ``signal_values`` (a value of another
    version than the registered signal's is left out: it would need a new scan)."""
    registry.load_modules(app.settings.signal_modules)
    faces_by_frame: dict[int, list[Face]] = {}
    for row in media.faces:
        raw = unseal(app.keys.signals, row.embedding_sealed, f"media-face:{row.id}".encode())
        faces_by_frame.setdefault(row.frame_index, []).append(
            Face(box=tuple(row.box), score=0.0, embedding=np.frombuffer(raw, dtype=np.float32))  # type: ignore[arg-type]
        )
    frames = []
    for f in media.frames:
        values: dict[str, Any] = {
            NuditySignal.name: NudityResult((), f.sexual_scores or {}, f.sexual_score or 0.0),
            FaceSignal.name: faces_by_frame.get(f.frame_index, []),
        }
        if f.pdq_variants:
            values[PdqSignal.name] = _PDQ.decode(f.pdq_variants)
        frames.append(FrameAnalysis(f.frame_index, f.time, f.reason, values))
    media_values: dict[str, Any] = {VpdqSignal.name: _VPDQ.decode(media.vpdq)} if media.vpdq else {}
    _read_signal_values(media, frames, media_values)
    info = None
    if media.media_type:
        info = MediaInfo(
            media_type=media.media_type,  # type: ignore[arg-type]
            format=media.format or "",
            width=media.width or 0,
            height=media.height or 0,
            duration=media.duration,
            frame_count=None,
            animated=False,
        )
    error = None
    if media.error:
        code, _, message = media.error.partition(": ")
        error = MediaError(message, code=code)
    return MediaAnalysis(
        hashes=ContentHashes(media.sha256, media.md5, media.size_bytes),
        info=info,
        frames=frames,
        values=media_values,
        error=error,
    )


def _read_signal_values(
    media: Media, frames: list[FrameAnalysis], media_values: dict[str, Any]
) -> None:
    """The generically stored values of ``media``, decoded into its frames and ``media_values``."""
    session = Session.object_session(media)
    if session is None:
        return
    by_index = {frame.index: frame for frame in frames}
    rows = session.execute(select(SignalValue).where(SignalValue.media_id == media.id)).scalars()
    for row in rows:
        signal = registry.get(row.signal)
        if signal is None or signal.version != row.version:
            continue
        if row.frame_index is None:
            media_values[row.signal] = signal.decode(row.value)
        elif row.frame_index in by_index:
            by_index[row.frame_index].values[row.signal] = signal.decode(row.value)


def location_key(location: str) -> str:
    """The key a location is indexed by (URLs can be longer than an index entry may be)."""
    return hashlib.sha256(location.encode()).hexdigest()


def store_sighting(
    session: Session, media: Media | None, analysis: MediaAnalysis, facts: SightingFacts
) -> Sighting:
    """Record that this content was seen at ``facts.location`` now (once per location and
    content: a repeat sighting only moves ``last_seen_at``)."""
    error = analysis.error.as_text() if analysis.error else None
    return record_sighting(session, media, analysis.hashes.sha256, facts, error)


def seen_again(sighting: Sighting) -> None:
    """The same content was seen at the same place again."""
    sighting.last_seen_at = utcnow()
    sighting.times_seen += 1


def record_sighting(
    session: Session,
    media: Media | None,
    sha256: str,
    facts: SightingFacts,
    error: str | None = None,
) -> Sighting:
    """The sighting of content ``sha256`` at ``facts.location``, created or seen again."""
    key = location_key(facts.location)
    existing = session.execute(
        select(Sighting).where(Sighting.location_key == key, Sighting.sha256 == sha256)
    ).scalar_one_or_none()
    if existing is not None:
        seen_again(existing)
        if existing.media_id is None and media is not None:
            existing.media_id = media.id
        session.flush()
        return existing
    sighting = Sighting(
        media_id=media.id if media is not None else None,
        source_id=facts.source_id,
        sha256=sha256,
        location=facts.location,
        location_key=key,
        page_url=facts.page_url,
        final_url=facts.final_url,
        http_status=facts.http_status,
        http_headers=facts.http_headers,
        server_ip=facts.server_ip,
        evidence=facts.evidence or None,
        error=error,
    )
    try:
        with session.begin_nested():
            session.add(sighting)
    except DBIntegrityError:  # the same sighting was stored by another worker just now
        return record_sighting(session, media, sha256, facts, error)
    return sighting


def store_matches(work: Work, media: Media, candidates: list[MatchCandidate]) -> list[StoredMatch]:
    """Create or update one match per (media, case, kind); new matches are audited."""
    app, session = work.app, work.session
    stored = []
    for candidate in candidates:
        case = session.get(Case, candidate.case_id)
        if case is None or case.status == "purged":
            continue
        match = session.execute(
            select(Match).where(
                Match.media_id == media.id, Match.case_id == case.id, Match.kind == candidate.kind
            )
        ).scalar_one_or_none()
        key = app.keys.case_key(case)
        new = match is None
        if match is None:
            match = Match(
                media_id=media.id,
                case_id=case.id,
                kind=candidate.kind,
                distance=candidate.distance,
                frame_count=candidate.frame_count,
                evidence_sealed=b"",
                status=MatchStatus.PENDING,
            )
            session.add(match)
            session.flush()
            match.evidence_sealed = seal_match_evidence(key, match.id, candidate.evidence())
            work.audit(
                "match.created",
                "match",
                match.id,
                {
                    "kind": candidate.kind,
                    "distance": round(candidate.distance, 4),
                    "frames": candidate.frame_count,
                },
                case=(case.id, key),
                private={"case": case.code, "media": media.id},
            )
        elif candidate.distance < match.distance or candidate.frame_count != match.frame_count:
            match.distance, match.frame_count = candidate.distance, candidate.frame_count
            match.evidence_sealed = seal_match_evidence(key, match.id, candidate.evidence())
        stored.append(StoredMatch(match.id, case.code, candidate, new))
    return stored


@dataclass(frozen=True)
class Stored:
    """A file taken in: its media row (new or known), the sighting, and whether it waits for
    a scan."""

    media_id: int | None
    sighting_id: int
    media_status: str | None
    new_sighting: bool


def store_file(work: Work, path: Path, hashes: ContentHashes, facts: SightingFacts) -> Stored:
    """Store first: the encrypted blob and a media row waiting to be scanned (unless this
    content was scanned before), and the sighting, so that any worker can scan it from the
    blob store. Content that failed before is queued again (a person or a source offers it
    anew). The blob is written before the unit of work takes the database's write lock."""
    app, session = work.app, work.session
    media = None
    address = None
    if hashes.size > 0:
        with app.db.session(read_only=True) as look:
            known = look.execute(
                select(Media.status, Media.blob_address).where(Media.sha256 == hashes.sha256)
            ).first()
        if known is None or (known.status != MediaStatus.SCANNED and known.blob_address is None):
            address = app.blobs.put_file(path, app.keys.media, "media", hashes.sha256)
        media = media_row(session, hashes)
        if media.status == MediaStatus.FAILED:
            move(media, MediaStatus.PENDING)
            media.error, media.attempts, media.queued_at = None, 0, utcnow()
        if media.status == MediaStatus.PENDING and media.blob_address is None:
            media.blob_address = address or app.blobs.put_file(
                path, app.keys.media, "media", hashes.sha256
            )
    error = None if media is not None else "empty: the file is empty (0 bytes)"
    sighting = record_sighting(session, media, hashes.sha256, facts, error)
    work.audit(
        "sighting.recorded",
        "sighting",
        sighting.id,
        {"media": media.id if media else None, "times_seen": sighting.times_seen},
    )
    return Stored(
        media.id if media else None,
        sighting.id,
        media.status if media else None,
        sighting.times_seen == 1,
    )
