"""Blurring for anything a person might see: strong enough that faces and bodies cannot be
recognised, done in memory (the sharp picture is never written anywhere)."""

from __future__ import annotations

from PIL import Image, ImageFilter

#: A Gaussian radius of the picture's longest side divided by this (at least ``MIN_RADIUS``).
DIVISOR = 40.0
MIN_RADIUS = 16.0


def blur_radius(size: tuple[int, int], divisor: float = DIVISOR) -> float:
    """The radius that hides a picture of ``size``: a fortieth of its longest side."""
    return max(MIN_RADIUS, max(size) / divisor)


def blurred(picture: Image.Image, divisor: float = DIVISOR) -> Image.Image:
    """``picture`` (RGB) under a Gaussian blur of ``blur_radius``."""
    return picture.filter(ImageFilter.GaussianBlur(blur_radius(picture.size, divisor)))
