"""A higher threshold never gives more boxes: for every detector and chain, on real photos.

Detectors with size tiers ask less of small boxes and more of large ones, and drop weak boxes beside a face; each of
those rules must follow the threshold in the same direction, or ``--threshold 0.9`` paints more than 0.3 does.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import detectors
from anonymizer.codec import decode_image
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


@pytest.mark.parametrize("spec", SPECS)
def test_a_higher_threshold_never_gives_more_boxes(spec: str, photos: dict[str, np.ndarray]) -> None:
    counts = {
        name: [len(detectors.create(spec, threshold=t).detect(image)) for t in THRESHOLDS]
        for name, image in photos.items()
    }
    for name, by_threshold in counts.items():
        assert all(a >= b for a, b in itertools.pairwise(by_threshold)), (name, by_threshold, THRESHOLDS)
    assert counts["group"][0] > 0, "the photo must hold faces the detector finds, or the test proves nothing"
