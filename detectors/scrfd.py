"""SCRFD-2.5G (InsightFace) through cv2.dnn: the full-resolution photo in windows of up to 1280 px, plus the photo
fitted into 640 px."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from detectors.base import Detection, Detector
from detectors.geometry import (
    ROTATE_CODES,
    ScoredBox,
    box_detection,
    boxes_by_window,
    even_window,
    resize_to,
    unturn_box,
    window_starts,
)
from detectors.models import model_path
from detectors.registry import register

MODEL = "scrfd_2.5g_bnkps.onnx"
# The side the network was trained at: the whole photo is also seen fitted into it, where close-ups are found.
FITTED = 640
STRIDES = (8, 16, 32)
# Inputs are padded to a multiple of the coarsest stride.
INPUT_MULTIPLE = max(STRIDES)
ANCHORS_PER_CELL = 2
# Clockwise turns the turned passes look at, and when they run.
TURNS = (90, 180, 270)
TURNED_WHEN = ("unless_upright", "always", "never")


@functools.lru_cache(maxsize=64)
def _anchor_centres(stride: int, height: int, width: int) -> np.ndarray:
    """(x, y) of each anchor of a stride's feature map for a ``width`` x ``height`` input, in input pixels, row by
    row, each cell's anchors together."""
    rows, cols = np.mgrid[: height // stride, : width // stride]
    centres = np.stack([cols, rows], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, ANCHORS_PER_CELL, axis=0)


def _any_size_model(path: Path) -> np.ndarray:
    """The ONNX export, rewritten to run at any input size that is a multiple of 32.

    Its two upsampling steps carry output sizes fixed for a 640 x 640 input, so OpenCV can only run it at that size
    and larger photos would be seen through 640 px windows. Given as scale factors instead (the same 2x), the same
    weights give the same outputs at 640 and run on a 1024 x 768 photo in one pass: 0.07 s against 0.14 s for the
    four overlapping 640 px windows it needs otherwise, on this project's 2-core machine.
    """
    model = onnx.load(str(path))
    shapes = {
        value.name: [dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in shape_inference.infer_shapes(model).graph.value_info
    }
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Resize" and len(node.input) == 4 and node.input[3] in constants:
            sizes = constants[node.input[3]].astype(np.float32)
            scales = numpy_helper.from_array(sizes / np.array(shapes[node.input[0]], np.float32), f"{node.name}_scales")
            model.graph.initializer.append(scales)
            node.input[2], node.input[3] = scales.name, ""
    for dim, name in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], ("height", "width"), strict=True):
        dim.dim_param = name
    return np.frombuffer(model.SerializeToString(), dtype=np.uint8)


