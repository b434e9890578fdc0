"""Media made at test time for the hardening tests: crafted hostile files and costly ones."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255))


def webp_with_empty_frame_chunks(path: Path) -> Path:
    """A valid animated WebP followed by two empty ``ANMF`` chunk headers, RIFF size fixed
    (it made the old frame-duration reader seek backwards forever)."""
    frames = [Image.new("RGB", (64, 64), colour) for colour in _COLOURS]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0
    )
    data = bytearray(buffer.getvalue()) + (b"ANMF" + (0).to_bytes(4, "little")) * 2
    data[4:8] = (len(data) - 8).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def gif_cut_in_graphic_control_extension(path: Path) -> Path:
    """A valid animated GIF truncated inside its second Graphic Control Extension."""
    frames = [Image.new("RGB", (64, 64), colour) for colour in _COLOURS]
    buffer = io.BytesIO()
    frames[0].save(
        buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0
    )
    data = buffer.getvalue()
    second = data.index(b"\x21\xf9", data.index(b"\x21\xf9") + 1)
    path.write_bytes(data[: second + 4])  # introducer, label, block size, flags: cut there
    return path


def flat_png(path: Path, side: int = 8000) -> Path:
    """A few hundred KB of PNG that decodes to ``side`` x ``side`` RGB pixels (256 MB at 8000)."""
    Image.new("RGB", (side, side), (30, 60, 90)).save(path)
    return path


def video(path: Path, seconds: int, size: tuple[int, int] = (960, 540)) -> Path:
    """A 1-frame-per-second MPEG-4 video of a moving ramp: every frame is analysed."""
    width, height = size
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    picture = np.ascontiguousarray(np.broadcast_to(ramp[None, :, None], (height, width, 3)))
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=1)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for second in range(seconds):
            frame = av.VideoFrame.from_ndarray(np.roll(picture, second * 7, axis=1), "rgb24")
            frame.pts, frame.time_base = second, Fraction(1, 1)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
