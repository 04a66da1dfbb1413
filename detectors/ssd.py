"""OpenCV's ResNet-10 SSD face detector, run on a pyramid of overlapping tiles so small faces survive."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detectors.base import Detection, Detector
from detectors.geometry import box_detection, boxes_by_window, merge_overlapping, resize_to, window_starts
from detectors.models import model_path
from detectors.registry import register
from detectors.settings import Distance, Pixels, Score, Settings, Share

PROTOTXT = "deploy.prototxt"
WEIGHTS = "res10_300x300_ssd_iter_140000.caffemodel"
INPUT = 300
MEAN = (104.0, 177.0, 123.0)


def _tiles_at(scale: float, width: int, height: int, overlap: float) -> int:
    return len(_starts(round(width * scale), overlap)) * len(_starts(round(height * scale), overlap))


def _starts(length: int, overlap: float) -> list[int]:
    return window_starts(length, INPUT, INPUT * overlap)


@dataclass(frozen=True)
class SsdSettings(Settings):
    """What SsdDetector takes (its docstring says what each does)."""

    threshold: Score = 0.5
    min_tile: Pixels = 300
    max_tiles: Pixels = 48
    overlap: Share = 0.3
    nms_iou: Share = 0.3
    edge_margin: Distance = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.overlap >= 1:
            raise ValueError(f"overlap is a share under 1, not {self.overlap}")


@register("ssd", SsdSettings)
class SsdDetector(Detector):
    """ResNet-10 SSD (300 x 300 input) over the whole image plus overlapping tiles at several scales.

    The network finds faces of roughly 30-300 px in its 300 px input, so one whole-image pass misses the
    small faces of a big photo. Each pyramid level scales the image so that a square of T source pixels
    becomes one 300 px input tile; T doubles from the finest level up to the whole image. The finest T is
    ``min_tile`` unless that would exceed ``max_tiles`` network runs, in which case it grows until the plan
    fits: the cost stays bounded (a known number of network runs) and the smallest face found on a big
    photo grows instead (about T / 10). Tiles overlap by the share ``overlap`` so a face up to that share of
    a tile lies wholly in one; boxes touching an inner tile side (within ``edge_margin`` input px) are cut
    faces and dropped. Boxes of all passes are merged by IoU/containment (``nms_iou``).

    Not thread-safe (one cv2.dnn.Net per instance): give each thread its own detector.
    """

    def __init__(self, settings: SsdSettings | None = None) -> None:
        self.settings = settings or SsdSettings()
        self._net = cv2.dnn.readNetFromCaffe(str(model_path(PROTOTXT)), str(model_path(WEIGHTS)))

    def scales(self, width: int, height: int) -> list[float]:
        """The pyramid's image scales, coarsest (whole image in one input) first."""
        longest = max(width, height)
        whole = INPUT / max(longest, 1)
        budget = self.settings.max_tiles - 1
        tile = float(self.settings.min_tile)
        while tile < longest:
            levels = []
            level_tile = tile
            while level_tile < longest:
                levels.append(INPUT / level_tile)
                level_tile *= 2
            if sum(_tiles_at(s, width, height, self.settings.overlap) for s in levels) <= budget:
                return [whole, *reversed(levels)]
            tile *= 1.1
        return [whole]

    def runs(self, width: int, height: int) -> int:
        """How many 300 x 300 network runs an image of this size costs (at most ``max_tiles``)."""
        return sum(_tiles_at(scale, width, height, self.settings.overlap) for scale in self.scales(width, height))

    def _find(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        found: list[Detection] = []
        for scale in self.scales(width, height):
            found.extend(self._detect_level(image, scale))
        return merge_overlapping(found, iou_threshold=self.settings.nms_iou)

    def _detect_level(self, image: np.ndarray, scale: float) -> list[Detection]:
        windows = boxes_by_window(
            resize_to(image, scale), INPUT, INPUT * self.settings.overlap, self._run, self.settings.edge_margin
        )
        return [
            box_detection(x1 / scale, y1 / scale, x2 / scale, y2 / scale, score, self.name)
            for x1, y1, x2, y2, score in windows
        ]

    def _run(self, tile: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Faces in one tile of at most INPUT px a side, padded (with the mean, i.e. zero input) to the square."""
        tile_h, tile_w = tile.shape[:2]
        if tile_h != INPUT or tile_w != INPUT:
            tile = cv2.copyMakeBorder(tile, 0, INPUT - tile_h, 0, INPUT - tile_w, cv2.BORDER_CONSTANT, value=MEAN)
        self._net.setInput(cv2.dnn.blobFromImage(tile, 1.0, (INPUT, INPUT), MEAN, swapRB=False, crop=False))
        output = self._net.forward()[0, 0]
        boxes = []
        for _, _, score, x1, y1, x2, y2 in output[output[:, 2] >= self.settings.threshold]:
            x1, x2 = np.clip([x1 * INPUT, x2 * INPUT], 0, tile_w)
            y1, y2 = np.clip([y1 * INPUT, y2 * INPUT], 0, tile_h)
            if x2 - x1 >= 1 and y2 - y1 >= 1:
                boxes.append((float(x1), float(y1), float(x2), float(y2), float(score)))
        return boxes
