"""What a reviewer sees of a match, and no more: the picture blurred unless they ask, the face
they matched cropped beside the victim's reference face, and why it matched in words and
numbers. Pictures are made on request from the encrypted store, in memory; each sharp one is
an audit event (``media.revealed``).

Stills only for now: a video's frames are shown as times (``MatchView.frames``) until frames
are cut from the store in a worker process.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image
from sqlalchemy import select

from safeeye.cases.sealing import open_match_evidence
from safeeye.db.models import Case, Match, Media, Reference, ReferenceFace
from safeeye.errors import NotFoundError, ValidationError
from safeeye.media.blur import blurred
from safeeye.media.images import decode_still
from safeeye.review.matches import threshold_of
from safeeye.work import Role, Work

#: The longest side of a preview, in pixels (enough to decide, no more).
PREVIEW_SIDE = 640
#: A face crop's margin around the detector's box, as a share of the box's size.
CROP_MARGIN = 0.35
CROP_SIDE = 256


@dataclass(frozen=True)
class Picture:
    """A JPEG made for one look: ``blurred`` unless the reviewer asked for it sharp."""

    jpeg: bytes
    blurred: bool
    width: int
    height: int


@dataclass(frozen=True)
class FrameReason:
    """One frame that matched: when, how close, against which reference, and where."""

    time: float
    distance: float
    reference_id: int
    box: tuple[int, int, int, int] | None  # the found face (x, y, w, h), face matches only


@dataclass(frozen=True)
class MatchView:
    """Why a match was made, in numbers a reviewer can decide by."""

    match_id: int
    case: str
    kind: str  # face | hash | local
    exact: bool
    distance: float
    threshold: float | None
    frame_count: int
    frames: tuple[FrameReason, ...]
    media_type: str | None
    sexual_score: float | None
    status: str

    def why(self) -> str:
        """The match in one sentence (English; the pages translate the parts)."""
        if self.exact:
            return "the same file as one the victim registered"
        limit = f" (matches at or under {self.threshold:g})" if self.threshold else ""
        seen = f" in {self.frame_count} frames" if self.frame_count > 1 else ""
        what = {"face": "face distance", "hash": "PDQ distance"}.get(self.kind, "distance")
        return f"{what} {self.distance:.3g}{limit}{seen}"


def match_view(work: Work, match_id: int) -> MatchView:
    """Why match ``match_id`` was made (no picture)."""
    work.require(Role.REVIEWER, Role.COUNSELOR, Role.AUDITOR, action="read matches")
    match, case, media = _load(work, match_id)
    evidence = open_match_evidence(work.app.keys.case_key(case), match.id, match.evidence_sealed)
    frames = tuple(
        FrameReason(
            time=float(f["time"]),
            distance=float(f["distance"]),
            reference_id=int(f["reference_id"]),
            box=_box(f.get("detail")) if evidence.get("kind") == "face" else None,
        )
        for f in evidence.get("frames", [])
    )
    return MatchView(
        match_id=match.id,
        case=case.code,
        kind=match.kind,
        exact=bool(evidence.get("exact")),
        distance=float(match.distance),
        threshold=threshold_of(work.app.settings, match.kind),
        frame_count=int(evidence.get("frame_count") or len(frames)),
        frames=frames,
        media_type=media.media_type,
        sexual_score=media.sexual_score,
        status=match.status,
    )


def match_preview(work: Work, match_id: int, *, reveal: bool = False) -> Picture:
    """The matched picture, at most ``PREVIEW_SIDE`` pixels, blurred unless ``reveal``."""
    work.require(Role.REVIEWER, action="look at matched media")
    match, _case, media = _load(work, match_id)
    picture = _still(work, media)
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    if reveal:
        _revealed(work, match, "preview")
    return _jpeg(picture, blur=not reveal)


def face_pair(work: Work, match_id: int, *, reveal: bool = False) -> tuple[Picture, Picture]:
    """The victim's reference face and the face found, cropped side by side (blurred unless
    ``reveal``): the least that decides a face match."""
    work.require(Role.REVIEWER, action="look at matched faces")
    view = match_view(work, match_id)
    if view.kind != "face" or not view.frames or view.frames[0].box is None:
        raise ValidationError("only a face match has faces to compare")
    best = min(view.frames, key=lambda f: f.distance)
    match, case, media = _load(work, match_id)
    assert best.box is not None
    found = _crop(_still(work, media), best.box)
    reference = work.session.get(Reference, best.reference_id)
    face = work.session.scalars(
        select(ReferenceFace).where(ReferenceFace.reference_id == best.reference_id).limit(1)
    ).first()
    if reference is None or face is None:
        raise NotFoundError("the reference face was removed from the case")
    data = work.app.blobs.get_bytes(reference.blob_address, work.app.keys.case_key(case))
    theirs = _crop(Image.fromarray(decode_still(data)), tuple(face.box))  # type: ignore[arg-type]
    if reveal:
        _revealed(work, match, "faces")
    return _jpeg(theirs, blur=not reveal), _jpeg(found, blur=not reveal)


def _load(work: Work, match_id: int) -> tuple[Match, Case, Media]:
    session = work.session
    match = session.get(Match, match_id)
    case = session.get(Case, match.case_id) if match is not None else None
    media = session.get(Media, match.media_id) if match is not None else None
    if match is None or case is None or media is None or case.wrapped_key is None:
        raise NotFoundError(f"no match {match_id}")
    return match, case, media


def _still(work: Work, media: Media) -> Image.Image:
    if media.media_type not in ("image", None) or not media.blob_address:
        raise ValidationError("previews of videos are their frame times for now")
    data = work.app.blobs.get_bytes(media.blob_address, work.app.keys.media)
    return Image.fromarray(decode_still(data))


def _crop(picture: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    x, y, w, h = box
    margin_x, margin_y = int(w * CROP_MARGIN), int(h * CROP_MARGIN)
    area = (
        max(0, x - margin_x),
        max(0, y - margin_y),
        min(picture.width, x + w + margin_x),
        min(picture.height, y + h + margin_y),
    )
    crop = picture.crop(area)
    crop.thumbnail((CROP_SIDE, CROP_SIDE))
    return crop


def _jpeg(picture: Image.Image, *, blur: bool) -> Picture:
    shown = blurred(picture.convert("RGB")) if blur else picture.convert("RGB")
    out = io.BytesIO()
    shown.save(out, "JPEG", quality=85)
    return Picture(out.getvalue(), blur, shown.width, shown.height)


def _revealed(work: Work, match: Match, what: str) -> None:
    work.audit("media.revealed", "match", match.id, {"what": what})


def _box(detail: object) -> tuple[int, int, int, int] | None:
    try:
        x, y, w, h = (int(v) for v in str(detail).split(","))
    except ValueError:
        return None
    return x, y, w, h
