"""Filters that make faces unrecognizable, created by name: ``create("noise").apply(image, boxes)``.

``boxes`` are anything with ``x, y, w, h`` in pixels (``Box``): the faces a detector found, and ``Region``s a user
added, which may carry a shape of their own. The mask defaults (``DEFAULT_MASK``, ``DEFAULT_MARGIN``,
``DEFAULT_MIN_MARGIN``) are defined here once; the command line and the bot take them from here.

Which can be undone, in principle:
- ``noise`` (default), ``solid``: irreversible. The face's pixels are replaced by one mean colour of the grown
  region (plus fresh random noise); nothing else of the original is left in the output.
- ``pixelate``: irreversible, but it keeps ``blocks`` x ``blocks`` mean colours (8 across the grown region,
  about 6 across the face); enough to tell skin and hair colour, perhaps to match against a few known faces.
- ``blur``: REVERSIBLE in principle. A Gaussian blur is a known linear operator: deblurring, or a recognizer
  trained on blurred faces, can recover identity. The default strength defeats face detectors, not a
  determined adversary. Use it only where appearance matters more than privacy.

Tests back these claims (tests/test_irreversibility.py): after noise, solid and blur no detector finds the face,
and after pixelate none but SCRFD, which still sees a head in the block means (that a face is there, not whose);
after noise, pixelate and solid the covered face keeps no structure of the original.
"""

from filters import builtin as _builtin  # noqa: F401  (registers the filters)
from filters.base import Filter
from filters.masks import DEFAULT_MARGIN, DEFAULT_MASK, DEFAULT_MIN_MARGIN, mask
from filters.outlines import numbered_outlines
from filters.regions import SHAPES, Box, Region
from filters.registry import available, create, register

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_MASK",
    "DEFAULT_MIN_MARGIN",
    "SHAPES",
    "Box",
    "Filter",
    "Region",
    "available",
    "create",
    "mask",
    "numbered_outlines",
    "register",
]
