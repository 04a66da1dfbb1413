"""Where a filter paints: the face box grown by a margin, as an ellipse or a box, with a soft outer edge.

Written once and shared by every filter, so ``Filter.mask`` is exactly what ``Filter.apply`` paints.

Geometry, in units of the grown region (normalized radius ``r``: 0 at the centre, 1 on the outline):
- the face box is grown by ``margin`` of its width/height on each side (deface's ``--mask-scale 1.3`` is
  ``margin=0.3``: the ellipse is 1.6 x the box), and by at least ``min_margin`` pixels: a detector's box is a
  few pixels off whatever the face's size, which on a 15 px face is a third of it;
- the shape is the filter's mask, unless the region is a ``Region`` a user drew with a shape of its own;
- weight 1 for ``r <= 1 - feather``, falling smoothly to 0 at ``r = 1`` (ellipse: Euclidean ``r``; box:
  the larger of the two axis distances);
- the face box itself is always weight 1, whatever the margin and feather: with ``margin=0.3`` its corners
  sit at ``r = 0.88`` of the ellipse, inside the solid part, but a smaller margin would leave them out.

Everything is computed inside each region's bounding rectangle only, clipped to the image, so a 12 MP photo
with dozens of faces costs no full-image work per face.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from filters.regions import SHAPES, Box, Region

# The defaults of every filter, and so of the command line and the bot (``anonymizer.options`` takes them from
# here). Each side of the face box grows by 15 % of the face and by at least 6 px (the box itself is always
# painted whole): a detector's box is a few pixels off whatever the face's size, which only a pixel floor absorbs
# on small faces. A larger floor covers more small faces for a little more paint; a larger margin, such as
# deface's 0.3 (--mask-scale 1.3), paints more for fewer faces (`python -m benchmarks.compare_detectors` measures
# each).
DEFAULT_MASK = "ellipse"
DEFAULT_MARGIN = 0.15
DEFAULT_MIN_MARGIN = 6.0
DEFAULT_FEATHER = 0.1


@dataclass(frozen=True)
class Patch:
    """One region's painted area inside its rectangle ``[top:bottom, left:right]`` of the image.

    Its weights are computed when asked for, all of them, a strip of rows or at sample points: a selfie's region is
    megapixels, which ``Filter.apply`` paints a strip at a time rather than hold them all. ``grown_w``/``grown_h``
    are the grown region's full size before clipping to the image, so filters that scale with the face (blur sigma,
    pixel blocks, noise grain) do not change when a face touches the border.
    """

    top: int
    bottom: int
    left: int
    right: int
    face_w: float
    face_h: float
    centre_x: float
    centre_y: float
    half_w: float
    half_h: float
    ellipse: bool
    feather: float
    # The face box in whole pixels (left, top, right, bottom), painted with weight 1 whatever the shape.
    face_box: tuple[int, int, int, int]

    @property
    def rows(self) -> slice:
        return slice(self.top, self.bottom)

    @property
    def cols(self) -> slice:
        return slice(self.left, self.right)

    @property
    def grown_w(self) -> float:
        return 2 * self.half_w

    @property
    def grown_h(self) -> float:
        return 2 * self.half_h

    @cached_property
    def weights(self) -> np.ndarray:
        """Float32 weights of every pixel of the rectangle, kept once asked for: ``Filter.apply`` asks twice for a
        small region (for its mean colour, then to paint it) and never for a large one."""
        width, height = self.right - self.left, self.bottom - self.top
        return self._weights_on((self.left, width, width), (self.top, height, height))

    def row_weights(self, top: int, bottom: int) -> np.ndarray:
        """Float32 weights of image rows ``top:bottom`` across the rectangle."""
        if (top, bottom) == (self.top, self.bottom):
            return self.weights
        width = self.right - self.left
        return self._weights_on((self.left, width, width), (top, bottom - top, bottom - top))

    def cell_weights(self, size: int, across: int, down: int) -> np.ndarray:
        """Float32 ``down`` x ``across`` weights at the centres of square cells of ``size`` pixels laid from the
        rectangle's top left corner; for single pixels, ``weights``."""
        if size == 1:
            return self.weights
        return self._weights_on((self.left, across * size, across), (self.top, down * size, down))

    def _weights_on(self, columns: tuple[int, int, int], rows: tuple[int, int, int]) -> np.ndarray:
        """Float32 weights at the centres of a grid of cells, given as ``(start, length, count)`` in image pixels
        along each axis; made in place, with one temporary of their size."""
        dx = (_centres(*columns) - self.centre_x) / self.half_w
        dy = (_centres(*rows) - self.centre_y) / self.half_h
        if self.ellipse:
            radius = np.add.outer(dy * dy, dx * dx)
            np.sqrt(radius, out=radius)
        else:
            radius = np.maximum.outer(np.abs(dy), np.abs(dx))
        weights = _soft_edge(radius, self.feather)
        left, top, right, bottom = self.face_box
        weights[_inside(*rows, top, bottom), _inside(*columns, left, right)] = 1.0
        return weights


