"""The four filters. Each is sized to the face (blocks across it, blur sigma, noise grain), never to fixed pixels,
so a 40 px face and a 400 px face are covered alike."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from skimage.util import random_noise

from filters.base import Filter, block_means, shrunk, stretch
from filters.masks import Patch
from filters.registry import register

_SHRUNK_SIGMA = 3.0


def _cells(patch: Patch, crop: np.ndarray, across: int) -> tuple[int, int]:
    """A grid of ``across`` square cells over the grown region's width, cut like the crop at the image border."""
    cell = patch.grown_w / across
    height, width = crop.shape[:2]
    return max(1, round(width / cell)), max(1, round(height / cell))


@register("noise")
class Noise(Filter):
    """Replaces the face with Gaussian noise over its mean colour: no facial detail is left to recover.

    ``blocks`` (default 1) is the coarse base: 1 is the mask-weighted mean colour of the grown region, which
    mixes face, hair and background and so tells no more than the surrounding photo; 3 gives a 3 x 3 grid that
    blends better into the scene but whose centre block is mostly skin, giving away skin tone. ``var`` is the
    noise variance on the [0, 1] scale (0.05: a standard deviation of 57 of 255 levels). ``cells`` is the noise
    grain: cells across the grown region, so the grain follows the face size (and JPEG-encodes smaller than
    per-pixel noise); faces smaller than that get per-pixel noise. ``seed`` is for tests only: by default every
    call draws fresh noise from the OS, so the output cannot be predicted or subtracted.
    """

    def __init__(
        self,
        *,
        blocks: int = 1,
        var: float = 0.05,
        cells: int = 64,
        seed: int | None = None,
        **mask_options: Any,
    ) -> None:
        super().__init__(**mask_options)
        if not 1 <= blocks <= 8:
            raise ValueError(f"noise blocks must be between 1 and 8, not {blocks}")
        if not (math.isfinite(var) and 0 < var <= 1):
            raise ValueError(f"noise var must be in (0, 1], not {var}")
        if cells < 4:
            raise ValueError(f"noise cells must be at least 4, not {cells}")
        self.blocks, self.var, self.cells, self._seed = blocks, var, cells, seed

    def _cover(self, crop: np.ndarray, patch: Patch, rng: np.random.Generator) -> np.ndarray:
        height, width = crop.shape[:2]
        base = block_means(crop, patch, *_cells(patch, crop, self.blocks))
        cells_x, cells_y = _cells(patch, crop, self.cells)
        grid = stretch(base, min(height, cells_y), min(width, cells_x))
        return random_noise(grid, mode="gaussian", var=self.var, rng=rng, clip=True).astype(np.float32)


@register("blur")
class Blur(Filter):
    """scikit-image Gaussian blur with sigma = ``strength`` x face size (mean of the box's width and height).

    Reversible in principle: a blur is a known linear operator, and deblurring or a recognizer trained on
    blurred faces recovers identity far more often than from noise. Hence not the default; use it where looks
    matter more than a guarantee. The default strength is set so that Haar, YuNet and the SSD no longer find
    the face (tests/test_irreversibility.py).
    """

    _interpolation = cv2.INTER_LINEAR

    def __init__(
        self,
        *,
        strength: float = 0.3,
        **mask_options: Any,
    ) -> None:
        super().__init__(**mask_options)
        if not (math.isfinite(strength) and 0 < strength <= 2):
            raise ValueError(f"blur strength must be in (0, 2], not {strength}")
        self.strength = strength

    def _cover(self, crop: np.ndarray, patch: Patch, rng: np.random.Generator) -> np.ndarray:
        # A sigma of tens of pixels would cost a kernel of hundreds of taps; blurring a copy shrunk so that
        # sigma is a few pixels gives the same picture at a small fraction of the cost.
        sigma = self.strength * (patch.face_w + patch.face_h) / 2
        height, width = crop.shape[:2]
        shrink = max(1.0, sigma / _SHRUNK_SIGMA)
        small = shrunk(crop, max(1, round(width / shrink)), max(1, round(height / shrink)))
        # Imported here: skimage.filters loads SciPy's image filters, which costs every process that only paints
        # noise (the default) a visible part of its start-up.
        from skimage.filters import gaussian

        blurred = gaussian(small, sigma=sigma / shrink, mode="nearest", channel_axis=-1, preserve_range=True)
        return blurred.astype(np.float32).reshape(small.shape)


@register("pixelate")
class Pixelate(Filter):
    """Mask-weighted block means, ``blocks`` square blocks across the grown region (8: about 6 across the face).

    Not reversible, but it keeps blocks x blocks mean colours; fewer blocks keep less.
    """

    def __init__(
        self,
        *,
        blocks: int = 8,
        **mask_options: Any,
    ) -> None:
        super().__init__(**mask_options)
        if not 1 <= blocks <= 64:
            raise ValueError(f"pixelate blocks must be between 1 and 64, not {blocks}")
        self.blocks = blocks

    def _cover(self, crop: np.ndarray, patch: Patch, rng: np.random.Generator) -> np.ndarray:
        return block_means(crop, patch, *_cells(patch, crop, self.blocks))


@register("solid")
class Solid(Filter):
    """One flat colour: the mask-weighted mean of the region by default, or ``color`` (B, G, R in 0..255)."""

    def __init__(
        self,
        *,
        color: tuple[int, int, int] | None = None,
        **mask_options: Any,
    ) -> None:
        super().__init__(**mask_options)
        if color is not None and (len(color) != 3 or not all(0 <= c <= 255 for c in color)):
            raise ValueError(f"solid color must be three values B, G, R in 0..255, not {color}")
        self.color = None if color is None else tuple(float(c) / 255 for c in color)

    def _cover(self, crop: np.ndarray, patch: Patch, rng: np.random.Generator) -> np.ndarray:
        if self.color is None:
            return block_means(crop, patch, 1, 1)
        if crop.shape[2] == 1:
            blue, green, red = self.color
            return np.array([0.114 * blue + 0.587 * green + 0.299 * red], np.float32).reshape(1, 1, 1)
        return np.array(self.color, np.float32).reshape(1, 1, 3)
