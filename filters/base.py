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

# Big regions are painted in strips of rows of about this many pixels, so the mask and the blend work in small
# buffers that stay in cache and reuse memory, rather than in megapixel temporaries the system must first supply.
_STRIP_PIXELS = 1 << 16
# Mean colours are taken from a copy of the region shrunk to about this many samples across (more for many blocks):
# on a large face they come out as the full-size means would, to a level or so, for a small part of the cost.
_SAMPLES = 128
_SAMPLES_PER_BLOCK = 8
# The integer pixel types and their largest values, which stand for 1.
_INTEGER_MAXIMA = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class Filter(ABC):
    """Covers face regions of an image; the one public call is ``apply``, ``mask`` says where it paints.

    Subclasses only say what a covered region looks like (``_cover``, a small picture enlarged to the region by
    ``_interpolation``); reading pixel types and channels, masks, soft-edge blending and overlap handling live here
    once.
    """

    name: ClassVar[str]
    # Seed of the generator handed to ``_cover`` on each call; None draws fresh OS entropy (only noise uses it).
    _seed: int | None = None
    # How ``_cover``'s picture is enlarged to the region: blocks stay sharp unless a filter says otherwise.
    _interpolation: ClassVar[int] = cv2.INTER_NEAREST

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
        overlapping = _overlapping(patches)
        painted = np.zeros(image.shape[:2], np.float32) if any(overlapping) else None
        rng = np.random.default_rng(self._seed)
        for patch, overlaps in zip(patches, overlapping, strict=True):
            crop = source[patch.rows, patch.cols, :colour_channels]
            small = _in_values(self._cover(crop, patch, rng) * scale, image.dtype)
            height, width = crop.shape[:2]
            cover = cv2.resize(small, (width, height), interpolation=self._interpolation).reshape(crop.shape)
            _paint(target[patch.rows, patch.cols, :colour_channels], crop, cover, patch, painted if overlaps else None)
        return out

    @abstractmethod
    def _cover(self, crop: np.ndarray, patch: Patch, rng: np.random.Generator) -> np.ndarray:
        """A small float32 h x w x C picture in [0, 1] of what replaces ``crop`` (the region's rectangle in the
        image's own type, H x W x C), to be enlarged to it by ``_interpolation``; ``crop`` is not to be changed."""


def _overlapping(patches: list[Patch]) -> list[bool]:
    """Whether each patch's rectangle meets another's: only those need to know what the others have painted."""
    if len(patches) < 2:
        return [False] * len(patches)
    top, bottom, left, right = np.array([(p.top, p.bottom, p.left, p.right) for p in patches]).T
    meets = (top[:, None] < bottom) & (top < bottom[:, None]) & (left[:, None] < right) & (left < right[:, None])
    # Each rectangle meets itself.
    return (np.count_nonzero(meets, axis=1) > 1).tolist()


