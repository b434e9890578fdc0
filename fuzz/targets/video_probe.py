"""Video probing in ``media.video``: ``probe_duration``, ``_declares_more_than_present`` and
``_ebml_vint``, which read headers of untrusted files before any decoding."""

from __future__ import annotations

from fuzz.targets._support import scratch_file
from safeeye.media.video import _declares_more_than_present, _ebml_vint, probe_duration

_FORMATS = ("mp4", "mov", "avi", "webm", "mkv", "flv", "mpegts")


def test_one_input(data: bytes) -> None:
    path = scratch_file(data)
    duration = probe_duration(path)  # None for anything it cannot read
    assert duration is None or duration > 0, duration
    for fmt in _FORMATS:
        assert _declares_more_than_present(path, fmt) in (True, False)
    for at in range(min(len(data) + 1, 16)):
        try:
            value, end = _ebml_vint(data, at)
        except ValueError:
            continue
        assert at < end <= len(data) and (value is None or value >= 0), (at, value, end)
