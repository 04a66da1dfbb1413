"""The value type every detector returns and the interface every detector implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class Detection:
    """One face: a box in the original image's pixels, the detector's confidence and its name.

    Kept as a small value type instead of a tuple so that callers never confuse (x, y, w, h)
    with (x1, y1, x2, y2) and always know which detector produced a box.
    """

    x: int
    y: int
    w: int
    h: int
    score: float
    detector: str

    @property
    def area(self) -> int:
        return self.w * self.h

    def iou(self, other: Detection) -> float:
        """Intersection over union of the two boxes (0 when they do not overlap)."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clipped(self, width: int, height: int) -> Detection | None:
        """This box cut to the image, or None when nothing of it lies inside."""
        x1, y1 = max(0, self.x), max(0, self.y)
        x2, y2 = min(width, self.x + self.w), min(height, self.y + self.h)
        if x2 <= x1 or y2 <= y1:
            return None
        return Detection(x1, y1, x2 - x1, y2 - y1, self.score, self.detector)


class Detector(ABC):
    """Finds faces in a BGR uint8 image of any size; never raises on an image without faces.

    ``detect`` is the same for every detector (input normalised, empty images answered, boxes clipped), so a new
    detector only says how it finds faces (``_find``) and cannot forget the contract.
    """

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in ``image`` (H x W x 3 BGR uint8; grey and BGRA accepted), boxes clipped to the image."""
        image = as_bgr(image)
        height, width = image.shape[:2]
        if not width or not height:
            return []
        return [box for found in self._find(image) if (box := found.clipped(width, height)) is not None]

    @abstractmethod
    def _find(self, image: np.ndarray) -> list[Detection]:
        """Faces in a non-empty H x W x 3 BGR uint8 image; boxes may reach past its edges (``detect`` clips)."""


def as_bgr(image: np.ndarray) -> np.ndarray:
    """The image as H x W x 3 uint8 BGR: grayscale is expanded and an alpha channel dropped.

    Callers should already pass BGR; this only keeps a detector from crashing on the common near-misses.
    """
    if image.dtype != np.uint8:
        raise ValueError(f"detectors need a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"detectors need an H x W x 3 BGR image, got shape {image.shape}")
