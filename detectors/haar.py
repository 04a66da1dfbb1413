"""Viola-Jones Haar cascades shipped with OpenCV: the detector that needs no download."""

from __future__ import annotations

from pathlib import Path

import cv2
import cv2.data
import numpy as np

from detectors.base import Detection, Detector
from detectors.geometry import box_detection, merge_overlapping, resize_to
from detectors.models import ModelMissingError
from detectors.registry import register

FRONTAL_CASCADES = ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml")
PROFILE_CASCADE = "haarcascade_profileface.xml"


def _load_cascade(filename: str) -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / filename
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ModelMissingError(
            f"Haar cascade {filename} not found in {path.parent}; install opencv-contrib-python-headless 4.x"
        )
    return cascade


@register("haar")
class HaarDetector(Detector):
    """Frontal plus profile cascades, the profile one also on the mirrored image (it only knows one side).

    Works on a grayscale copy whose longest side is at most ``max_side`` (cascades cost grows with the
    pixel count and gains little above ~1300 px), so on a big photo the smallest face found is about
    ``min_size`` x (longest side / ``max_side``) source pixels. The score is the share of agreeing
    neighbour windows, n / (n + min_neighbors), in (0.5, 1) for every box that passes ``min_neighbors``;
    ``threshold`` filters on it.

    Not thread-safe (cv2.CascadeClassifier per instance): give each thread its own detector.
    """

    def __init__(
        self,
        threshold: float = 0.0,
        min_neighbors: int = 5,
        scale_factor: float = 1.1,
        min_size: int = 24,
        max_side: int = 1280,
        frontal: str = "default",
        profile: bool = True,
        nms_iou: float = 0.3,
    ) -> None:
        if frontal not in ("default", "alt2"):
            raise ValueError("frontal must be 'default' or 'alt2'")
        self.threshold = threshold
        self.min_neighbors = min_neighbors
        self.scale_factor = scale_factor
        self.min_size = min_size
        self.max_side = max_side
        self.nms_iou = nms_iou
        self._frontal = _load_cascade(FRONTAL_CASCADES[0] if frontal == "default" else FRONTAL_CASCADES[1])
        self._profile = _load_cascade(PROFILE_CASCADE) if profile else None

    def _find(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        if min(height, width) < self.min_size:
            return []
        scale = min(1.0, self.max_side / max(height, width))
        gray = cv2.cvtColor(resize_to(image, scale), cv2.COLOR_BGR2GRAY)
        boxes = self._run(self._frontal, gray)
        if self._profile is not None:
            boxes += self._run(self._profile, gray)
            mirrored_width = gray.shape[1]
            boxes += [
                (mirrored_width - x - w, y, w, h, score)
                for x, y, w, h, score in self._run(self._profile, gray[:, ::-1])
            ]
        found = [
            box_detection(x / scale, y / scale, (x + w) / scale, (y + h) / scale, score, self.name)
            for x, y, w, h, score in boxes
            if score >= self.threshold
        ]
        return merge_overlapping(found, iou_threshold=self.nms_iou)

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> list[tuple[int, int, int, int, float]]:
        rects, neighbours = cascade.detectMultiScale2(
            np.ascontiguousarray(gray),
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return [
            (int(x), int(y), int(w), int(h), float(n) / (float(n) + max(1, self.min_neighbors)))
            for (x, y, w, h), n in zip(rects, np.ravel(neighbours), strict=True)
        ]
