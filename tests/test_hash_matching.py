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


def _reencode_half_size(source: Path, target: Path) -> Path:
    import av

    with av.open(str(source)) as src, av.open(str(target), "w") as out:
        stream = src.streams.video[0]
        video = out.add_stream("libx264", rate=stream.average_rate)
        video.width, video.height, video.pix_fmt = 320, 180, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "30"}
        for frame in src.decode(stream):
            small = frame.reformat(width=320, height=180, format="rgb24").to_ndarray()
            for packet in video.encode(av.VideoFrame.from_ndarray(small, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return target


def test_a_reencoded_copy_of_a_known_video_matches_frame_by_frame(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from conftest import VIDEO

    run(app, monkeypatch, "case", "create", "CASE-V")
    (outcome,) = run(app, monkeypatch, "case", "add-known", "CASE-V", str(VIDEO))
    assert outcome["error"] is None and outcome["hashes"] >= 10
    copy = _reencode_half_size(VIDEO, tmp_path / "reupload.mp4")
    (result,) = run(app, monkeypatch, "scan", str(copy), str(FACES / "obama.jpg"))[:1]
    (match,) = [m for m in result["matches"] if m["kind"] == "hash"]
    assert match["case"] == "CASE-V" and match["distance"] <= 31
    assert match["frame_count"] >= 8 and len(match["frames"]) == match["frame_count"]


ODD_CROPS = {
    "left_5": (0.05, 0, 0, 0),
    "top_7": (0, 0.07, 0, 0),
    "right_13": (0, 0, 0.13, 0),
    "uneven_4_11": (0.04, 0.11, 0, 0),
    "corner_17": (0, 0, 0.17, 0.17),
}


def _odd_crop(source: Path, name: str, tmp_path: Path, caption: bool = False) -> Path:
    im = ImageOps.exif_transpose(Image.open(source)).convert("RGB")
    left, top, right, bottom = ODD_CROPS[name]
    w, h = im.size
    im = im.crop((round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom))))
    if caption:
        im = _caption(im)
    out = tmp_path / f"{source.stem}-{name}{'-caption' if caption else ''}.jpg"
    im.save(out, quality=70)
    return out


def test_crops_no_hash_variant_covers_are_found_by_local_features(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    run(app, monkeypatch, "case", "create", "CASE-L")
    run(app, monkeypatch, "case", "add-known", "CASE-L", str(FACES / "obama.jpg"))
    copies = [_odd_crop(FACES / "obama.jpg", name, tmp_path) for name in ODD_CROPS]
    copies.append(_odd_crop(FACES / "obama.jpg", "right_13", tmp_path, caption=True))
    others = [FACES / n for n in ("obama2.jpg", "obama3.jpg", "biden.jpg", "two_people.jpg")]
    results = run(app, monkeypatch, "scan", *map(str, copies + others))
    for result in results[: len(copies)]:
        hashes = [m for m in result["matches"] if m["kind"] == "hash"]
        assert [m["case"] for m in hashes] == ["CASE-L"], result["input"]
        assert hashes[0]["distance"] <= 31
    for result in results[len(copies) :]:  # other photos of the same man are not this photo
        assert [m for m in result["matches"] if m["kind"] == "hash"] == [], result["input"]
    from sqlalchemy import select

    from safeeye.cases.sealing import open_match_evidence
    from safeeye.db.models import Match

    with app.db.session() as session:
        details = [
            frame["detail"]
            for match in session.execute(select(Match).where(Match.kind == "hash")).scalars()
            for frame in open_match_evidence(
                app.keys.case_key(match.case), match.id, match.evidence_sealed
            )["frames"]
        ]
    assert sum(d.startswith("local~") for d in details) >= 4, details


def test_local_matching_still_works_once_the_index_is_inverted(
    app: SafeEye, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from safeeye.matching import matcher

    monkeypatch.setattr(matcher, "LOCAL_EXACT_LIMIT", 1000)  # as if hundreds of known images
    run(app, monkeypatch, "case", "create", "CASE-I")
    known = ["obama.jpg", "biden2.jpg", "rose_leslie1.jpg", "johnsnow_test1.jpg"]
    run(app, monkeypatch, "case", "add-known", "CASE-I", *(str(FACES / n) for n in known))
    copy = _odd_crop(FACES / "biden2.jpg", "uneven_4_11", tmp_path)
    (result, other) = run(app, monkeypatch, "scan", str(copy), str(FACES / "obama2.jpg"))
    assert app.matcher._local_inverted
    assert [m["case"] for m in result["matches"] if m["kind"] == "hash"] == ["CASE-I"]
    assert [m for m in other["matches"] if m["kind"] == "hash"] == []
