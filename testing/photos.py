"""Synthetic photos of the sizes people send: the astronaut's face pasted at sizes from a crowd's to a close-up on a
textured background, encoded by the pipeline's own encoder. The latency benchmarks time them; tests use the same
inputs so both speak of the same photos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anonymizer import encode_image
from testing.images import composite, textured


@dataclass(frozen=True)
class Input:
    """A synthetic photo: its size, the faces pasted on it (x, y, face height) and the file format."""

    width: int
    height: int
    faces: tuple[tuple[int, int, int], ...]
    format: str
    alpha: bool = False


def _faces_across(width: int, height: int) -> tuple[tuple[int, int, int], ...]:
    """A spread of face heights from crowd-sized to close-up, placed on a grid that fits the canvas."""
    sizes = (24, 40, 64, 110, 180, max(200, height // 4))
    step = width // (len(sizes) + 1)
    return tuple((step // 2 + i * step, height // 3, size) for i, size in enumerate(sizes))


INPUTS = {
    "1mp_jpeg": Input(1224, 816, _faces_across(1224, 816), "JPEG"),
    "12mp_phone_jpeg": Input(4032, 3024, _faces_across(4032, 3024), "JPEG"),
    "24mp_jpeg": Input(6000, 4000, _faces_across(6000, 4000), "JPEG"),
    "png_alpha": Input(1600, 1200, _faces_across(1600, 1200), "PNG", alpha=True),
}


def make_input(spec: Input, seed: int = 7) -> bytes:
    """The encoded file for ``spec``."""
    background = 90
    canvas, _ = composite((spec.width, spec.height), list(spec.faces), background=background)
    flat = np.all(canvas == background, axis=2)
    canvas[flat] = textured(spec.width, spec.height, seed, cell=64, grain=12)[flat]
    if spec.alpha:
        alpha = np.full((spec.height, spec.width, 1), 255, np.uint8)
        alpha[: spec.height // 5] = 128  # a translucent band, which the output must keep
        canvas = np.concatenate([canvas, alpha], axis=2)
    return encode_image(canvas, spec.format)