def _paint(target: np.ndarray, source: np.ndarray, cover: np.ndarray, patch: Patch, painted: np.ndarray | None) -> None:
    """``cover`` over ``source`` by the patch's weights, into ``target`` (all three the region's rectangle, in the
    image's type), where the patch weighs more than what ``painted`` holds; ``painted`` is raised to match.

    Only the soft edge is blended, in floats: where the weight is 1 the result is the cover itself, and where it is
    0 the pixel stays, so most of a large face is copied in the image's own type (the cover goes wherever the patch
    wins, and the soft edge is then painted over with the blend).
    """
    height, width, channels = source.shape
    step = max(1, _STRIP_PIXELS // width)
    for start in range(0, height, step):
        rows = slice(start, min(start + step, height))
        top, bottom = patch.top + rows.start, patch.top + rows.stop
        weights = patch.row_weights(top, bottom)
        if painted is None:
            wins = weights > 0
        else:
            already = painted[top:bottom, patch.cols]
            wins = weights > already
            np.maximum(already, weights, out=already)
        # A contiguous copy: OpenCV's masked copy writes into it in place, a fraction of numpy's masked copy's time.
        strip = target[rows].copy()
        cv2.copyTo(cover[rows], wins.view(np.uint8), strip)
        edge = np.flatnonzero(wins & (weights < 1))
        if edge.size:
            weight = weights.reshape(-1)[edge, None]
            over = np.take(cover[rows].reshape(-1, channels), edge, axis=0)
            under = np.take(source[rows].reshape(-1, channels), edge, axis=0)
            strip.reshape(-1, channels)[edge] = _in_values(weight * over + (1 - weight) * under, strip.dtype)
        target[rows] = strip


def _in_values(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float ``values`` on the scale of ``dtype`` as that type, rounded and saturated for integers; ``values`` is
    used up."""
    if dtype == np.uint8:
        return cv2.convertScaleAbs(values).reshape(values.shape)
    maximum = _INTEGER_MAXIMA.get(dtype)
    if maximum is None:
        return values.astype(dtype)
    np.rint(values, out=values)
    np.maximum(values, 0, out=values)
    return np.minimum(values, maximum, out=values).astype(dtype)


def _value_scale(image: np.ndarray) -> float:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, not {type(image).__name__}")
    if image.dtype in _INTEGER_MAXIMA:
        return _INTEGER_MAXIMA[image.dtype]
    if image.dtype in (np.float32, np.float64):
        return 1.0
    raise ValueError(f"unsupported pixel type {image.dtype}: expected uint8, uint16 or float32/64 in [0, 1]")


def _colour_channels(image: np.ndarray) -> int:
    """How many leading channels carry colour: gray+alpha and BGRA keep their last channel (alpha) untouched."""
    if image.ndim == 2:
        return 1
    if image.ndim == 3 and image.shape[2] in (1, 2, 3, 4):
        return {1: 1, 2: 1, 3: 3, 4: 3}[image.shape[2]]
    raise ValueError(f"unsupported image shape {image.shape}: expected H x W or H x W x 1/2/3/4")


def shrunk(crop: np.ndarray, width: int, height: int) -> np.ndarray:
    """``crop`` (H x W x C, the image's type) as float32 ``height`` x ``width`` x C area means in [0, 1]."""
    if (height, width) != crop.shape[:2]:
        crop = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA).reshape(height, width, crop.shape[2])
    return _in_unit(crop)


def _in_unit(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` in the image's own values as float32 in [0, 1]."""
    return np.divide(pixels, _value_scale(pixels), dtype=np.float32)


def block_means(crop: np.ndarray, patch: Patch, blocks_x: int, blocks_y: int) -> np.ndarray:
    """Mask-weighted mean colour, float32 in [0, 1], of each of ``blocks_y`` x ``blocks_x`` blocks of ``crop`` (the
    patch's rectangle, H x W x C in the image's type).

    Weighted by the mask so that a block's colour is the colour of what gets painted over, not of the corners
    of the rectangle outside the ellipse. Taken from a copy shrunk to at least ``_SAMPLES`` samples across (and
    ``_SAMPLES_PER_BLOCK`` per block), weighted at their centres, so a large face costs one pass over its pixels.
    Every sample weighs at least a millionth: a block wholly outside the mask takes its plain mean rather than
    0 / 0, and any other block's mean moves by a millionth at most.
    """
    size = (max(1, blocks_x), max(1, blocks_y))
    height, width = crop.shape[:2]
    factor = max(
        1,
        min(
            width // max(_SAMPLES, _SAMPLES_PER_BLOCK * size[0]),
            height // max(_SAMPLES, _SAMPLES_PER_BLOCK * size[1]),
        ),
    )
    # Shrunk by a whole factor, which keeps OpenCV on its fast path for area means: a few times faster on a selfie's
    # face than an arbitrary size. Samples at the far edges are cut short, or left out when under half a sample.
    sample = crop if factor == 1 else cv2.resize(crop, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    down, across = sample.shape[:2]
    sample = _in_unit(sample.reshape(down, across, crop.shape[2]))
    weights = patch.cell_weights(factor, across, down) + 1e-6
    weighted = cv2.resize(sample * weights[..., None], size, interpolation=cv2.INTER_AREA)
    total = cv2.resize(weights, size, interpolation=cv2.INTER_AREA)
    return weighted.reshape(size[1], size[0], -1) / total.reshape(size[1], size[0], 1)


def stretch(small: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upscaling of a block grid to ``height`` x ``width``, keeping the channel axis."""
    big = cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)
    return big.reshape(height, width, small.shape[2])