@register("scrfd")
class ScrfdDetector(Detector):
    """SCRFD-2.5G with box and score decoding of the InsightFace export, boxes of all passes merged by NMS.

    Passes: the photo at full resolution (capped at ``max_side``), where small faces are seen, in one input up to
    ``max_window`` px a side (a 1024 x 768 photo) or in as few such windows as cover it, overlapping by
    ``window_overlap`` px (a 12 MP photo capped at 2560 px: 6 windows); and the whole photo fitted into 640 px,
    where close-ups are. Boxes touching an inner window side are cut faces and dropped (the face is whole in a
    neighbour window or the fitted pass).

    Thresholds depend on the box's size, because a false box costs paint in proportion to its area while a crowd's
    true faces score low: ``large_threshold`` from ``large_face`` of the photo's longest side up, ``threshold`` in
    between, and ``small_threshold`` under ``small_face`` pixels of the network's input (counted there, so that a
    12 MP photo's 60 px texture is not "small"). A weak small box whose centre lies beside a confident face is that
    face's hair or edge and is dropped. On ../shared/eval (margin 0.15 and 6 px, 640 px windows; data/README.md) one
    threshold of 0.2 fully anonymized 87.6 % of photos with 95.7 % of 16 px+ faces covered at 1.2 % over-painting;
    with 0.12 for small boxes, 89.4 %, 97.2 % and 2.0 %. 0.1 reached 90.3 % but at 2.2-2.5 % and with false faces
    on noise.

    ``turned``: passes for photos stored sideways or upside down. The photo fitted into one input is looked at
    turned 90, 180 and 270 degrees (boxes from ``turned_threshold``); if a turn shows a clear face, the windowed pass
    runs again on the photo turned that way, so its small faces are found as on an upright photo. By default
    (``"unless_upright"``) they run only when no upright box scores ``upright_enough`` with a box taller than wide:
    a photo with a clear upright face is upright, and about 95 % of the labelled photos show one, so the median
    photo pays little; ``"always"`` or ``"never"`` otherwise. On every labelled photo turned 90 degrees they raised
    photos fully anonymized from 52 to 88 % (640 px windows; 85 % now); upright, 89.4 -> 89.9 % (data/README.md).

    Not thread-safe (one cv2.dnn.Net per instance): give each thread its own detector.
    """

    def __init__(
        self,
        threshold: float = 0.2,
        large_threshold: float = 0.3,
        large_face: float = 1 / 16,
        small_threshold: float = 0.12,
        small_face: int = 32,
        near_face: float = 0.25,
        turned: str = "unless_upright",
        turned_threshold: float = 0.7,
        upright_enough: float = 0.7,
        nms_iou: float = 0.4,
        max_side: int = 2560,
        max_window: int = 1280,
        window_overlap: int = 160,
        max_shrink: float = 0.15,
        edge_margin: float = 2.0,
    ) -> None:
        self.threshold = threshold
        self.large_threshold = max(threshold, large_threshold)
        self.large_face = large_face
        self.small_threshold = min(threshold, small_threshold)
        self.small_face = small_face
        self.near_face = near_face
        if turned not in TURNED_WHEN:
            raise ValueError(f"turned is one of {', '.join(TURNED_WHEN)}, not {turned!r}")
        self.turned = turned
        self.turned_threshold = turned_threshold
        self.upright_enough = upright_enough
        self.nms_iou = nms_iou
        self.max_side = max_side
        self.max_window = max_window
        self.window_overlap = window_overlap
        self.max_shrink = max_shrink
        self.edge_margin = edge_margin
        self._net = cv2.dnn.readNetFromONNX(_any_size_model(model_path(MODEL)))
        self._outputs = list(self._net.getUnconnectedOutLayersNames())
        expected = {f"{kind}_{stride}" for kind in ("score", "bbox") for stride in STRIDES}
        if not expected <= set(self._outputs):
            raise ValueError(f"{MODEL} is not the SCRFD export this detector decodes (outputs {self._outputs})")

    def _find(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        longest = max(width, height)
        scales = [self.fine_scale(width, height)]
        if longest * scales[0] > FITTED:
            scales.append(FITTED / longest)
        boxes = [box for scale in scales for box in self._detect_at(image, scale) if self._passes(box, longest, scale)]
        if self.turned == "always" or (self.turned == "unless_upright" and not self._clearly_upright(boxes)):
            boxes += self._detect_turned(image, scales[-1])
        if not boxes:
            return []
        corners = np.array(boxes, dtype=np.float32)
        rects = np.column_stack([corners[:, :2], corners[:, 2:4] - corners[:, :2]])
        kept = cv2.dnn.NMSBoxes(rects.tolist(), corners[:, 4].tolist(), 0.0, self.nms_iou)
        found = [box_detection(*corners[i, :4], float(corners[i, 4]), self.name) for i in np.asarray(kept).ravel()]
        confident = [d for d in found if d.score >= self.threshold]
        return [d for d in found if d.score >= self.threshold or not self._beside(d, confident)]

    def _clearly_upright(self, boxes: list[ScoredBox]) -> bool:
        """Whether an upright pass saw a face clearly (``upright_enough``) and taller than wide, so the photo is
        upright: the network also finds large sideways faces, but gives them wide boxes."""
        return any(score >= self.upright_enough and y2 - y1 > x2 - x1 for x1, y1, x2, y2, score in boxes)

    def _beside(self, weak: Detection, confident: list[Detection]) -> bool:
        """Whether a weak box's centre lies within a confident face's box grown by ``near_face`` each way: it is
        then that face's hair or edge, which the face's mask covers anyway, not another face."""
        cx, cy = weak.x + weak.w / 2, weak.y + weak.h / 2
        return any(
            d.x - self.near_face * d.w <= cx <= d.x + (1 + self.near_face) * d.w
            and d.y - self.near_face * d.h <= cy <= d.y + (1 + self.near_face) * d.h
            for d in confident
        )

    def _passes(self, box: ScoredBox, longest: int, scale: float) -> bool:
        """Whether a box clears the threshold of its size: a false small box paints little, a false large one much.
        Small is counted in the network's input pixels (``small_face``), large as a share of the photo."""
        x1, y1, x2, y2, score = box
        side = max(x2 - x1, y2 - y1)
        if side >= self.large_face * longest:
            return score >= self.large_threshold
        if side * scale < self.small_face:
            return score >= self.small_threshold
        return score >= self.threshold

    def _detect_turned(self, image: np.ndarray, fitted: float) -> list[ScoredBox]:
        """Boxes of faces lying sideways or upside down, in the photo's pixels. The photo fitted into one input is
        looked at turned 90, 180 and 270 degrees; if one turn shows a clear face (``upright_enough``), the photo is
        taken to be stored that way round and the windowed pass runs on it turned, so its small faces are found
        too."""
        height, width = image.shape[:2]
        view = resize_to(image, fitted)
        view_h, view_w = view.shape[:2]
        boxes, best_angle, best_score = [], 0, 0.0
        for angle in TURNS:
            for x1, y1, x2, y2, score in self._run(cv2.rotate(view, ROTATE_CODES[angle]), self.turned_threshold):
                corners = unturn_box((x1, y1, x2, y2), angle, view_w, view_h)
                boxes.append((*(c / fitted for c in corners), float(score)))
                if score > best_score:
                    best_angle, best_score = angle, float(score)
        if best_score >= self.upright_enough:
            turned = cv2.rotate(image, ROTATE_CODES[best_angle])
            scale = self.fine_scale(turned.shape[1], turned.shape[0])
            longest = max(width, height)
            for box in self._detect_at(turned, scale):
                if self._passes(box, longest, scale):
                    boxes.append((*unturn_box(box[:4], best_angle, width, height), box[4]))
        return boxes

    def fine_scale(self, width: int, height: int) -> float:
        """The scale of the windowed pass: full size up to ``max_side``, shrunk by at most ``max_shrink`` when that
        saves a row or column of windows (a 1300 x 1000 photo: one window at 0.98 instead of two at full size)."""
        scale = min(1.0, self.max_side / max(width, height, 1))

        def windows(at: float) -> int:
            rows = len(window_starts(round(height * at), self.max_window, self.window_overlap))
            return rows * len(window_starts(round(width * at), self.max_window, self.window_overlap))

        for side in sorted((width, height)):
            fitted = self.max_window / side
            if fitted < scale and fitted >= scale * (1 - self.max_shrink) and windows(fitted) < windows(scale):
                return fitted
        return scale

    def _detect_at(self, image: np.ndarray, scale: float) -> list[ScoredBox]:
        """Boxes (x1, y1, x2, y2, score) in image pixels found window by window on the image scaled by ``scale``."""
        scaled = resize_to(image, scale)
        height, width = scaled.shape[:2]
        window = (
            even_window(width, self.max_window, self.window_overlap),
            even_window(height, self.max_window, self.window_overlap),
        )
        windows = boxes_by_window(scaled, window, self.window_overlap, self._run, self.edge_margin)
        return [(x1 / scale, y1 / scale, x2 / scale, y2 / scale, score) for x1, y1, x2, y2, score in windows]

    def _run(self, window: np.ndarray, floor: float | None = None) -> np.ndarray:
        """Boxes (x1, y1, x2, y2, score) scoring ``floor`` (the lowest size threshold) or more in one window, padded
        to a multiple of the coarsest stride."""
        floor = self.small_threshold if floor is None else floor
        height, width = (math.ceil(side / INPUT_MULTIPLE) * INPUT_MULTIPLE for side in window.shape[:2])
        padded = cv2.copyMakeBorder(
            np.ascontiguousarray(window),
            0,
            height - window.shape[0],
            0,
            width - window.shape[1],
            cv2.BORDER_CONSTANT,
            value=(0, 0, 0),
        )
        blob = cv2.dnn.blobFromImage(padded, 1 / 128, (width, height), (127.5, 127.5, 127.5), swapRB=True)
        self._net.setInput(blob)
        outputs = dict(zip(self._outputs, self._net.forward(self._outputs), strict=True))
        found = []
        for stride in STRIDES:
            scores = outputs[f"score_{stride}"].reshape(-1)
            keep = scores >= floor
            distances = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep] * stride
            centres = _anchor_centres(stride, height, width)[keep]
            found.append(np.column_stack([centres - distances[:, :2], centres + distances[:, 2:], scores[keep]]))
        return np.concatenate(found)
