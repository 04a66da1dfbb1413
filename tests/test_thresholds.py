"""A higher threshold never paints more: for every detector and chain, on real photos.

Detectors with size tiers ask less of small boxes and more of large ones, and drop weak boxes beside a face; each of
those rules must follow the threshold in the same direction, or ``--threshold 0.9`` paints more than 0.3 does. What
is judged is the painted area, not the number of boxes: a union chain merges overlapping boxes into their envelope,
so at a low threshold one weak, large box can join several faces into one box that covers all of them.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import detectors
from anonymizer.codec import decode_image
from detectors.base import Detection
from testing.images import astronaut_bgr, composite
from testing.paths import EVAL_DIR

THRESHOLDS = (0.1, 0.3, 0.5, 0.9)
SPECS = [
    *(name for name in detectors.available() if name not in detectors.registry.PRESETS),
    "thorough",
    "ssd,haar",
    "union:yunet,ssd",
    "backup:scrfd,yunet,haar",
]
# A crowd of the labelled set, with faces of every size: where tiers and the beside-a-face rule matter most.
CROWD = EVAL_DIR / "images/wider_val/0--Parade/0_Parade_marchingband_1_765.jpg"


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """The astronaut, a group of her at sizes from 16 px to a close-up, and a labelled crowd where it is here."""
    group, _ = composite((1600, 1200), [(40, 40, 16), (120, 40, 24), (260, 60, 40), (500, 80, 90), (800, 300, 420)])
    found = {"astronaut": astronaut_bgr(), "group": group}
    if CROWD.exists():
        found["crowd"] = decode_image(CROWD.read_bytes()).bgr
    return found


def painted(image: np.ndarray, found: list[Detection]) -> np.ndarray:
    """The pixels a filter would cover: the union of the boxes, clipped to the photo."""
    mask = np.zeros(image.shape[:2], dtype=bool)
    for d in found:
        mask[max(d.y, 0) : d.y + d.h, max(d.x, 0) : d.x + d.w] = True
    return mask


@pytest.mark.parametrize("spec", SPECS)
def test_a_higher_threshold_never_paints_more(spec: str, photos: dict[str, np.ndarray]) -> None:
    for name, image in photos.items():
        masks = [painted(image, detectors.create(spec, threshold=t).detect(image)) for t in THRESHOLDS]
        for (low, lower_mask), (high, higher_mask) in itertools.pairwise(zip(THRESHOLDS, masks, strict=True)):
            beyond = np.count_nonzero(higher_mask & ~lower_mask)
            # A pixel row of slack: two passes' envelopes may differ by a rounding step at a box's side.
            slack = 2 * (image.shape[0] + image.shape[1])
            assert beyond <= slack, f"{name}: threshold {high} paints {beyond} px that {low} leaves alone"
        if name == "group":
            assert masks[0].any(), "the photo must hold faces the detector finds, or the test proves nothing"
