"""``media.sniff.sniff``: classifies any leading bytes and never raises."""

from __future__ import annotations

from safeeye.media.sniff import SNIFF_BYTES, sniff

_KINDS = frozenset({"image", "video", "other"})


def test_one_input(data: bytes) -> None:
    found = sniff(data[:SNIFF_BYTES])
    assert found.kind in _KINDS and found.format and found.description, found
    sniff(data[:12])  # a short download
