"""YuNet (cv2.FaceDetectorYN): a small, fast detector run at a few scales to span 10 px faces to close-ups."""

from __future__ import annotations

import math

import cv2
import numpy as np

from detectors.base import Detection, Detector
from detectors.geometry import (
    as_bgr,
    box_detection,
    clip_all,
    merge_overlapping,
    pad_to_min_size,
    resize_to,
    touches_inner_edge,
    window_starts,
)
from detectors.models import model_path
from detectors.registry import register

MODEL = "face_detection_yunet_2023mar.onnx"
# YuNet returns garbage (infinite boxes with score 1) on inputs a few pixels high, so inputs are padded to this.
MIN_INPUT = 64


@register("yunet")
class YunetDetector(Detector):
    """YuNet at full resolution (capped at ``max_side``), on a copy of longest side ``coarse_side`` for
    close-ups, with a middle pass when those two are more than ``max_step`` apart, and on a ``upscale``-times
    enlarged copy of small images (longest side up to ``upscale_max_side`` after enlarging) for tiny faces.

    Each pass runs in windows of at most ``tile`` px a side overlapping by ``tile_overlap`` px: YuNet's
    memory grows with its input (about 70 MB per megapixel, kept between calls), and windows bound it to a
    couple of hundred MB whatever the photo. Boxes touching an inner window side (within ``edge_margin`` px)
    are cut faces and dropped; the face is whole in a neighbour window or a coarser pass.

    YuNet finds faces of about 10-300 px in its input, hence the passes; their boxes are merged by
    IoU/containment (``nms_iou``). ``threshold`` is the score threshold (the model zoo's 0.9 misses many faces).

    Not thread-safe: one cv2.FaceDetectorYN per instance, and it keeps per-call state (its input size).
    """

    def __init__(
        self,
        threshold: float = 0.5,
        coarse_side: int = 480,
        max_side: int = 4096,
        max_step: float = 6.0,
        upscale: float = 2.0,
        upscale_max_side: int = 1280,
        tile: int = 1280,
        tile_overlap: int = 320,
        edge_margin: float = 2.0,
        nms_iou: float = 0.3,
        top_k: int = 5000,
    ) -> None:
        self.threshold = threshold
        self.coarse_side = coarse_side
        self.max_side = max_side
        self.max_step = max_step
        self.upscale = upscale
        self.upscale_max_side = upscale_max_side
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.edge_margin = edge_margin
        self.nms_iou = nms_iou
        self._net = cv2.FaceDetectorYN.create(str(model_path(MODEL)), "", (320, 320), threshold, 0.3, top_k)

    def scales(self, width: int, height: int) -> list[float]:
        """The image scales YuNet runs at, largest first."""
        longest = max(width, height, 1)
        fine = min(1.0, self.max_side / longest)
        scales = [fine]
        if self.upscale > 1 and longest * self.upscale <= self.upscale_max_side:
            scales.insert(0, self.upscale)
        if longest > self.coarse_side:
            coarse = self.coarse_side / longest
            if fine / coarse > self.max_step:
                scales.append(math.sqrt(fine * coarse))
            scales.append(coarse)
        return scales

    def detect(self, image: np.ndarray) -> list[Detection]:
        image = as_bgr(image)
        height, width = image.shape[:2]
        if not width or not height:
            return []
        found = []
        for scale in self.scales(width, height):
            scaled = resize_to(image, scale)
            scaled_h, scaled_w = scaled.shape[:2]
            for top in window_starts(scaled_h, self.tile, self.tile_overlap):
                for left in window_starts(scaled_w, self.tile, self.tile_overlap):
                    window = scaled[top : top + self.tile, left : left + self.tile]
                    placed = (left, top, window.shape[1], window.shape[0])
                    for x1, y1, x2, y2, score in self._run(window):
                        if touches_inner_edge((x1, y1, x2, y2), placed, (scaled_w, scaled_h), self.edge_margin):
                            continue
                        corners = ((left + x1) / scale, (top + y1) / scale, (left + x2) / scale, (top + y2) / scale)
                        found.append(box_detection(*corners, score, self.name))
        return clip_all(merge_overlapping(found, iou_threshold=self.nms_iou), width, height)

    def _run(self, window: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Faces in one window as (x1, y1, x2, y2, score) in window pixels."""
        window = pad_to_min_size(np.ascontiguousarray(window), MIN_INPUT)
        self._net.setInputSize((window.shape[1], window.shape[0]))
        _, faces = self._net.detect(window)
        boxes = []
        for face in faces if faces is not None else ():
            x, y, w, h, score = (float(v) for v in (*face[:4], face[14]))
            if score >= self.threshold and w > 0 and h > 0 and np.isfinite(face[:4]).all():
                boxes.append((x, y, x + w, y + h, score))
        return boxes
