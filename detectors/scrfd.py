"""SCRFD-2.5G (InsightFace) through cv2.dnn: 640 px windows over the full-resolution photo, plus the photo fitted."""

from __future__ import annotations

import cv2
import numpy as np

from detectors.base import Detection, Detector
from detectors.geometry import ScoredBox, box_detection, boxes_by_window, resize_to, window_starts
from detectors.models import model_path
from detectors.registry import register

MODEL = "scrfd_2.5g_bnkps.onnx"
# The ONNX export has its input size baked into its upsampling: OpenCV 4.14 runs it at 640 x 640 and fails on
# any other size, so larger photos are seen through windows and smaller ones padded.
INPUT = 640
STRIDES = (8, 16, 32)
ANCHORS_PER_CELL = 2


def _anchor_centres(stride: int) -> np.ndarray:
    """(x, y) of each anchor of a stride's feature map in input pixels, row by row, each cell's anchors together."""
    cells = INPUT // stride
    rows, cols = np.mgrid[:cells, :cells]
    centres = np.stack([cols, rows], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, ANCHORS_PER_CELL, axis=0)


@register("scrfd")
class ScrfdDetector(Detector):
    """SCRFD-2.5G with box and score decoding of the InsightFace export, boxes of all passes merged by NMS.

    Passes: the photo at full resolution (capped at ``max_side``: a 12 MP photo takes 20 windows, 0.8 s on this
    machine's two cores, against 2.0 s for 54 at full size) in 640 px windows overlapping by
    ``window_overlap`` px, where small faces are seen, and the whole photo fitted into one 640 px input, where
    close-ups are. Boxes touching an inner window side are cut faces and dropped (the face is whole in a
    neighbour window or the fitted pass).

    Boxes need ``threshold``, and ``large_threshold`` from ``large_face`` of the photo's longest side up: a false
    large box paints much. On ../shared/eval (margin 0.15 and 4 px; data/README.md) these defaults fully anonymize
    87.1 % of photos (alternate halves 84.4 and 89.8 %) at 1.0 % over-painting. One threshold of 0.15 reached 89.4 %
    but at 2.8 %; 0.15 under 1/16 gave 88.0 % at 1.5 %, but false faces on sensor-like noise and on faces' edges.

    Not thread-safe (one cv2.dnn.Net per instance): give each thread its own detector.
    """

    def __init__(
        self,
        threshold: float = 0.2,
        large_threshold: float = 0.3,
        large_face: float = 1 / 16,
        nms_iou: float = 0.4,
        max_side: int = 2560,
        window_overlap: int = 160,
        max_shrink: float = 0.15,
        edge_margin: float = 2.0,
    ) -> None:
        self.threshold = threshold
        self.large_threshold = max(threshold, large_threshold)
        self.large_face = large_face
        self.nms_iou = nms_iou
        self.max_side = max_side
        self.window_overlap = window_overlap
        self.max_shrink = max_shrink
        self.edge_margin = edge_margin
        self._net = cv2.dnn.readNetFromONNX(str(model_path(MODEL)))
        self._outputs = list(self._net.getUnconnectedOutLayersNames())
        expected = {f"{kind}_{stride}" for kind in ("score", "bbox") for stride in STRIDES}
        if not expected <= set(self._outputs):
            raise ValueError(f"{MODEL} is not the SCRFD export this detector decodes (outputs {self._outputs})")
        self._centres = {stride: _anchor_centres(stride) for stride in STRIDES}

    def _find(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        longest = max(width, height)
        scales = [self.fine_scale(width, height)]
        if longest * scales[0] > INPUT:
            scales.append(INPUT / longest)
        boxes = [box for scale in scales for box in self._detect_at(image, scale)]
        if not boxes:
            return []
        corners = np.array(boxes, dtype=np.float32)
        rects = np.column_stack([corners[:, :2], corners[:, 2:4] - corners[:, :2]])
        kept = cv2.dnn.NMSBoxes(rects.tolist(), corners[:, 4].tolist(), self.threshold, self.nms_iou)
        found = [box_detection(*corners[i, :4], float(corners[i, 4]), self.name) for i in np.asarray(kept).ravel()]
        return [d for d in found if d.h < self.large_face * longest or d.score >= self.large_threshold]

    def fine_scale(self, width: int, height: int) -> float:
        """The scale of the windowed pass: full size up to ``max_side``, shrunk by at most ``max_shrink`` when that
        saves a row or column of windows (a 1024 x 700 photo: 2 windows at 0.91 instead of 4 at full size)."""
        scale = min(1.0, self.max_side / max(width, height, 1))

        def windows(at: float) -> int:
            rows = len(window_starts(round(height * at), INPUT, self.window_overlap))
            return rows * len(window_starts(round(width * at), INPUT, self.window_overlap))

        for side in sorted((width, height)):
            fitted = INPUT / side
            if fitted < scale and fitted >= scale * (1 - self.max_shrink) and windows(fitted) < windows(scale):
                return fitted
        return scale

    def _detect_at(self, image: np.ndarray, scale: float) -> list[ScoredBox]:
        """Boxes (x1, y1, x2, y2, score) in image pixels found window by window on the image scaled by ``scale``."""
        windows = boxes_by_window(resize_to(image, scale), INPUT, self.window_overlap, self._run, self.edge_margin)
        return [(x1 / scale, y1 / scale, x2 / scale, y2 / scale, score) for x1, y1, x2, y2, score in windows]

    def _run(self, window: np.ndarray) -> np.ndarray:
        """Boxes (x1, y1, x2, y2, score) scoring ``threshold`` or more in one window of at most 640 x 640 px."""
        padded = cv2.copyMakeBorder(
            np.ascontiguousarray(window),
            0,
            INPUT - window.shape[0],
            0,
            INPUT - window.shape[1],
            cv2.BORDER_CONSTANT,
            value=(0, 0, 0),
        )
        blob = cv2.dnn.blobFromImage(padded, 1 / 128, (INPUT, INPUT), (127.5, 127.5, 127.5), swapRB=True)
        self._net.setInput(blob)
        outputs = dict(zip(self._outputs, self._net.forward(self._outputs), strict=True))
        found = []
        for stride in STRIDES:
            scores = outputs[f"score_{stride}"].reshape(-1)
            keep = scores >= self.threshold
            distances = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep] * stride
            centres = self._centres[stride][keep]
            found.append(np.column_stack([centres - distances[:, :2], centres + distances[:, 2:], scores[keep]]))
        return np.concatenate(found)
