"""What a filter receives (an image and boxes to cover, nothing about how they were found) and what all filters
share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import ClassVar

import cv2
import numpy as np

from filters.masks import DEFAULT_FEATHER, DEFAULT_MARGIN, DEFAULT_MASK, DEFAULT_MIN_MARGIN, MaskSpec, Patch
from filters.regions import Box


class Filter(ABC):
    """Covers face regions of an image; the one public call is ``apply``, ``mask`` says where it paints.

    Subclasses only say what a covered crop looks like (``_cover``); reading pixel types and channels,
    masks, soft-edge blending and overlap handling live here once.
    """

    name: ClassVar[str]
    # Seed of the generator handed to ``_cover`` on each call; None draws fresh OS entropy (only noise uses it).
    _seed: int | None = None

    def __init__(
        self,
        *,
        mask: str = DEFAULT_MASK,
        margin: float = DEFAULT_MARGIN,
        feather: float = DEFAULT_FEATHER,
        min_margin: float = DEFAULT_MIN_MARGIN,
    ) -> None:
        """The mask's settings, shared by every filter; a subclass takes its own and passes these on as
        ``**mask_options``, so a new mask setting is added here alone."""
        self.mask_spec = MaskSpec(mask, margin, feather, min_margin)

    def mask(self, shape_hw: tuple[int, ...], regions: Iterable[Box]) -> np.ndarray:
        """Float32 H x W weights in [0, 1]: exactly how strongly ``apply`` paints each pixel."""
        return self.mask_spec.render((shape_hw[0], shape_hw[1]), regions)

    def apply(self, image: np.ndarray, regions: Iterable[Box]) -> np.ndarray:
        """A covered copy of ``image`` (uint8/uint16/float in [0, 1]; gray, BGR or BGRA); the input is untouched.

        Pixels outside the mask are bit-identical to the input; alpha is never changed. Where regions
        overlap, each pixel is painted once, by the region that weighs it most, so the result matches ``mask``.
        """
        scale = _value_scale(image)
        colour_channels = _colour_channels(image)
        out = image.copy()
        source = image[..., None] if image.ndim == 2 else image
        target = out[..., None] if out.ndim == 2 else out
        patches = self.mask_spec.patches(regions, image.shape[:2])
        painted = np.zeros(image.shape[:2], np.float32) if len(patches) > 1 else None
        rng = np.random.default_rng(self._seed)
        for patch in patches:
            weights = patch.weights
            if painted is not None:
                already = painted[patch.rows, patch.cols]
                wins = weights > already
                np.maximum(already, weights, out=already)
            else:
                wins = weights > 0
            if not wins.any():
                continue
            crop = source[patch.rows, patch.cols, :colour_channels].astype(np.float32) / scale
            covered = self._cover(crop, patch, rng)
            blended = weights[..., None] * covered + (1 - weights[..., None]) * crop
            values = blended * scale
            if np.issubdtype(image.dtype, np.integer):
                values = np.clip(np.rint(values), 0, scale)
            target[patch.rows, patch.cols, :colour_channels][wins] = values[wins].astype(image.dtype)
        return out

    @abstractmethod
    def _cover(self, crop: np.ndarray, patch: Patch, rng: np.random.Generator) -> np.ndarray:
        """What replaces ``crop`` (float32 H x W x C in [0, 1], the region's rectangle); same shape and range."""


def _value_scale(image: np.ndarray) -> float:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
    if np.issubdtype(image.dtype, np.integer) and image.dtype in (np.uint8, np.uint16):
        return float(np.iinfo(image.dtype).max)
    if np.issubdtype(image.dtype, np.floating):
        return 1.0
    raise ValueError(f"unsupported pixel type {image.dtype}: expected uint8, uint16 or float in [0, 1]")


def _colour_channels(image: np.ndarray) -> int:
    """How many leading channels carry colour: gray+alpha and BGRA keep their last channel (alpha) untouched."""
    if image.ndim == 2:
        return 1
    if image.ndim == 3 and image.shape[2] in (1, 2, 3, 4):
        return {1: 1, 2: 1, 3: 3, 4: 3}[image.shape[2]]
    raise ValueError(f"unsupported image shape {image.shape}: expected H x W or H x W x 1/2/3/4")


def block_means(crop: np.ndarray, weights: np.ndarray, blocks_x: int, blocks_y: int) -> np.ndarray:
    """Mask-weighted mean colour of each of ``blocks_y`` x ``blocks_x`` blocks of ``crop`` (H x W x C float32).

    Weighted by the mask so that a block's colour is the colour of what gets painted over, not of the corners
    of the rectangle outside the ellipse.
    """
    size = (max(1, blocks_x), max(1, blocks_y))
    weighted = cv2.resize(crop * weights[..., None], size, interpolation=cv2.INTER_AREA)
    total = cv2.resize(weights, size, interpolation=cv2.INTER_AREA)
    plain = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    weighted = weighted.reshape(size[1], size[0], -1)
    plain = plain.reshape(size[1], size[0], -1)
    total = total.reshape(size[1], size[0], 1)
    return np.where(total > 1e-6, weighted / np.maximum(total, 1e-6), plain).astype(np.float32)


def stretch(small: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upscaling of a block grid to ``height`` x ``width``, keeping the channel axis."""
    big = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    return big.reshape(height, width, small.shape[2])
