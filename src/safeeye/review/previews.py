"""What a reviewer sees of a match, and no more: the picture blurred unless they ask, the face
they matched cropped beside the victim's reference face, and why it matched in words and
numbers. Pictures are made on request from the encrypted store, in memory; each sharp one is
an audit event (``media.revealed``).

A blurred picture is blurred at the person's level (``accounts.BlurLevel``: strong unless they
chose otherwise) and may be greyscale. A video is shown as frames, never played: the frame the
match is about, and a strip of a few matched frames with their times (``frame_strip``), cut
from the stored file in memory.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image, ImageFilter
from sqlalchemy import select

from safeeye.accounts.model import BlurLevel
from safeeye.cases.sealing import open_match_evidence
from safeeye.db.models import Case, Match, Media, Reference, ReferenceFace
from safeeye.errors import MediaError, NotFoundError, ValidationError
from safeeye.media.blur import DIVISOR, MIN_RADIUS, blurred
from safeeye.media.images import decode_still
from safeeye.review.matches import threshold_of
from safeeye.work import Role, Work

#: The longest side of a preview, in pixels (enough to decide, no more).
PREVIEW_SIDE = 640
#: A face crop's margin around the detector's box, as a share of the box's size.
CROP_MARGIN = 0.35
CROP_SIDE = 256
#: The most frames a video's strip shows (matched frames, spread over the video).
STRIP_FRAMES = 6
#: A video is cut into frames in memory only up to this size (larger: its frame times only).
MAX_VIDEO_PREVIEW_BYTES = 512 * 1024 * 1024
#: Videos decrypted into memory at once, across all requests of this process.
VIDEO_SLOTS = 2
_video_slots = threading.BoundedSemaphore(VIDEO_SLOTS)
#: Frames decoded after a seek before giving up on reaching the wanted time.
MAX_FRAMES_AFTER_SEEK = 3000
#: A frame's time as stored in the evidence is rounded to milliseconds.
TIME_TOLERANCE = 0.002

Side = Literal["reference", "found"]


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


def match_preview(
    work: Work,
    match_id: int,
    *,
    reveal: bool = False,
    level: BlurLevel | str = BlurLevel.STRONG,
    greyscale: bool = False,
) -> Picture:
    """The matched picture (for a video, the frame that matched best), at most
    ``PREVIEW_SIDE`` pixels, blurred at ``level`` (and ``greyscale`` if asked) unless
    ``reveal``."""
    work.require(Role.REVIEWER, action="look at matched media")
    blur = _level(level)
    match, _case, media = _load(work, match_id)
    if _is_video(media):
        view = match_view(work, match_id)
        best = min(view.frames, key=lambda f: f.distance).time if view.frames else 0.0
        (picture,) = _video_frames_of(work, media, [best])
    else:
        picture = _still(work, media)
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    if reveal:
        _revealed(work, match, "preview")
    return _jpeg(picture, blur=None if reveal else blur, greyscale=greyscale)


def frame_strip(view: MatchView) -> tuple[float, ...]:
    """The times (seconds) of a video's strip: its matched frames, at most ``STRIP_FRAMES``
    spread from first to last (the best one always among them); none for a still."""
    if view.media_type != "video":
        return ()
    times = sorted({f.time for f in view.frames}) or [0.0]
    if len(times) <= STRIP_FRAMES:
        return tuple(times)
    picked = {times[round(i * (len(times) - 1) / (STRIP_FRAMES - 1))] for i in range(STRIP_FRAMES)}
    best = min(view.frames, key=lambda f: f.distance).time
    if best not in picked:
        picked.remove(min(picked, key=lambda t: abs(t - best)))
        picked.add(best)
    return tuple(sorted(picked))


def match_frame(
    work: Work,
    match_id: int,
    number: int,
    *,
    reveal: bool = False,
    level: BlurLevel | str = BlurLevel.STRONG,
    greyscale: bool = False,
) -> tuple[float, Picture]:
    """Frame ``number`` of a video match's strip (``frame_strip``) and its time, at most
    ``PREVIEW_SIDE`` pixels, blurred at ``level`` unless ``reveal``."""
    work.require(Role.REVIEWER, action="look at matched media")
    blur = _level(level)
    view = match_view(work, match_id)
    strip = frame_strip(view)
    if not strip:
        raise ValidationError("only a video match has frames to show")
    if not 0 <= number < len(strip):
        raise NotFoundError(f"match {match_id} has frames 0 to {len(strip) - 1}")
    match, _case, media = _load(work, match_id)
    (picture,) = _video_frames_of(work, media, [strip[number]])
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    if reveal:
        _revealed(work, match, f"frame {number}")
    return strip[number], _jpeg(picture, blur=None if reveal else blur, greyscale=greyscale)


def face_pair(
    work: Work,
    match_id: int,
    *,
    reveal: bool = False,
    level: BlurLevel | str = BlurLevel.STRONG,
    greyscale: bool = False,
) -> tuple[Picture, Picture]:
    """The victim's reference face and the face found, cropped side by side (blurred at
    ``level`` unless ``reveal``): the least that decides a face match."""
    work.require(Role.REVIEWER, action="look at matched faces")
    blur = _level(level)
    theirs = _reference_crop(work, match_id)
    found = _found_crop(work, match_id)
    if reveal:
        _revealed(work, _load(work, match_id)[0], "faces")
    shown = None if reveal else blur
    return _jpeg(theirs, blur=shown, greyscale=greyscale), _jpeg(
        found, blur=shown, greyscale=greyscale
    )


def face_crop(
    work: Work,
    match_id: int,
    side: Side | str,
    *,
    reveal: bool = False,
    level: BlurLevel | str = BlurLevel.STRONG,
    greyscale: bool = False,
) -> Picture:
    """One side of ``face_pair`` (``reference`` or ``found``), for a page that shows the two
    as two pictures."""
    work.require(Role.REVIEWER, action="look at matched faces")
    blur = _level(level)
    if side == "reference":
        crop = _reference_crop(work, match_id)
    elif side == "found":
        crop = _found_crop(work, match_id)
    else:
        raise ValidationError("a face is the reference or the found one")
    if reveal:
        _revealed(work, _load(work, match_id)[0], f"face {side}")
    return _jpeg(crop, blur=None if reveal else blur, greyscale=greyscale)


def _best_face(work: Work, match_id: int) -> FrameReason:
    view = match_view(work, match_id)
    if view.kind != "face" or not view.frames or view.frames[0].box is None:
        raise ValidationError("only a face match has faces to compare")
    return min(view.frames, key=lambda f: f.distance)


def _found_crop(work: Work, match_id: int) -> Image.Image:
    best = _best_face(work, match_id)
    assert best.box is not None
    _match, _case, media = _load(work, match_id)
    if _is_video(media):
        (picture,) = _video_frames_of(work, media, [best.time])
    else:
        picture = _still(work, media)
    return _crop(picture, best.box)


def _reference_crop(work: Work, match_id: int) -> Image.Image:
    best = _best_face(work, match_id)
    _match, case, _media = _load(work, match_id)
    reference = work.session.get(Reference, best.reference_id)
    face = work.session.scalars(
        select(ReferenceFace).where(ReferenceFace.reference_id == best.reference_id).limit(1)
    ).first()
    if reference is None or face is None:
        raise NotFoundError("the reference face was removed from the case")
    data = work.app.blobs.get_bytes(reference.blob_address, work.app.keys.case_key(case))
    return _crop(Image.fromarray(decode_still(data)), tuple(face.box))  # type: ignore[arg-type]


def _load(work: Work, match_id: int) -> tuple[Match, Case, Media]:
    session = work.session
    match = session.get(Match, match_id)
    case = session.get(Case, match.case_id) if match is not None else None
    media = session.get(Media, match.media_id) if match is not None else None
    if match is None or case is None or media is None or case.wrapped_key is None:
        raise NotFoundError(f"no match {match_id}")
    return match, case, media


def _is_video(media: Media) -> bool:
    return media.media_type == "video"


def _still(work: Work, media: Media) -> Image.Image:
    if media.media_type not in ("image", None) or not media.blob_address:
        raise ValidationError("this media has no picture to show")
    data = work.app.blobs.get_bytes(media.blob_address, work.app.keys.media)
    return Image.fromarray(decode_still(data))


def _video_frames_of(work: Work, media: Media, times: Sequence[float]) -> list[Image.Image]:
    """The frames of stored video ``media`` at ``times``; at most ``VIDEO_SLOTS`` videos are
    held in memory at once (a queue page asks for many pictures together)."""
    with _video_slots:
        return _video_frames(_video_bytes(work, media), times)


def _video_bytes(work: Work, media: Media) -> bytes:
    if not media.blob_address:
        raise NotFoundError("the video is no longer stored")
    if media.size_bytes > MAX_VIDEO_PREVIEW_BYTES:
        raise ValidationError("this video is too large to cut frames from; see its frame times")
    return work.app.blobs.get_bytes(media.blob_address, work.app.keys.media)


def _video_frames(data: bytes, times: Sequence[float]) -> list[Image.Image]:
    """The frames shown at ``times`` (seconds from the start, as the scan counted them: frame
    time minus the container's start), decoded from ``data`` in memory, upright."""
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.video:
                raise MediaError("the video has no picture track", code="corrupt")
            stream = container.streams.video[0]
            start = container.start_time
            origin = start / av.time_base if start is not None and start > 0 else 0.0
            reformatter = VideoReformatter()
            pictures = []
            for wanted in times:
                pictures.append(_frame_at(container, stream, origin, wanted, reformatter))
            return pictures
    except av.FFmpegError as exc:
        raise MediaError("the stored video cannot be decoded", code="corrupt") from exc


def _frame_at(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    origin: float,
    wanted: float,
    reformatter: VideoReformatter,
) -> Image.Image:
    """The first frame at or after ``wanted`` (the last one if the video ends before)."""
    if stream.time_base is not None:
        container.seek(int((wanted + origin) / stream.time_base), stream=stream, backward=True)
    chosen = None
    for count, frame in enumerate(container.decode(stream)):
        chosen = frame
        if frame.time is not None and frame.time - origin >= wanted - TIME_TOLERANCE:
            break
        if count >= MAX_FRAMES_AFTER_SEEK:
            break
    if chosen is None:
        raise MediaError("the video has no frame at that time", code="corrupt")
    rgb = reformatter.reformat(chosen, format="rgb24").to_ndarray()
    try:
        turns = round((chosen.rotation or 0) / 90) % 4
    except (AttributeError, ValueError):
        turns = 0
    return Image.fromarray(np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb)


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


def _level(level: BlurLevel | str) -> BlurLevel:
    try:
        return BlurLevel(level)
    except ValueError as exc:
        choices = ", ".join(b.value for b in BlurLevel)
        raise ValidationError(f"the blur level is one of {choices}") from exc


def _blurred(picture: Image.Image, level: BlurLevel) -> Image.Image:
    """``picture`` under ``level``'s blur: the shared strong blur, or a lighter one whose
    smallest radius shrinks with the level too (so a small preview is lighter as well)."""
    if level is BlurLevel.STRONG:
        return blurred(picture)
    radius = max(MIN_RADIUS * DIVISOR / level.divisor, max(picture.size) / level.divisor)
    return picture.filter(ImageFilter.GaussianBlur(radius))


def _jpeg(picture: Image.Image, *, blur: BlurLevel | None, greyscale: bool = False) -> Picture:
    """A JPEG of ``picture``: blurred at ``blur`` (and greyscale if asked), or sharp and in
    colour when ``blur`` is None (a reveal)."""
    shown = picture.convert("RGB")
    if blur is not None:
        shown = _blurred(shown, blur)
        if greyscale:
            shown = shown.convert("L")
    out = io.BytesIO()
    shown.save(out, "JPEG", quality=85)
    return Picture(out.getvalue(), blur is not None, shown.width, shown.height)


def _revealed(work: Work, match: Match, what: str) -> None:
    work.audit("media.revealed", "match", match.id, {"what": what})


def _box(detail: object) -> tuple[int, int, int, int] | None:
    try:
        x, y, w, h = (int(v) for v in str(detail).split(","))
    except ValueError:
        return None
    return x, y, w, h
