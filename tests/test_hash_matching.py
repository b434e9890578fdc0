"""Known media of a case is found again after what uploaders do to it, by hash, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageOps

from conftest import FACES
from safeeye.app import SafeEye
from test_face_matching import run

TRANSFORMS = {
    "jpeg_q30": lambda im: im,
    "half_size": lambda im: im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
    "crop_10": lambda im: im.crop(
        (im.width // 20, im.height // 20, im.width - im.width // 20, im.height - im.height // 20)
    ),
    "mirror": ImageOps.mirror,
    "caption_bar": lambda im: _caption(im),
}


def _caption(im: Image.Image) -> Image.Image:
    bar = int(im.height * 0.14)
    out = Image.new("RGB", (im.width, im.height + bar), (255, 255, 255))
    out.paste(im, (0, 0))
    draw = ImageDraw.Draw(out)
    draw.text((10, im.height + bar // 3), "LEAKED lol look who it is", fill=(0, 0, 0))
    return out


def _variant(source: Path, name: str, tmp_path: Path) -> Path:
    im = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
    out = tmp_path / f"{source.stem}-{name}.jpg"
    TRANSFORMS[name](im).save(out, quality=30 if name == "jpeg_q30" else 90)
    return out


@pytest.mark.parametrize("known", ["obama.jpg", "rose_leslie2.jpg"])
def test_transformed_copies_of_known_media_are_hash_matches(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, known: str
) -> None:
    run(app, monkeypatch, "case", "create", "CASE-K")
    (outcome,) = run(app, monkeypatch, "case", "add-known", "CASE-K", str(FACES / known))
    assert outcome["error"] is None and outcome["hashes"] > 0
    copies = [_variant(FACES / known, name, tmp_path) for name in TRANSFORMS]
    unrelated = [
        FACES / n for n in ("obama2.jpg", "biden.jpg", "two_people.jpg", "rose_leslie1.jpg")
    ]
    results = run(app, monkeypatch, "scan", *map(str, copies + unrelated))
    for result in results[: len(copies)]:
        hashes = [m for m in result["matches"] if m["kind"] == "hash"]
        assert [m["case"] for m in hashes] == ["CASE-K"], result["input"]
        assert hashes[0]["distance"] <= 31
    for result in results[len(copies) :]:
        assert [m for m in result["matches"] if m["kind"] == "hash"] == [], result["input"]


def test_the_identical_file_is_an_exact_match(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(app, monkeypatch, "case", "create", "CASE-E")
    run(app, monkeypatch, "case", "add-known", "CASE-E", str(FACES / "biden.jpg"))
    (result,) = run(app, monkeypatch, "scan", str(FACES / "biden.jpg"))
    (match,) = [m for m in result["matches"] if m["kind"] == "hash"]
    assert match["case"] == "CASE-E" and match["distance"] == 0
