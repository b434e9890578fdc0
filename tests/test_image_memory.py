"""Big stills decode without full-size intermediate copies, and normal stills decode to exactly
the pixels of a whole-image conversion (so their hashes do not change)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from safeeye.config import MediaLimits, SamplingPlan
from safeeye.media import images
from safeeye.media.decode import open_media

FACES = Path(__file__).parent / "fixtures" / "faces"


def _whole_image_rgb(image: Image.Image) -> np.ndarray:
    """What a straightforward conversion of the whole image gives (the reference)."""
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "RGB":  # a colour key on an RGB image has always been ignored
        return np.asarray(image)
    if mode.startswith("I") or mode == "F":
        values = np.asarray(image)
        if values.dtype.kind == "f":
            scale = 255.0 if np.nanmax(values) <= 1.0 else 1.0
            grey = np.clip(np.nan_to_num(values) * scale, 0, 255).astype(np.uint8)
        else:
            wide = values.astype(np.int64)
            if wide.max() > 255:
                wide = np.clip(wide, 0, 65535) // 257
            grey = np.clip(wide, 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if "A" in mode or "a" in mode or "transparency" in image.info:
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, image.convert("RGBA")).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _images_in_every_mode() -> dict[str, Image.Image]:
    rng = np.random.default_rng(7)
    rgba = Image.fromarray(rng.integers(0, 256, (53, 41, 4), dtype=np.uint8))
    palette = rgba.convert("RGB").quantize(64)
    palette.info["transparency"] = 3
    grey_key = rgba.convert("L")
    grey_key.info["transparency"] = 128
    rgb_key = rgba.convert("RGB")
    rgb_key.info["transparency"] = tuple(int(v) for v in np.asarray(rgb_key)[5, 5])
    wide = rng.integers(0, 65536, (53, 41), dtype=np.uint16)
    return {
        "RGB": rgba.convert("RGB"),
        "RGBA": rgba,
        "LA": rgba.convert("LA"),
        "L": rgba.convert("L"),
        "1": rgba.convert("1"),
        "CMYK": rgba.convert("CMYK"),
        "P+transparency": palette,
        "PA": rgba.convert("PA"),
        "L+transparency": grey_key,
        "RGB+transparency": rgb_key,
        "I;16": Image.fromarray(wide),
        "I": Image.fromarray(wide.astype(np.int32)),
        "F (0..1)": Image.fromarray(rng.random((53, 41), dtype=np.float32)),
        "F (0..255)": Image.fromarray(rng.random((53, 41), dtype=np.float32) * 255),
    }


@pytest.mark.parametrize("name", list(_images_in_every_mode()))
def test_stills_in_every_mode_decode_to_exactly_the_whole_image_conversion(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _images_in_every_mode()[name]
    expected = _whole_image_rgb(image)
    # Tiny strips, so the strip boundaries (and a short last strip) are exercised.
    monkeypatch.setattr(images, "_STRIP_PIXELS", 41 * 5)
    decoded = images._decode_current(image)
    assert decoded.dtype == np.uint8 and decoded.flags.c_contiguous
    assert np.array_equal(decoded, expected), name


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_exactly_as_pillow_does(
    orientation: int, tmp_path: Path
) -> None:
    photo = Image.open(FACES / "obama.jpg").convert("RGB").resize((61, 37))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    photo.save(path, exif=exif.tobytes())
    with open_media(path, MediaLimits(), SamplingPlan()) as media:
        (frame,) = media.frames()
        upright = orientation in (5, 6, 7, 8)
        assert (media.info.width, media.info.height) == ((37, 61) if upright else (61, 37))
    assert np.array_equal(frame.image, _whole_image_rgb(Image.open(path)))


def test_stills_up_to_24_megapixels_keep_every_pixel_and_larger_ones_are_shrunk(
    tmp_path: Path,
) -> None:
    normal, huge = tmp_path / "normal.png", tmp_path / "huge.png"
    Image.new("RGB", (6000, 4000), (10, 20, 30)).save(normal)  # 24 MP exactly
    Image.new("RGB", (8000, 6000), (10, 20, 30)).save(huge)
    limits = MediaLimits()
    with open_media(normal, limits, SamplingPlan()) as media:
        assert next(media.frames()).image.shape == (4000, 6000, 3)
    with open_media(huge, limits, SamplingPlan()) as media:
        assert media.info.width == 8000  # the file's own size is reported
        (frame,) = media.frames()
    assert frame.image.shape == (3000, 4000, 3)
    assert np.all(frame.image == (10, 20, 30))


def test_huge_jpeg_is_decoded_at_a_smaller_scale(tmp_path: Path) -> None:
    path = tmp_path / "huge.jpg"
    picture = Image.new("RGB", (7000, 5000), (200, 200, 200))
    ImageDraw.Draw(picture).ellipse((1000, 1000, 6000, 4000), fill=(20, 90, 160))
    picture.save(path, quality=90)
    with open_media(path, MediaLimits(), SamplingPlan()) as media:
        (frame,) = media.frames()
    assert frame.image.shape == (2500, 3500, 3)
    centre = frame.image[1250, 1750].astype(int)
    assert np.abs(centre - (20, 90, 160)).max() < 8


_PEAK_SCRIPT = """
import resource, sys
from pathlib import Path
from safeeye.config import MediaLimits, SamplingPlan
from safeeye.media.decode import open_media
import numpy, PIL.Image  # loaded before the baseline is taken
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open_media(Path(sys.argv[1]), MediaLimits(), SamplingPlan()) as media:
    shapes = [frame.image.shape for frame in media.frames()]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, shapes[0][0])
"""


@pytest.mark.parametrize("kind", ["palette", "rgba"])
def test_a_small_highly_compressible_png_at_the_pixel_limit_decodes_in_modest_memory(
    kind: str, tmp_path: Path
) -> None:
    side = 8000  # 64 MP: the default pixel limit
    if kind == "palette":
        picture = Image.new("P", (side, side), 0)
        picture.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
        ImageDraw.Draw(picture).rectangle((1000, 1000, 5000, 5000), fill=1)
        options: dict[str, object] = {"transparency": 0}
    else:
        picture = Image.new("RGBA", (side, side), (0, 0, 0, 0))
        ImageDraw.Draw(picture).rectangle((1000, 1000, 5000, 5000), fill=(10, 200, 30, 128))
        options = {}
    path = tmp_path / f"{kind}.png"
    picture.save(path, optimize=True, **options)
    del picture
    assert path.stat().st_size < 300_000
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    grown_mb, height = map(int, done.stdout.split())
    # A full-size RGBA copy alone is 256 MB; the whole-image conversions peaked at 1.2-1.6 GB.
    limit = 200 if kind == "palette" else 450
    assert grown_mb < limit, f"decoding grew the process by {grown_mb} MB"
    assert height == side // 2
