"""Viola-Jones Haar cascades shipped with OpenCV: the detector that needs no download."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import cv2
import cv2.data
import numpy as np

from detectors.base import Detection, Detector
from detectors.geometry import box_detection, merge_overlapping, resize_to
from detectors.models import ModelMissingError
from detectors.registry import register
from detectors.settings import OneOf, Pixels, Score, Settings, Share, Within

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


@dataclass(frozen=True)
class HaarSettings(Settings):
    """What HaarDetector takes (its docstring says what each does)."""

    threshold: Score = 0.0
    min_neighbors: Annotated[int, Within(0)] = 5
    scale_factor: Annotated[float, Within(1.01)] = 1.1
    min_size: Pixels = 24
    max_side: Pixels = 1280
    frontal: Annotated[str, OneOf(("default", "alt2"))] = "default"
    profile: bool = True
    nms_iou: Share = 0.3


@register("haar", HaarSettings)
class HaarDetector(Detector):
    """Frontal plus profile cascades, the profile one also on the mirrored image (it only knows one side).

    Works on a grayscale copy whose longest side is at most ``max_side`` (cascades cost grows with the
    pixel count and gains little above ~1300 px), so on a big photo the smallest face found is about
    ``min_size`` x (longest side / ``max_side``) source pixels. The score is the share of agreeing
    neighbour windows, n / (n + min_neighbors), in (0.5, 1) for every box that passes ``min_neighbors``;
    ``threshold`` filters on it.

    Not thread-safe (cv2.CascadeClassifier per instance): give each thread its own detector.
    """

    def __init__(self, settings: HaarSettings | None = None) -> None:
        self.settings = settings = settings or HaarSettings()
        frontal = FRONTAL_CASCADES[0] if settings.frontal == "default" else FRONTAL_CASCADES[1]
        self._frontal = _load_cascade(frontal)
        self._profile = _load_cascade(PROFILE_CASCADE) if settings.profile else None

    def _find(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        if min(height, width) < self.settings.min_size:
            return []
        scale = min(1.0, self.settings.max_side / max(height, width))
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
            if score >= self.settings.threshold
        ]
        return merge_overlapping(found, iou_threshold=self.settings.nms_iou)

    def _run(self, cascade: cv2.CascadeClassifier, gray: np.ndarray) -> list[tuple[int, int, int, int, float]]:
        rects, neighbours = cascade.detectMultiScale2(
            np.ascontiguousarray(gray),
            scaleFactor=self.settings.scale_factor,
            minNeighbors=self.settings.min_neighbors,
            minSize=(self.settings.min_size, self.settings.min_size),
        )
        return [
            (int(x), int(y), int(w), int(h), float(n) / (float(n) + max(1, self.settings.min_neighbors)))
            for (x, y, w, h), n in zip(rects, np.ravel(neighbours), strict=True)
        ]
