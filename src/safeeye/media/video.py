"""Video (MP4, MOV, WebM, MKV, AVI, FLV, MPEG-TS) decoded with PyAV into sampled RGB frames.

Which frames are chosen (``FramePicker``): one frame per ``SamplingPlan.interval_seconds``
(vPDQ's frames, so the video hash is compatible), every keyframe and scene changes. A keyframe
closer than ``min_gap_seconds`` to the frame chosen before it is dropped unless it is a cut.
A time range (``frames_between``) lets several workers share one long video.

Times are seconds from the start a player shows as 0:00 (frame pts x time base, minus the
container's start time), and never go backwards.
"""

from __future__ import annotations

import itertools
import math
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import av.container
import av.video
import numpy as np
from av.video.reformatter import VideoReformatter

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.errors import MediaError
from safeeye.media.base import DecodedMedia, MediaInfo
from safeeye.media.frames import Frame, FrameReason
from safeeye.media.sniff import Sniffed

# The tiny grayscale picture compared between consecutive frames to find scene changes.
SCENE_THUMB_SIZE = (32, 18)
_LUMA_FIRST_FORMATS = frozenset(
    {
        *("yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"),
        *("yuv410p", "yuv411p", "yuv440p", "yuvj440p", "nv12", "nv21", "gray"),
    }
)

# Non-reference frames (the B-frames nothing else predicts from) are decoded only when they
# are interval samples: this saves about a quarter of H.264 decoding, and the samples stay
# exactly the frames the reference vPDQ implementation hashes (in fast footage neighbouring
# frames differ by 40-128 PDQ bits, so "the next decoded frame" would not do).
SKIP_UNSAMPLED_NON_REFERENCE_FRAMES = True

# Damaged packets stepped over before a video is declared corrupt at once.
MAX_DAMAGED_PACKETS = 25

# Top-level MP4 boxes walked to find a truncated file: a fragmented hour has a few thousand; a
# hostile file of millions of empty boxes would cost seconds per 50 MB.
_MAX_TOP_LEVEL_BOXES = 100_000


@dataclass
class FramePicker:
    """Decides, frame by frame in time order, which decoded frames are kept and why.

    Interval samples follow vPDQ's rule (every ``step``-th frame counted from the first, with
    ``step = int(fps * interval)``), so the frame hashes of a scan are the same frames the
    reference vPDQ implementation hashes. Without a known frame rate, the first frame at or
    after each multiple of the interval is taken instead.
    """

    sampling: SamplingPlan
    step: int | None = None
    next_sample: float = 0.0
    last_time: float | None = None
    last_reason: FrameReason | None = None

    def choose(
        self, time: float, keyframe: bool, scene_change: bool, number: int | None = None
    ) -> FrameReason | None:
        """The reason to keep frame ``number`` shown at ``time``, or None to skip it."""
        plan = self.sampling
        if self.step is not None and number is not None:
            sample_due = number % self.step == 0
        else:
            sample_due = time >= self.next_sample
            if sample_due:
                # One sample covers every slot the gap before this frame jumped over.
                interval = plan.interval_seconds
                self.next_sample = (math.floor(time / interval) + 1) * interval
        reason: FrameReason
        if sample_due:
            reason = "sample"
        elif keyframe and plan.keyframes:
            reason = "keyframe"
        elif scene_change and plan.scene_changes:
            reason = "scene"
        else:
            return None
        if (
            reason != "sample"
            and self.last_time is not None
            and time - self.last_time < plan.min_gap_seconds
            and not scene_change
        ):
            # A keyframe just after another chosen frame shows the same picture; a cut does not.
            return None
        self.last_time, self.last_reason = time, reason
        return reason


class ShotCover:
    """Drops a keyframe or cut when the interval sample right after it shows the same shot.

    A cut is held back for ``lookahead`` seconds: if a sample arrives within that time (and no
    other cut came first), the sample covers the shot and the cut frame is dropped; otherwise
    the cut frame is released. Every shot still gets analysed, in fewer frames.
    """

    def __init__(self, lookahead: float) -> None:
        self.lookahead = lookahead
        self._held: Frame | None = None

    def push(self, frame: Frame) -> list[Frame]:
        """The frames to release now that ``frame`` was chosen, in time order."""
        held, self._held = self._held, None
        if frame.reason != "sample":
            self._held = frame
            return [held] if held is not None else []
        if held is not None and frame.time - held.time > self.lookahead:
            return [held, frame]
        return [frame]

    def passed(self, now: float) -> list[Frame]:
        """The held frame once its lookahead is over without a sample."""
        if self._held is not None and now - self._held.time > self.lookahead:
            held, self._held = self._held, None
            return [held]
        return []

    def flush(self) -> list[Frame]:
        held, self._held = self._held, None
        return [held] if held is not None else []


