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
    close-ups, with a middle pass when those two are more than ``max_step`` apart, on a ``upscale``-times
    enlarged copy of small images (longest side up to ``upscale_max_side`` after enlarging) for tiny faces,
    and on mirrored copies: one of longest side up to ``mirror_max_side`` and the coarse one.

    Each pass runs in windows of at most ``tile`` px a side overlapping by ``tile_overlap`` px: YuNet's
    memory grows with its input (about 70 MB per megapixel, kept between calls), and windows bound it to a
    couple of hundred MB whatever the photo. Boxes touching an inner window side (within ``edge_margin`` px)
    are cut faces and dropped; the face is whole in a neighbour window or a coarser pass. Boxes of all passes
    are merged by IoU/containment (``nms_iou``).

    Why these defaults (../shared/eval: 217 photos ~1024 px, 2,822 faces, noise ellipse margin 0.15; gains
    held on both halves of the set, split odd/even). Against one score threshold of 0.3 and no mirrored pass,
    faces covered went 88.6 -> 93.2 %, 16 px and taller 90.9 -> 94.5 %, atypical poses 64.8 -> 73.8 %,
    images fully anonymized 76.0 -> 81.6 %, painting outside faces 2.3 -> 2.2 % of the image, for about
    twice YuNet's time on a 1 MP photo (~0.07 -> ~0.15 s on one core) and ~10 % more on 12 MP (one window).
    - The score a box needs grows with its size, because a false box paints its whole area: ``threshold``
      for boxes under ``medium_face`` of the longest side, ``medium_threshold`` up to ``large_face``,
      ``large_threshold`` above. Alone this covered 90.2 % of faces (from 88.6) and painted 1.4 % outside
      faces (from 2.3): low-scoring small boxes are often faces, low-scoring large ones rarely.
      ``threshold`` is also the floor of the other two, so ``threshold=0.6`` means 0.6 for every box.
    - YuNet is not mirror-symmetric, so a mirrored copy finds other turned, tilted and blurred faces: +5
      points of images fully anonymized and +9 of atypical poses. A mirrored copy capped at 640 px instead
      is half the extra time for 1.8 points fewer images fully anonymized.
    - Boxes under ``min_face`` px tall in YuNet's input are dropped: below its ~10 px reach they are mostly
      texture (on random noise it returns hundreds of 4-9 px boxes scoring up to 0.36); it costs 0.4 points
      of faces covered.
    - Not kept: a 1.25x, 1.5x or 2x upscaled pass of ~1 MP photos (+0-1.5 points of images fully anonymized
      for 1.6-8x the time), 90/270-degree passes (as costly as a full pass for +1 point, and their false
      boxes painted 3-4 % of the image), no containment merging (no change).

    Not thread-safe: one cv2.FaceDetectorYN per instance, and it keeps per-call state (its input size).
    """

    def __init__(
        self,
        threshold: float = 0.2,
        medium_threshold: float = 0.35,
        large_threshold: float = 0.5,
        medium_face: float = 1 / 32,
        large_face: float = 1 / 16,
        min_face: int = 10,
        coarse_side: int = 480,
        max_side: int = 4096,
        max_step: float = 6.0,
        upscale: float = 2.0,
        upscale_max_side: int = 1280,
        mirror: bool = True,
        mirror_max_side: int = 1280,
        tile: int = 1280,
        tile_overlap: int = 320,
        edge_margin: float = 2.0,
        nms_iou: float = 0.3,
        top_k: int = 5000,
    ) -> None:
        self.threshold = threshold
        self.medium_threshold = max(threshold, medium_threshold)
        self.large_threshold = max(threshold, medium_threshold, large_threshold)
        self.medium_face = medium_face
        self.large_face = large_face
        self.min_face = min_face
        self.coarse_side = coarse_side
        self.max_side = max_side
        self.max_step = max_step
        self.upscale = upscale
        self.upscale_max_side = upscale_max_side
        self.mirror = mirror
        self.mirror_max_side = mirror_max_side
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

    def mirror_scales(self, width: int, height: int) -> list[float]:
        """The scales of the mirrored passes: the finest up to ``mirror_max_side`` and the coarse one."""
        if not self.mirror:
            return []
        longest = max(width, height, 1)
        scales = [min(1.0, self.mirror_max_side / longest)]
        if longest > self.coarse_side:
            scales.append(self.coarse_side / longest)
        return scales

    def needed_score(self, box_height: float, longest_side: int) -> float:
        """The score a box of this height needs: larger boxes need more, since a false one paints more."""
        if box_height >= self.large_face * longest_side:
            return self.large_threshold
        if box_height >= self.medium_face * longest_side:
            return self.medium_threshold
        return self.threshold

    def detect(self, image: np.ndarray) -> list[Detection]:
        image = as_bgr(image)
        height, width = image.shape[:2]
        if not width or not height:
            return []
        found = []
        for scale in self.scales(width, height):
            found.extend(self._detect_at(image, scale))
        for scale in self.mirror_scales(width, height):
            found.extend(self._detect_at(image, scale, mirrored=True))
        longest = max(width, height)
        kept = [d for d in found if d.score >= self.needed_score(d.h, longest)]
        return clip_all(merge_overlapping(kept, iou_threshold=self.nms_iou), width, height)

    def _detect_at(self, image: np.ndarray, scale: float, mirrored: bool = False) -> list[Detection]:
        """Faces found on the image scaled by ``scale`` (and mirrored left-right), window by window, in image
        pixels. Mirroring after scaling copies the smaller image."""
        scaled = resize_to(image, scale)
        if mirrored:
            scaled = scaled[:, ::-1]
        scaled_h, scaled_w = scaled.shape[:2]
        found = []
        for top in window_starts(scaled_h, self.tile, self.tile_overlap):
            for left in window_starts(scaled_w, self.tile, self.tile_overlap):
                window = scaled[top : top + self.tile, left : left + self.tile]
                placed = (left, top, window.shape[1], window.shape[0])
                for x1, y1, x2, y2, score in self._run(window):
                    if y2 - y1 < self.min_face:
                        continue
                    if touches_inner_edge((x1, y1, x2, y2), placed, (scaled_w, scaled_h), self.edge_margin):
                        continue
                    x1, x2 = (scaled_w - left - x2, scaled_w - left - x1) if mirrored else (left + x1, left + x2)
                    corners = (x1 / scale, (top + y1) / scale, x2 / scale, (top + y2) / scale)
                    found.append(box_detection(*corners, score, self.name))
        return found

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
