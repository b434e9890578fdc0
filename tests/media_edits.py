"""What uploaders do to a picture, as plain functions for the matching tests (numpy RGB in,
numpy RGB out), and the fixture photos to do it to."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

FACES = sorted((Path(__file__).parent / "fixtures" / "faces").iterdir())


def load(path: Path) -> np.ndarray:
    """A photo as the scanner sees it: upright RGB."""
    return np.ascontiguousarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Saved as JPEG at ``quality`` and read back."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def resize(image: np.ndarray, scale: float = 0.5) -> np.ndarray:
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def crop(
    image: np.ndarray, left: float = 0.0, top: float = 0.0, right: float = 0.0, bottom: float = 0.0
) -> np.ndarray:
    """Cut the given shares of the width/height off each side."""
    h, w = image.shape[:2]
    return np.ascontiguousarray(
        image[round(h * top) : h - round(h * bottom), round(w * left) : w - round(w * right)]
    )