class VideoMedia(DecodedMedia):
    """An opened video whose first frame is already decoded; ``frames()`` streams the rest.

    The file is demuxed and decoded once, front to back, so ``frames()`` can be iterated once.
    """

    def __init__(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        info: MediaInfo,
        limits: MediaLimits,
        sampling: SamplingPlan,
        *,
        truncated: bool,
        threads: int = 0,
    ) -> None:
        self._threads = threads
        self._container: av.container.InputContainer | None = container
        self._stream = stream
        self.info = info
        self._limits = limits
        self._sampling = sampling
        self._truncated = truncated
        start = container.start_time
        self._origin = start / av.time_base if start is not None and start > 0 else 0.0
        self._packets = self._damaged = self._decoded_count = 0
        self._source: Iterator[av.VideoFrame] | None = None
        self._first: av.VideoFrame | None = None
        self._first_time = 0.0
        self._timeline_known = False
        rate = float(stream.average_rate or stream.guessed_rate or 0) or None
        self._rate = rate
        self._step = max(1, int(rate * sampling.interval_seconds)) if rate else None

    def _prime(self) -> int:
        """Start decoding and hold the first frame; returns its counter-clockwise quarter turns.

        Decoding one frame up front proves the track decodes and reveals display rotation.
        """
        assert self._container is not None
        stream = self._stream
        if self._threads == 1:
            stream.codec_context.thread_count = 1  # ~10 % less CPU than frame threads
        else:
            stream.thread_type = "AUTO"
            if self._threads > 1:
                stream.codec_context.thread_count = self._threads
        self._source = self._decoded(self._container, stream)
        self._first = next(self._source, None)
        if self._first is None:
            self._check_complete(0.0)
            raise MediaError("the video track holds no decodable frame", code="corrupt")
        first_time = self._first.time
        self._first_time = max(0.0, first_time - self._origin) if first_time is not None else 0.0
        self._timeline_known = True
        return _rotation_turns(self._first)

    def frames(self) -> Iterator[Frame]:
        """Interval samples, keyframes and scene changes, in time order, one at a time.

        Raises ``MediaError`` (``truncated``, ``corrupt``, ``too_long``, ``too_many_frames``,
        ``too_many_pixels``, ``timeout``) when the stream breaks a rule partway; frames already
        yielded remain valid.
        """
        return self.frames_between(0.0, None)

    def frames_between(self, start: float, end: float | None) -> Iterator[Frame]:
        """The frames ``frames()`` would choose whose time is in [start, end).

        Frame numbers and samples are the same as in a whole-video pass (they are derived from
        timestamps after a seek), so the parts of a video analysed by several workers join up.
        """
        if self._container is None or self._source is None or self._first is None:
            raise ValueError("frames() needs an open VideoMedia and can be iterated only once")
        first, self._first = self._first, None
        plan, limits = self._sampling, self._limits
        rate, step = self._rate, self._step
        picker = FramePicker(plan, step=step)
        shots = ShotCover(plan.shot_lookahead_seconds)
        deadline = time.monotonic() + limits.decode_timeout_seconds
        fallback_rate = rate or 25.0
        source: Iterator[av.VideoFrame] = itertools.chain([first], self._source)
        seeked = start > 0
        if seeked:
            self._seek(start)
            source = self._source
        # A reformatter kept across frames keeps its scaler context; frame.reformat() would
        # build a new one for every frame.
        to_rgb = VideoReformatter()
        thumbnail = _Thumbnailer()
        previous_thumb: np.ndarray | None = None
        last_time = 0.0
        chosen = 0
        for index, frame in enumerate(source):
            if frame.time is not None:
                frame_time = max(last_time, frame.time - self._origin)
            else:
                frame_time = index / fallback_rate
            last_time = frame_time
            if end is not None and frame_time >= end:
                return
            self._check_running(frame, frame_time, deadline)
            number = self._number(frame_time) if rate else index
            scene = False
            if plan.scene_changes:
                thumb = thumbnail(frame)
                if previous_thumb is not None:
                    scene = _difference(thumb, previous_thumb) > plan.scene_threshold
                previous_thumb = thumb
            if frame_time < start:
                continue
            reason = picker.choose(frame_time, frame.key_frame, scene, number)
            ready = shots.passed(frame_time)
            if reason is not None:
                chosen += 1
                if chosen > limits.max_frames:
                    raise MediaError(
                        f"the video yields more than {limits.max_frames:,} frames to analyse",
                        code="too_many_frames",
                    )
                image = _rgb(frame, to_rgb)
                ready += shots.push(
                    Frame(index=number, time=frame_time, image=image, reason=reason)
                )
            yield from ready
        yield from shots.flush()
        if not seeked:
            self._check_complete(last_time)
        elif self._damaged:  # packet counts cover only part of the file after a seek
            raise self._damage_error()

    def _number(self, frame_time: float) -> int:
        """The frame number at ``frame_time`` counted from the first frame (at the nominal rate;
        exact for constant-rate video, and independent of which frames were decoded)."""
        assert self._rate is not None
        return round((frame_time - self._first_time) * self._rate)

    def _is_sample_packet(self, packet: av.Packet) -> bool:
        """Whether the frame in ``packet`` is an interval sample (or might be: unknown timing)."""
        if not self._timeline_known or self._step is None or packet.pts is None:
            return True
        if packet.time_base is None:
            return True
        frame_time = float(packet.pts * packet.time_base) - self._origin
        return self._number(frame_time) % self._step == 0

    def _seek(self, start: float) -> None:
        """Restart decoding at the keyframe at or before ``start`` seconds."""
        assert self._container is not None
        stream = self._stream
        target = start + self._origin
        if stream.time_base is None:
            raise MediaError("the video has no time base; it cannot be split", code="corrupt")
        try:
            self._container.seek(
                int(target / stream.time_base), stream=stream, backward=True, any_frame=False
            )
        except av.FFmpegError as exc:
            raise self._stream_error(exc) from exc
        self._source = self._decoded(self._container, stream)

    def _decoded(
        self, container: av.container.InputContainer, stream: av.video.stream.VideoStream
    ) -> Iterator[av.VideoFrame]:
        """Every decodable frame in presentation order, stepping over damaged packets."""
        try:
            context = stream.codec_context
            for packet in container.demux(stream):
                if packet.size:
                    self._packets += 1
                if SKIP_UNSAMPLED_NON_REFERENCE_FRAMES:
                    context.skip_frame = "DEFAULT" if self._is_sample_packet(packet) else "NONREF"
                try:
                    decoded = packet.decode()
                except av.error.InvalidDataError:
                    # A damaged packet spoils a moment, not the video: carry on as players do,
                    # and report the damage once the readable parts have been yielded.
                    self._damaged += 1
                    if self._damaged > MAX_DAMAGED_PACKETS:
                        raise self._damage_error() from None
                    continue
                self._decoded_count += len(decoded)
                yield from decoded
        except av.FFmpegError as exc:
            raise self._stream_error(exc) from exc

    def _check_running(self, frame: av.VideoFrame, frame_time: float, deadline: float) -> None:
        limits = self._limits
        if frame_time > limits.max_video_seconds:
            raise MediaError(
                f"the video runs past {limits.max_video_seconds:,.0f} s, the limit",
                code="too_long",
            )
        if frame.width * frame.height > limits.max_video_pixels:
            raise MediaError(
                f"a video frame is {frame.width}x{frame.height}, over the limit of "
                f"{limits.max_video_pixels:,} pixels",
                code="too_many_pixels",
            )
        if time.monotonic() > deadline:
            raise MediaError(
                f"decoding took longer than {limits.decode_timeout_seconds:,.0f} s",
                code="timeout",
            )

    def _check_complete(self, last_time: float) -> None:
        declared = self.info.frame_count
        if self._truncated or (declared and self._packets < declared):
            raise MediaError(
                "the video data ends early (the file is truncated); "
                f"frames up to {last_time:.1f} s were read",
                code="truncated",
            )
        if self._damaged:
            raise self._damage_error()

    def _damage_error(self) -> MediaError:
        return MediaError(
            f"the {self.info.format.upper()} video is damaged ({self._damaged} unreadable "
            "packets); frames from the readable parts were still yielded",
            code="corrupt",
        )

    def _stream_error(self, exc: av.FFmpegError) -> MediaError:
        if self._truncated or isinstance(exc, av.error.EOFError):
            return MediaError("the video data ends early (the file is truncated)", code="truncated")
        return MediaError(
            f"the {self.info.format.upper()} video is damaged partway and cannot be decoded",
            code="corrupt",
        )

    def close(self) -> None:
        if self._container is not None:
            self._source = None
            self._container.close()
            self._container = None