def _centres(start: int, length: int, count: int) -> np.ndarray:
    """Float32 centres of ``count`` equal cells over pixels ``start:start + length``: ``i + 0.5`` for pixel ``i``."""
    step = length / count
    return np.arange(start + step / 2, start + length, step, dtype=np.float32)


def _inside(start: int, length: int, count: int, low: int, high: int) -> slice:
    """The cells of ``_centres(start, length, count)`` whose centres lie in ``[low, high)``; for single pixels, the
    pixels ``low:high``."""
    step = length / count
    first = min(count, max(0, math.ceil((low - start) / step - 0.5)))
    end = min(count, max(0, math.ceil((high - start) / step - 0.5)))
    return slice(first, end)


@dataclass(frozen=True)
class MaskSpec:
    """Shape, margin and soft edge of the painted area; validated once, used by every filter."""

    shape: str = DEFAULT_MASK
    margin: float = DEFAULT_MARGIN
    feather: float = DEFAULT_FEATHER
    min_margin: float = DEFAULT_MIN_MARGIN

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"mask must be one of {', '.join(SHAPES)}, not {self.shape!r}")
        if not (math.isfinite(self.margin) and 0 <= self.margin <= 5):
            raise ValueError(f"margin must be between 0 and 5 (share of the face size per side), not {self.margin}")
        if not (math.isfinite(self.min_margin) and 0 <= self.min_margin <= 1000):
            raise ValueError(f"min_margin must be between 0 and 1000 (pixels per side), not {self.min_margin}")
        if not (math.isfinite(self.feather) and 0 <= self.feather < 1):
            raise ValueError(f"feather must be in [0, 1) (share of the grown region's radius), not {self.feather}")

    def patch(self, region: Box, shape_hw: tuple[int, int]) -> Patch | None:
        """The painted area of one region, or None when it is empty or lies wholly outside the image."""
        height, width = shape_hw[:2]
        face_w, face_h = float(region.w), float(region.h)
        if not (face_w > 0 and face_h > 0):
            return None
        centre_x, centre_y = region.x + face_w / 2, region.y + face_h / 2
        half_w = face_w / 2 + max(face_w * self.margin, self.min_margin)
        half_h = face_h / 2 + max(face_h * self.margin, self.min_margin)
        left, right = max(0, math.floor(centre_x - half_w)), min(width, math.ceil(centre_x + half_w))
        top, bottom = max(0, math.floor(centre_y - half_h)), min(height, math.ceil(centre_y + half_h))
        if right <= left or bottom <= top:
            return None

        x, y = region.x, region.y
        face_box = (math.floor(x), math.floor(y), math.ceil(x + face_w), math.ceil(y + face_h))
        return Patch(
            top,
            bottom,
            left,
            right,
            face_w,
            face_h,
            centre_x,
            centre_y,
            half_w,
            half_h,
            ellipse=self._shape_of(region) == "ellipse",
            feather=self.feather,
            face_box=face_box,
        )

    def _shape_of(self, region: Box) -> str:
        """The region's own shape when a user drew it with one, else this mask's."""
        return region.shape if isinstance(region, Region) and region.shape is not None else self.shape

    def patches(self, regions: Iterable[Box], shape_hw: tuple[int, int]) -> list[Patch]:
        return [p for p in (self.patch(region, shape_hw) for region in regions) if p is not None]

    def render(self, shape_hw: tuple[int, int], regions: Iterable[Box]) -> np.ndarray:
        """The combined mask: each pixel takes the largest weight of any region covering it."""
        combined = np.zeros(shape_hw[:2], np.float32)
        for p in self.patches(regions, shape_hw):
            np.maximum(combined[p.rows, p.cols], p.weights, out=combined[p.rows, p.cols])
        return combined


def _soft_edge(radius: np.ndarray, feather: float) -> np.ndarray:
    """1 inside ``1 - feather``, 0 from 1 outwards, smoothstep in between (no visible seam); float32 ``radius`` is
    used up."""
    if feather == 0:
        return (radius < 1).astype(np.float32)
    t = np.subtract(1, radius, out=radius)
    t /= feather
    np.maximum(t, 0, out=t)
    np.minimum(t, 1, out=t)
    square = t * t
    t *= -2
    t += 3
    t *= square
    return t


def mask(
    shape_hw: tuple[int, ...],
    regions: Iterable[Box],
    shape: str = DEFAULT_MASK,
    margin: float = DEFAULT_MARGIN,
    feather: float = DEFAULT_FEATHER,
    min_margin: float = DEFAULT_MIN_MARGIN,
) -> np.ndarray:
    """Float32 H x W weights in [0, 1]: where and how strongly a filter paints over ``regions``."""
    return MaskSpec(shape, margin, feather, min_margin).render((shape_hw[0], shape_hw[1]), regions)
