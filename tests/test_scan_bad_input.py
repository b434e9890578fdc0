"""Bad media never crashes a scan: each gives a clear error in the JSON and the scan goes on."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from conftest import FACES, VIDEO
from safeeye.app import SafeEye
from test_face_matching import run


def _png_bomb(path: Path, side: int = 100_000) -> None:
    """A tiny PNG whose header declares side x side pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * (side + 1) * 8)  # a few rows; the rest is "missing"
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    jpeg = (FACES / "obama.jpg").read_bytes()
    files = {
        "zero_byte": tmp_path / "empty.jpg",
        "corrupt": tmp_path / "corrupt.jpg",
        "truncated": tmp_path / "truncated.jpg",
        "truncated_video": tmp_path / "truncated.mp4",
        "mislabelled": tmp_path / "page.jpg",
        "bomb": tmp_path / "bomb.png",
        "missing": tmp_path / "does-not-exist.jpg",
    }
    files["zero_byte"].write_bytes(b"")
    files["corrupt"].write_bytes(jpeg[:20] + bytes(range(256)) * 64)
    files["truncated"].write_bytes(jpeg[: len(jpeg) // 3])
    files["truncated_video"].write_bytes(VIDEO.read_bytes()[:20_000])
    files["mislabelled"].write_bytes(b"<!DOCTYPE html><html><body>not a photo</body></html>")
    _png_bomb(files["bomb"])
    return files


EXPECTED = {
    "zero_byte": "empty",
    "corrupt": "corrupt",
    "truncated": "truncated",
    "truncated_video": "truncated",
    "mislabelled": "unsupported",
    "bomb": "too_many_pixels",
    "missing": "not_found",
}


def test_each_bad_file_gets_its_error_and_good_files_still_scan(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, bad_files: dict[str, Path]
) -> None:
    good = FACES / "biden.jpg"
    inputs = [*bad_files.values(), good]
    results = run(app, monkeypatch, "scan", *map(str, inputs))
    assert len(results) == len(inputs)
    for name, result in zip(bad_files, results, strict=False):
        assert result["error"] is not None, name
        code, _, message = result["error"].partition(": ")
        allowed = {EXPECTED[name], "corrupt"} if name == "truncated_video" else {EXPECTED[name]}
        assert code in allowed, (name, result["error"])
        assert len(message) > 10, name
    assert results[-1]["error"] is None and results[-1]["faces"] == 1


def test_mislabelled_real_media_is_decoded_by_its_content(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    png_named_jpg = tmp_path / "photo.jpg"
    buffer = io.BytesIO()
    Image.open(FACES / "biden.jpg").save(buffer, format="PNG")
    png_named_jpg.write_bytes(buffer.getvalue())
    (result,) = run(app, monkeypatch, "scan", str(png_named_jpg))
    assert result["error"] is None and result["media_type"] == "image" and result["format"] == "png"


def test_failed_scans_are_recorded_on_the_sighting(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, bad_files: dict[str, Path]
) -> None:
    from sqlalchemy import select

    from safeeye.db.models import Sighting

    run(app, monkeypatch, "scan", str(bad_files["corrupt"]), str(bad_files["zero_byte"]))
    with app.db.session() as session:
        errors = sorted(s.error.split(":")[0] for s in session.execute(select(Sighting)).scalars())
    assert errors == ["corrupt", "empty"]
