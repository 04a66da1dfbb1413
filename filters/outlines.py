"""Numbered outlines around regions, for a preview where a user picks faces by number: each outline and its number
are sized to the face they mark, so a crowd's small faces stay readable and a close-up's number is not a speck."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from filters.regions import Box

# Yellow on a dark badge: readable on skin, hair, sky and over the noise that covers a face.
OUTLINE_BGR = (0, 220, 255)
BADGE_BGR = (20, 20, 20)


def numbered_outlines(image: np.ndarray, boxes: Sequence[Box], first: int = 1) -> np.ndarray:
    """A copy of a BGR uint8 ``image`` with each box outlined and numbered from ``first`` in the order given."""
    out = image.copy()
    height, width = out.shape[:2]
    for number, box in enumerate(boxes, first):
        side = min(box.w, box.h)
        thickness = max(2, round(side / 40))
        cv2.rectangle(out, (box.x, box.y), (box.x + box.w - 1, box.y + box.h - 1), OUTLINE_BGR, thickness)
        label = str(number)
        scale = max(0.5, min(side / 90, min(width, height) / 400))
        text_w, text_h = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0]
        pad = thickness + 2
        left = min(max(0, box.x), max(0, width - text_w - 2 * pad))
        top = min(max(0, box.y), max(0, height - text_h - 2 * pad))
        cv2.rectangle(out, (left, top), (left + text_w + 2 * pad, top + text_h + 2 * pad), BADGE_BGR, cv2.FILLED)
        baseline = (left + pad, top + pad + text_h)
        cv2.putText(out, label, baseline, cv2.FONT_HERSHEY_SIMPLEX, scale, OUTLINE_BGR, thickness, cv2.LINE_AA)
    return out
