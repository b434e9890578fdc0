"""Recognise what a file really is from its first bytes, never from its name or Content-Type."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

MediaKind = Literal["image", "video", "other"]

#: How many leading bytes ``sniff`` needs to tell every format it knows apart.
SNIFF_BYTES = 4096

_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"mif2"})
_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B ", b"M4P "})
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


@dataclass(frozen=True)
class Sniffed:
    """What the leading bytes say a file is.

    ``kind`` says whether safeeye can decode it; ``format`` is a short lowercase token
    (``jpeg``, ``mp4``, ``html``...); ``description`` is a phrase for people, e.g.
    "an HTML document".
    """

    kind: MediaKind
    format: str
    description: str


def _image(fmt: str, description: str) -> Sniffed:
    return Sniffed("image", fmt, description)


def _video(fmt: str, description: str) -> Sniffed:
    return Sniffed("video", fmt, description)


def _other(fmt: str, description: str) -> Sniffed:
    return Sniffed("other", fmt, description)


def sniff(head: bytes) -> Sniffed:
    """Classify a file from its first bytes (``SNIFF_BYTES`` are enough; fewer work too).

    Never raises: bytes it does not recognise are ``other`` / ``unknown``.
    """
    if not head:
        return _other("empty", "an empty file")
    if head.startswith(b"\xff\xd8\xff"):
        return _image("jpeg", "a JPEG image")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        if _png_is_animated(head):
            return _image("png", "an animated PNG (APNG) image")
        return _image("png", "a PNG image")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _image("gif", "a GIF image")
    if head[:4] == b"RIFF" and len(head) >= 12:
        riff_type = head[8:12]
        if riff_type == b"WEBP":
            return _image("webp", "a WebP image")
        if riff_type == b"AVI ":
            return _video("avi", "an AVI video")
        if riff_type == b"WAVE":
            return _other("wav", "a WAV audio file")
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return _image("tiff", "a TIFF image")
    if _is_bmp(head):
        return _image("bmp", "a BMP image")
    if head[4:8] == b"ftyp":
        return _sniff_iso_bmff(head)
    if head[4:8] in _QUICKTIME_ATOMS and _plausible_atom_size(head):
        return _video("mov", "a QuickTime video")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _sniff_ebml(head)
    if head.startswith(b"FLV\x01"):
        return _video("flv", "a Flash (FLV) video")
    if _is_mpeg_ts(head):
        return _video("mpegts", "an MPEG transport stream video")
    return _sniff_other(head)


def _png_is_animated(head: bytes) -> bool:
    """True when an ``acTL`` chunk comes before the first ``IDAT`` (the APNG rule)."""
    pos = 8
    while pos + 8 <= len(head):
        length, chunk_type = struct.unpack(">I4s", head[pos : pos + 8])
        if chunk_type == b"acTL":
            return True
        if chunk_type in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def _is_bmp(head: bytes) -> bool:
    # "BM" alone is too weak (text can start with it): also require the reserved zeros and a
    # known DIB header size.
    if len(head) < 18 or not head.startswith(b"BM"):
        return False
    reserved = head[6:10]
    dib_size = struct.unpack("<I", head[14:18])[0]
    return reserved == b"\x00\x00\x00\x00" and dib_size in (12, 16, 40, 52, 56, 64, 108, 124)


def _plausible_atom_size(head: bytes) -> bool:
    size = struct.unpack(">I", head[:4])[0]
    return size in (0, 1) or size >= 8


def _sniff_iso_bmff(head: bytes) -> Sniffed:
    """ISO base media files (``ftyp``): HEIC/HEIF/AVIF stills, MP4 and QuickTime video."""
    major = head[8:12]
    box_size = struct.unpack(">I", head[:4])[0]
    end = min(len(head), max(box_size, 16))
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    if major in _AVIF_BRANDS:
        return _image("avif", "an AVIF image")
    if major in _HEIC_BRANDS:
        return _image("heic", "a HEIC image")
    if major in _HEIF_BRANDS:
        if compatible & _AVIF_BRANDS:
            return _image("avif", "an AVIF image")
        if compatible & _HEIC_BRANDS:
            return _image("heic", "a HEIC image")
        return _image("heif", "a HEIF image")
    if major == b"qt  ":
        return _video("mov", "a QuickTime video")
    if major in _AUDIO_BRANDS:
        return _other("m4a", "an MPEG-4 audio file")
    if major.startswith(b"3g"):
        return _video("mp4", "a 3GP video")
    return _video("mp4", "an MP4 video")


def _sniff_ebml(head: bytes) -> Sniffed:
    # The DocType element (ID 0x4282) sits in the EBML header, within the first few dozen bytes.
    header = head[:64]
    if b"\x42\x82" in header and b"webm" in header:
        return _video("webm", "a WebM video")
    return _video("mkv", "a Matroska (MKV) video")


def _is_mpeg_ts(head: bytes) -> bool:
    return len(head) > 376 and head[0] == head[188] == head[376] == 0x47


def _sniff_other(head: bytes) -> Sniffed:
    """Name the common things that are not images or videos, so errors can say what was found."""
    if head.startswith(b"%PDF-"):
        return _other("pdf", "a PDF document")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return _other("zip", "a ZIP archive")
    if head.startswith(b"\x1f\x8b"):
        return _other("gzip", "a gzip-compressed file")
    if head.startswith((b"ID3", b"\xff\xfb", b"\xff\xf3", b"\xff\xf2")):
        return _other("mp3", "an MP3 audio file")
    if head.startswith(b"OggS"):
        return _other("ogg", "an Ogg audio file")
    if head.startswith(b"fLaC"):
        return _other("flac", "a FLAC audio file")
    text = _as_text(head)
    if text is None:
        return _other("unknown", "unrecognised binary data")
    lowered = text.lstrip().lower()
    if lowered.startswith("<?xml") or lowered.startswith("<svg"):
        if "<svg" in lowered:
            return _other("svg", "an SVG drawing (XML), not a raster image")
        if "<html" in lowered:
            return _other("html", "an HTML document")
        return _other("xml", "an XML document")
    if lowered.startswith(("<!doctype html", "<html", "<head", "<body", "<!--")) or (
        lowered.startswith("<") and ("<html" in lowered or "<body" in lowered)
    ):
        return _other("html", "an HTML document")
    if lowered.startswith(("{", "[")):
        return _other("json", "a JSON or other text document")
    return _other("text", "a plain text file")


def _as_text(head: bytes) -> str | None:
    """The head as text when it looks like text (UTF-8/UTF-16 with a BOM), else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="ignore")
    sample = head[:1024]
    if b"\x00" in sample:
        return None
    # A multi-byte character may be cut at the end of the head: ignore only that tail.
    text = sample.decode("utf-8", errors="replace")
    if text.count("\ufffd") > 3:
        return None
    control = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v\x1b")
    return text if control <= len(text) // 100 else None