def open_video(
    path: Path,
    found: Sniffed,
    limits: MediaLimits,
    sampling: SamplingPlan,
    *,
    threads: int = 0,
) -> VideoMedia:
    """Open a video whose bytes were sniffed as ``found``, checking its header against limits.

    Raises ``MediaError`` (``corrupt``, ``truncated``, ``unsupported``, ``too_many_pixels``,
    ``too_long``, ``too_many_frames``) having decoded at most the first frame, which proves the
    track decodes and tells its display rotation.
    """
    truncated = _declares_more_than_present(path, found.format)
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore")
    except av.FFmpegError as exc:
        if truncated:
            raise MediaError(
                f"the file is {found.description} whose data ends early (truncated)",
                code="truncated",
            ) from exc
        raise MediaError(
            f"the file starts like {found.description} but cannot be read as one",
            code="corrupt",
        ) from exc
    try:
        stream, info = _inspect(container, found, limits, sampling)
    except BaseException:
        container.close()
        raise
    media = VideoMedia(
        container, stream, info, limits, sampling, truncated=truncated, threads=threads
    )
    try:
        turns = media._prime()
    except BaseException:
        media.close()
        raise
    if turns % 2:
        media.info = replace(info, width=info.height, height=info.width)
    return media


def _inspect(
    container: av.container.InputContainer,
    found: Sniffed,
    limits: MediaLimits,
    sampling: SamplingPlan,
) -> tuple[av.video.stream.VideoStream, MediaInfo]:
    if not container.streams.video:
        kinds = "an audio-only file" if container.streams.audio else "a file with no video track"
        raise MediaError(
            f"the file is {kinds} ({found.format.upper()}), not an image or video",
            code="unsupported",
        )
    stream = container.streams.video[0]
    if stream.codec_context is None:  # FFmpeg has no decoder for the track's codec
        raise MediaError(
            f"the video track of this {found.format.upper()} file uses a codec that cannot be "
            "decoded",
            code="unsupported",
        )
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise MediaError("the video track does not declare a picture size", code="corrupt")
    if width * height > limits.max_video_pixels:
        raise MediaError(
            f"the video is {width:,}x{height:,} pixels, over the limit of "
            f"{limits.max_video_pixels:,}",
            code="too_many_pixels",
        )
    duration = _duration(container, stream)
    if duration is not None and duration > limits.max_video_seconds:
        raise MediaError(
            f"the video lasts {duration:,.0f} s, over the limit of "
            f"{limits.max_video_seconds:,.0f} s",
            code="too_long",
        )
    if duration is not None and duration / sampling.interval_seconds > limits.max_frames:
        raise MediaError(
            f"sampling this {duration:,.0f} s video would yield more than "
            f"{limits.max_frames:,} frames to analyse",
            code="too_many_frames",
        )
    frame_count = stream.frames or None
    info = MediaInfo("video", found.format, width, height, duration, frame_count, False)
    return stream, info


