"""YuNet (cv2.FaceDetectorYN): a small, fast detector run at a few scales to span 10 px faces to close-ups."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import cv2
import numpy as np

from detectors.base import Detection, Detector
from detectors.geometry import (
    ROTATE_CODES,
    box_detection,
    boxes_by_window,
    merge_overlapping,
    pad_to_min_size,
    resize_to,
    same_face,
    unturn_box,
)
from detectors.models import model_path
from detectors.registry import register
from detectors.settings import Distance, Pixels, Score, Settings, Share, Within

MODEL = "face_detection_yunet_2023mar.onnx"
# YuNet returns garbage (infinite boxes with score 1) on inputs a few pixels high, so inputs are padded to this.
MIN_INPUT = 64


@dataclass(frozen=True)
class YunetSettings(Settings):
    """What YunetDetector takes; its docstring says what each setting does and why its default."""

    threshold: Score = 0.2
    medium_threshold: Score = 0.35
    large_threshold: Score = 0.5
    medium_face: Share = 1 / 32
    large_face: Share = 1 / 16
    confirm_score: Score = 0.2
    solo_score: Score = 0.7
    min_face: Annotated[int, Within(0)] = 10
    coarse_side: Pixels = 480
    max_side: Pixels = 4096
    max_step: Annotated[float, Within(1)] = 6.0
    upscale: Annotated[float, Within(0)] = 2.0
    upscale_max_side: Pixels = 1280
    mirror: bool = True
    mirror_max_side: Pixels = 1280
    rotations: tuple[int, ...] = (90, 270)
    rotated_threshold: Score = 0.8
    rotated_side: Pixels | None = None
    tile: Annotated[int, Within(MIN_INPUT)] = 1280
    tile_overlap: Annotated[int, Within(0)] = 320
    edge_margin: Distance = 2.0
    nms_iou: Share = 0.3
    top_k: Pixels = 5000

    def __post_init__(self) -> None:
        super().__post_init__()
        for angle in self.rotations:
            if angle not in ROTATE_CODES:
                raise ValueError(f"rotations are 90, 180 or 270 degrees, not {angle}")
        if self.tile_overlap >= self.tile:
            raise ValueError(f"tile_overlap is less than tile ({self.tile}), not {self.tile_overlap}")


@register("yunet", YunetSettings)
class YunetDetector(Detector):
    """YuNet at full resolution (capped at ``max_side``), on a copy of longest side ``coarse_side`` for
    close-ups, with a middle pass when those two are more than ``max_step`` apart, on a ``upscale``-times
    enlarged copy of small images (longest side up to ``upscale_max_side`` after enlarging) for tiny faces,
    on mirrored copies: one of longest side up to ``mirror_max_side`` and the coarse one, and on copies of longest
    side ``rotated_side`` (default: the coarse side) turned by each of ``rotations`` degrees clockwise, whose
    boxes must score ``rotated_threshold``.

    Each pass runs in windows of at most ``tile`` px a side overlapping by ``tile_overlap`` px: YuNet's memory grows
    with its input and is kept between calls, and windows bound it whatever the photo. Boxes touching an inner
    window side (within ``edge_margin`` px) are cut faces and dropped; the face is whole in a neighbour window or a
    coarser pass. Boxes of the upright passes are merged by IoU/containment (``nms_iou``), as are those of the
    turned passes; where both found a face, the higher-scoring box is kept.

    Why these defaults (each choice was measured on the labelled photos of ../shared/eval, and kept only where it
    held on both halves of the set; ``python -m benchmarks.compare_detectors`` measures them again, its report has the
    figures):
    - The score a box needs grows with its size, because a false box paints its whole area: ``threshold``
      for boxes under ``medium_face`` of the longest side, ``medium_threshold`` up to ``large_face``,
      ``large_threshold`` above. Low-scoring small boxes are often faces, low-scoring large ones rarely.
      ``threshold`` is also the floor of the other two, so ``threshold=0.6`` means 0.6 for every box.
    - A box of at least ``medium_face`` also needs a second upright or mirrored pass to have seen the same face
      (IoU ``nms_iou``) at ``confirm_score``, unless it scores ``solo_score``: large false boxes are mostly one
      pass's mistake. That paint is better spent by the pipeline's pixel floor of the mask on small faces.
    - YuNet is not mirror-symmetric, so a mirrored copy finds other turned, tilted and blurred faces; capping
      that copy lower halves its cost but loses a good share of what it finds.
    - Boxes under ``min_face`` px tall in YuNet's input are dropped: below its reach they are mostly texture (on
      random noise it returns hundreds of tiny boxes).
    - YuNet mostly finds upright faces; the turned passes find people lying down and photos stored sideways without
      an EXIF tag, and give an upright photo the very same boxes. They run only at the coarse scale and at a high
      score: at full resolution they would cost as much as a full pass, and lower scores paint false boxes on
      upright photos. A turned box that overlaps an upright one replaces it only if it scores higher (their
      envelope would paint more). ``rotations=()`` turns them off.
    - Not kept: an upscaled pass of ordinary photos (little gain for several times the time), no containment
      merging (no change).

    Not thread-safe: one cv2.FaceDetectorYN per instance, and it keeps per-call state (its input size).
    """

    def __init__(self, settings: YunetSettings | None = None) -> None:
        self.settings = settings = settings or YunetSettings()
        self._net = cv2.FaceDetectorYN.create(
            str(model_path(MODEL)), "", (320, 320), settings.threshold, 0.3, settings.top_k
        )

    def scales(self, width: int, height: int) -> list[float]:
        """The image scales YuNet runs at, largest first."""
        longest = max(width, height, 1)
        fine = min(1.0, self.settings.max_side / longest)
        scales = [fine]
        if self.settings.upscale > 1 and longest * self.settings.upscale <= self.settings.upscale_max_side:
            scales.insert(0, self.settings.upscale)
        if longest > self.settings.coarse_side:
            coarse = self.settings.coarse_side / longest
            if fine / coarse > self.settings.max_step:
                scales.append(math.sqrt(fine * coarse))
            scales.append(coarse)
        return scales

    def mirror_scales(self, width: int, height: int) -> list[float]:
        """The scales of the mirrored passes: the finest up to ``mirror_max_side`` and the coarse one."""
        if not self.settings.mirror:
            return []
        longest = max(width, height, 1)
        scales = [min(1.0, self.settings.mirror_max_side / longest)]
        if longest > self.settings.coarse_side:
            scales.append(self.settings.coarse_side / longest)
        return list(dict.fromkeys(scales))

    def needed_score(self, box_height: float, longest_side: int) -> float:
        """The score a box of this height needs: larger boxes need more, since a false one paints more."""
        settings = self.settings
        if box_height >= settings.large_face * longest_side:
            return max(settings.threshold, settings.medium_threshold, settings.large_threshold)
        if box_height >= settings.medium_face * longest_side:
            return max(settings.threshold, settings.medium_threshold)
        return settings.threshold

    def _find(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        passes = [self._detect_at(image, scale) for scale in self.scales(width, height)]
        passes += [self._detect_at(image, scale, mirrored=True) for scale in self.mirror_scales(width, height)]
        longest = max(width, height)
        kept = [d for own, found in enumerate(passes) for d in found if self._accepted(d, longest, passes, own)]
        turned = []
        rotated_side = self.settings.coarse_side if self.settings.rotated_side is None else self.settings.rotated_side
        rotated_scale = min(1.0, rotated_side / longest)
        small = resize_to(image, rotated_scale) if self.settings.rotations else image
        for angle in self.settings.rotations:
            turned.extend(self._detect_on(small, rotated_scale, angle=angle))
        rotated_threshold = max(self.settings.rotated_threshold, self.settings.threshold)
        turned = [d for d in turned if d.score >= max(rotated_threshold, self.needed_score(d.h, longest))]
        upright = merge_overlapping(kept, iou_threshold=self.settings.nms_iou)
        return self._better_of(upright, merge_overlapping(turned, iou_threshold=self.settings.nms_iou))

    def _accepted(self, box: Detection, longest: int, passes: list[list[Detection]], own: int) -> bool:
        """Whether a box of pass ``own`` is kept: it scores what its size needs and, unless it is small or scores
        ``solo_score``, another upright or mirrored pass saw the same face at ``confirm_score`` or more. The same
        face means overlapping by IoU, not containment: a small face inside a large false box must not confirm it."""
        if box.score < self.needed_score(box.h, longest):
            return False
        if box.h < self.settings.medium_face * longest or box.score >= self.settings.solo_score:
            return True
        return any(
            other.score >= self.settings.confirm_score and box.iou(other) >= self.settings.nms_iou
            for index, found in enumerate(passes)
            if index != own
            for other in found
        )

    def _better_of(self, upright: list[Detection], turned: list[Detection]) -> list[Detection]:
        """Upright and turned passes' boxes, a face found by both keeping only the higher-scoring box: the pass
        that saw the face the wrong way round gives it a box of the wrong shape (wide for a tall face), and their
        envelope would paint the photo around every upright face."""
        kept = list(upright)
        for box in turned:
            rivals = [d for d in kept if same_face(box, d, self.settings.nms_iou)]
            if all(box.score > d.score for d in rivals):
                kept = [d for d in kept if d not in rivals] + [box]
        return kept

    def _detect_at(self, image: np.ndarray, scale: float, mirrored: bool = False, angle: int = 0) -> list[Detection]:
        """Faces found on the image scaled by ``scale``, then mirrored left-right or turned ``angle`` degrees
        clockwise, in image pixels. Mirroring or turning after scaling copies the smaller image."""
        return self._detect_on(resize_to(image, scale), scale, mirrored, angle)

    def _detect_on(self, scaled: np.ndarray, scale: float, mirrored: bool = False, angle: int = 0) -> list[Detection]:
        """Faces found window by window on an image already scaled by ``scale``, mirrored or turned first, in the
        unscaled image's pixels."""
        scaled_h, scaled_w = scaled.shape[:2]
        if mirrored:
            scaled = scaled[:, ::-1]
        elif angle:
            scaled = cv2.rotate(scaled, ROTATE_CODES[angle])
        found = []
        for *corners, score in boxes_by_window(
            scaled, self.settings.tile, self.settings.tile_overlap, self._run, self.settings.edge_margin
        ):
            x1, y1, x2, y2 = corners
            if y2 - y1 < self.settings.min_face:
                continue
            if mirrored:
                x1, x2 = scaled_w - x2, scaled_w - x1
            elif angle:
                x1, y1, x2, y2 = unturn_box((x1, y1, x2, y2), angle, scaled_w, scaled_h)
            found.append(box_detection(x1 / scale, y1 / scale, x2 / scale, y2 / scale, score, self.name))
        return found

    def _run(self, window: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Faces in one window as (x1, y1, x2, y2, score) in window pixels."""
        window = pad_to_min_size(np.ascontiguousarray(window), MIN_INPUT)
        self._net.setInputSize((window.shape[1], window.shape[0]))
        _, faces = self._net.detect(window)
        boxes = []
        for face in faces if faces is not None else ():
            x, y, w, h, score = (float(v) for v in (*face[:4], face[14]))
            if score >= self.settings.threshold and w > 0 and h > 0 and np.isfinite(face[:4]).all():
                boxes.append((x, y, x + w, y + h, score))
        return boxes
