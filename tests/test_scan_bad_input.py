"""Bad media never crashes a scan: each gives a clear error in the JSON and the scan goes on."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

import synthetic_media
from conftest import FACES, VIDEO, make_app, make_settings
from safeeye.app import SafeEye
from safeeye.config import MediaLimits, SamplingPlan
from safeeye.db.models import Media
from safeeye.pipeline.analyze import analyze_file
from safeeye.pipeline.detectors import Detectors
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
        "pipe": tmp_path / "pipe.jpg",
    }
    files["zero_byte"].write_bytes(b"")
    files["corrupt"].write_bytes(jpeg[:20] + bytes(range(256)) * 64)
    files["truncated"].write_bytes(jpeg[: len(jpeg) // 3])
    files["truncated_video"].write_bytes(VIDEO.read_bytes()[:20_000])
    files["mislabelled"].write_bytes(b"<!DOCTYPE html><html><body>not a photo</body></html>")
    _png_bomb(files["bomb"])
    os.mkfifo(files["pipe"])  # reading it would wait for a writer forever
    return files


EXPECTED = {
    "zero_byte": "empty",
    "corrupt": "corrupt",
    "truncated": "truncated",
    "truncated_video": "truncated",
    "mislabelled": "unsupported",
    "bomb": "too_many_pixels",
    "missing": "not_found",
    "pipe": "not_a_file",
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


def test_one_scan_in_worker_processes_survives_hostile_costly_and_crashing_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bad file costs only itself: its own error, while the others get their results and
    the scan exits 0 (``safeeye scan`` fails only when it cannot run at all)."""
    settings = make_settings(
        tmp_path / "data",
        analysis_isolation="process",
        analysis_max_memory_mb=120,  # a normal photo needs a few tens of MB
        analysis_timeout=4.0,  # a normal photo takes well under a second
        analysis_seconds_per_video_second=0.0,
    )
    app = make_app(settings)
    files = {
        "photo": FACES / "obama.jpg",
        "webp": synthetic_media.webp_with_empty_frame_chunks(tmp_path / "anim.webp"),
        "gif": synthetic_media.gif_cut_in_graphic_control_extension(tmp_path / "cut.gif"),
        "memory": synthetic_media.flat_png(tmp_path / "flat.png"),  # 256 MB once decoded
        "time": synthetic_media.video(tmp_path / "long.mp4", seconds=600),  # 600 frames
        "photo2": FACES / "biden.jpg",
    }
    try:
        results = run(app, monkeypatch, "scan", *map(str, files.values()))
        by_name = dict(zip(files, results, strict=True))
        for name in ("photo", "photo2"):
            assert by_name[name]["error"] is None and by_name[name]["faces"] == 1, by_name[name]
        # Before the frame-duration readers were fixed the WebP looped forever (a timeout
        # now) and the GIF raised (an internal error now); since, both are refused as damaged.
        for name in ("webp", "gif"):
            assert by_name[name]["error"], name
        assert by_name["memory"]["error"].startswith("too_much_memory: "), by_name["memory"]
        assert by_name["time"]["error"].startswith("timeout: "), by_name["time"]
        assert all(r["sha256"] for r in results)

        with app.db.session() as session:
            media = {m.sha256: m for m in session.execute(select(Media)).scalars()}
        for name, result in by_name.items():
            stored = media[result["sha256"]]
            failed = result["error"] is not None
            assert (stored.status == "failed") is failed, name
            assert (stored.blob_address is None) is failed, name  # failed files are not kept
    finally:
        app.close()


def test_an_exception_while_recording_one_file_is_its_error_and_its_database_work_is_undone(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from safeeye.pipeline import record

    secret = FACES / "biden.jpg"
    real_record_sighting = record.record_sighting

    def failing_record_sighting(session, media, sha256, facts, error=None):  # type: ignore[no-untyped-def]
        if facts.location == str(secret):
            raise RuntimeError(f"database trouble with {facts.location}")
        return real_record_sighting(session, media, sha256, facts, error)

    monkeypatch.setattr(record, "record_sighting", failing_record_sighting)
    inputs = [FACES / "obama.jpg", secret, FACES / "two_people.jpg"]
    results = run(app, monkeypatch, "scan", *map(str, inputs))

    assert [r["error"] for r in (results[0], results[2])] == [None, None]
    assert [r["faces"] for r in (results[0], results[2])] == [1, 2]
    assert results[1]["error"].startswith("internal: ") and "RuntimeError" in results[1]["error"]
    assert str(secret) not in results[1]["error"]
    with app.db.session() as session:
        stored = {m.sha256 for m in session.execute(select(Media)).scalars()}
    assert results[1]["sha256"] not in stored  # its media row was rolled back with the rest
    assert not app.blobs.exists(
        app.blobs.address("media", hashlib.sha256(secret.read_bytes()).hexdigest())
    )
    assert {results[0]["sha256"], results[2]["sha256"]} <= stored
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "RuntimeError" in logged and str(secret) not in logged and "trouble" not in logged


def test_an_unexpected_exception_of_a_model_is_the_files_error(
    detectors: Detectors, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenModel:
        def predict(self, image: object) -> object:
            raise ValueError("shape mismatch in /secret/victim.jpg")

    broken = Detectors(faces=detectors.faces, nudity=BrokenModel())  # type: ignore[arg-type]
    analysis = analyze_file(FACES / "obama.jpg", broken, MediaLimits(), SamplingPlan())
    assert analysis.error is not None and analysis.error.code == "internal"
    assert "ValueError" in str(analysis.error) and "secret" not in str(analysis.error)
    assert analysis.info is not None and analysis.hashes.size > 0
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "ValueError" in logged and "analyze.py" in logged and "secret" not in logged