def _duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return None


def _rotation_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns the display matrix asks for (phones film sideways)."""
    try:
        angle = frame.rotation
    except (AttributeError, ValueError):
        return 0
    return round(angle / 90) % 4 if angle else 0


def _rgb(frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
    """The frame as upright RGB uint8 (display rotation applied)."""
    image = reformatter.reformat(frame, format="rgb24").to_ndarray()
    turns = _rotation_turns(frame)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


class _Thumbnailer:
    """Tiny grayscale pictures of frames, for scene-change detection.

    For 8-bit YUV frames (almost every video) it reads a grid of luma samples straight from the
    decoder's buffer and averages them in 2x2 blocks: ~0.02 ms a frame, where a swscale resize
    costs ~0.5 ms at 720p, which at 30 fps is a third of the decoding time. Other pixel formats
    go through swscale.
    """

    def __init__(self) -> None:
        self._reformatter = VideoReformatter()
        self._grid: tuple[int, int, np.ndarray, np.ndarray] | None = None

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = SCENE_THUMB_SIZE
        if frame.format.name not in _LUMA_FIRST_FORMATS:
            thumb = self._reformatter.reformat(
                frame, width=width, height=height, format="gray", interpolation="AREA"
            )
            return thumb.to_ndarray().astype(np.float32)
        plane = frame.planes[0]
        if self._grid is None or self._grid[:2] != (frame.width, frame.height):
            rows = ((np.arange(2 * height) + 0.5) * frame.height / (2 * height)).astype(np.intp)
            cols = ((np.arange(2 * width) + 0.5) * frame.width / (2 * width)).astype(np.intp)
            self._grid = (frame.width, frame.height, rows[:, None], cols[None, :])
        _, _, rows, cols = self._grid
        luma = np.frombuffer(plane, dtype=np.uint8).reshape(-1, plane.line_size)
        samples = luma[rows, cols].astype(np.float32)
        return samples.reshape(height, 2, width, 2).mean(axis=(1, 3))


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, 0 (same) to 1 (black vs white)."""
    return float(np.abs(a - b).mean()) / 255.0


