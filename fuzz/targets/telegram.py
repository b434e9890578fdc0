"""``ingest.telegram.read_export``: a Telegram Desktop export whose ``result.json`` is the input.

Only ``TelegramExportError`` may escape; every file it returns lies inside the export folder
(the folder also holds a link that points out of it), and each file's evidence is JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

from fuzz.targets._support import scratch_dir
from safeeye.ingest.telegram import TelegramExportError, evidence, read_export

# Files the seed exports name, so paths resolve; "files/outside.jpg" is a link out of the export.
_PRESENT = ("photos/photo_1@14-03-2024_21-16-03.jpg", "video_files/clip.mp4", "files/a.webp")
_USERNAMES = {1876543210: "leaks_channel", -1001111111111: "@other_chat"}

_root: Path | None = None


def _export_dir() -> Path:
    global _root
    if _root is None:
        _root = scratch_dir() / "export"
        for relative in _PRESENT:
            path = _root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"\xff\xd8\xff\xe0 not really a picture")
        outside = scratch_dir() / "outside.jpg"
        outside.write_bytes(b"\xff\xd8\xff outside the export")
        (_root / "files" / "outside.jpg").symlink_to(outside)
    return _root


def test_one_input(data: bytes) -> None:
    root = _export_dir()
    (root / "result.json").write_bytes(data)
    try:
        export = read_export(root, usernames=_USERNAMES)
    except TelegramExportError:
        return
    inside = root.resolve()
    for media in export.media:
        assert media.path.is_relative_to(inside), media.relative_path
        json.dumps(evidence(media), allow_nan=False)
    for link in export.links:
        assert isinstance(link.url, str) and link.url, link