def _declares_more_than_present(path: Path, fmt: str) -> bool:
    """True when the container's own length fields point past the end of the file."""
    size = path.stat().st_size
    try:
        with path.open("rb") as fh:
            if fmt in ("mp4", "mov"):
                position = 0
                for _ in range(_MAX_TOP_LEVEL_BOXES):
                    if position + 8 > size:
                        return False
                    fh.seek(position)
                    box_size, _box_type = struct.unpack(">I4s", fh.read(8))
                    if box_size == 1:
                        box_size = struct.unpack(">Q", fh.read(8))[0]
                    elif box_size == 0:  # runs to the end of the file by definition
                        return False
                    if box_size < 8:
                        return False  # not a box walk we understand: let FFmpeg judge
                    position += box_size
                    if position > size:
                        return True
                return False  # more boxes than any real file has: let FFmpeg judge
            if fmt == "avi":
                fh.seek(4)
                return struct.unpack("<I", fh.read(4))[0] + 8 > size
            if fmt in ("webm", "mkv"):
                head = fh.read(64)
                header_size, at = _ebml_vint(head, 4)  # after the EBML header's ID
                if header_size is None:
                    return False
                segment = at + header_size
                if head[segment : segment + 4] != b"\x18\x53\x80\x67":
                    return False
                segment_size, data_start = _ebml_vint(head, segment + 4)
                return segment_size is not None and data_start + segment_size > size
    except (struct.error, OSError, ValueError):
        return False
    return False


def _ebml_vint(data: bytes, at: int) -> tuple[int | None, int]:
    """An EBML variable-size integer at ``at``: (value or None for "unknown size", next offset).

    ValueError when ``data`` holds no complete one there.
    """
    if not 0 <= at < len(data) or data[at] == 0:
        raise ValueError("not an EBML size")
    first = data[at]
    length = 8 - first.bit_length() + 1
    if at + length > len(data):
        raise ValueError("not an EBML size")
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[at + 1 : at + length]:
        value = (value << 8) | byte
    unknown = value == (1 << (7 * length)) - 1
    return (None if unknown else value), at + length


def probe_duration(path: Path) -> float | None:
    """The declared duration of a video file in seconds; None for anything else or on error.

    Reads only headers (no frame is decoded); used to split long videos between workers.
    """
    from safeeye.media.sniff import SNIFF_BYTES, sniff

    try:
        with path.open("rb") as fh:
            if sniff(fh.read(SNIFF_BYTES)).kind != "video":
                return None
        with av.open(str(path), mode="r", metadata_errors="ignore") as container:
            if not container.streams.video:
                return None
            return _duration(container, container.streams.video[0])
    except (OSError, av.FFmpegError, ValueError):
        return None
