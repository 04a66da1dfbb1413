"""YuNet (cv2.FaceDetectorYN): a small, fast detector run at a few scales to span 10 px faces to close-ups."""

from __future__ import annotations

import math

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

MODEL = "face_detection_yunet_2023mar.onnx"
# YuNet returns garbage (infinite boxes with score 1) on inputs a few pixels high, so inputs are padded to this.
MIN_INPUT = 64


@register("yunet")
class YunetDetector(Detector):
    """YuNet at full resolution (capped at ``max_side``), on a copy of longest side ``coarse_side`` for
    close-ups, with a middle pass when those two are more than ``max_step`` apart, on a ``upscale``-times
    enlarged copy of small images (longest side up to ``upscale_max_side`` after enlarging) for tiny faces,
    on mirrored copies: one of longest side up to ``mirror_max_side`` and the coarse one, and on copies of longest
    side ``rotated_side`` (default: the coarse side) turned by each of ``rotations`` degrees clockwise, whose
    boxes must score ``rotated_threshold``.

    Each pass runs in windows of at most ``tile`` px a side overlapping by ``tile_overlap`` px: YuNet's
    memory grows with its input (about 70 MB per megapixel, kept between calls), and windows bound it to a
    couple of hundred MB whatever the photo. Boxes touching an inner window side (within ``edge_margin`` px)
    are cut faces and dropped; the face is whole in a neighbour window or a coarser pass. Boxes of the upright
    passes are merged by IoU/containment (``nms_iou``), as are those of the turned passes; where both found a
    face, the higher-scoring box is kept.

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
    - A box of at least ``medium_face`` also needs a second upright or mirrored pass to have seen the same face
      (IoU ``nms_iou``) at ``confirm_score``, unless it scores ``solo_score``: large false boxes are mostly one
      pass's mistake. At margin 0.15 it cut painting outside faces from 2.18 to 2.05 % for 0.1 point of 16 px+
      faces, which the pipeline's 4 px mask floor then spends on small faces (images fully anonymized 81.6 ->
      82.5 %). With a 0.15 floor for small boxes instead of 0.2 it covered more (16 px+ 95.7 %) but painted
      2.5 % outside faces.
    - YuNet is not mirror-symmetric, so a mirrored copy finds other turned, tilted and blurred faces: +5
      points of images fully anonymized and +9 of atypical poses. A mirrored copy capped at 640 px instead
      is half the extra time for 1.8 points fewer images fully anonymized.
    - Boxes under ``min_face`` px tall in YuNet's input are dropped: below its ~10 px reach they are mostly
      texture (on random noise it returns hundreds of 4-9 px boxes scoring up to 0.36); it costs 0.4 points
      of faces covered.
    - YuNet mostly finds upright faces; the 90 and 270-degree passes find people lying down and photos stored
      sideways without an EXIF tag. On every photo turned 90 degrees (``--rotate 90``) they raised images
      fully anonymized from 31.8 to 57.6 %, faces 16 px and taller covered from 40.7 to 60.9 % and 64-127 px
      ones from 56.9 to 89.4 %, and cut painting outside faces from 3.9 to 2.5 %; upright photos gave the
      very same boxes. Cost: about 0.01 s per ~1 MP photo (two 480 px passes), 1.44 -> 1.49 s on a 12 MP
      photo (one core). Only at the coarse scale and at score 0.8: at full resolution they cost as much as a
      full pass, and below 0.7 their false boxes paint 1-3 % more of an upright photo. Merging a turned box
      into an upright one (their envelope) instead of keeping the better one painted 0.1 point more of
      upright photos and 1.7 more of sideways ones. ``rotations=()`` turns them off.
    - Not kept: a 1.25x, 1.5x or 2x upscaled pass of ~1 MP photos (+0-1.5 points of images fully anonymized
      for 1.6-8x the time), no containment merging (no change).

    Not thread-safe: one cv2.FaceDetectorYN per instance, and it keeps per-call state (its input size).
    """

    def __init__(
        self,
        threshold: float = 0.2,
        medium_threshold: float = 0.35,
        large_threshold: float = 0.5,
        medium_face: float = 1 / 32,
        large_face: float = 1 / 16,
        confirm_score: float = 0.2,
        solo_score: float = 0.7,
        min_face: int = 10,
        coarse_side: int = 480,
        max_side: int = 4096,
        max_step: float = 6.0,
        upscale: float = 2.0,
        upscale_max_side: int = 1280,
        mirror: bool = True,
        mirror_max_side: int = 1280,
        rotations: tuple[int, ...] = (90, 270),
        rotated_threshold: float = 0.8,
        rotated_side: int | None = None,
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
        self.confirm_score = confirm_score
        self.solo_score = solo_score
        self.min_face = min_face
        self.coarse_side = coarse_side
        self.max_side = max_side
        self.max_step = max_step
        self.upscale = upscale
        self.upscale_max_side = upscale_max_side
        self.mirror = mirror
        self.mirror_max_side = mirror_max_side
        for angle in rotations:
            if angle not in ROTATE_CODES:
                raise ValueError(f"rotations are 90, 180 or 270 degrees, not {angle}")
        self.rotations = tuple(rotations)
        self.rotated_threshold = max(threshold, rotated_threshold)
        self.rotated_side = coarse_side if rotated_side is None else rotated_side
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
        return list(dict.fromkeys(scales))

    def needed_score(self, box_height: float, longest_side: int) -> float:
        """The score a box of this height needs: larger boxes need more, since a false one paints more."""
        if box_height >= self.large_face * longest_side:
            return self.large_threshold
        if box_height >= self.medium_face * longest_side:
            return self.medium_threshold
        return self.threshold

    def _find(self, image: np.ndarray) -> list[Detection]:
        height, width = image.shape[:2]
        passes = [self._detect_at(image, scale) for scale in self.scales(width, height)]
        passes += [self._detect_at(image, scale, mirrored=True) for scale in self.mirror_scales(width, height)]
        longest = max(width, height)
        kept = [d for own, found in enumerate(passes) for d in found if self._accepted(d, longest, passes, own)]
        turned = []
        rotated_scale = min(1.0, self.rotated_side / longest)
        small = resize_to(image, rotated_scale) if self.rotations else image
        for angle in self.rotations:
            turned.extend(self._detect_on(small, rotated_scale, angle=angle))
        turned = [d for d in turned if d.score >= max(self.rotated_threshold, self.needed_score(d.h, longest))]
        upright = merge_overlapping(kept, iou_threshold=self.nms_iou)
        return self._better_of(upright, merge_overlapping(turned, iou_threshold=self.nms_iou))

    def _accepted(self, box: Detection, longest: int, passes: list[list[Detection]], own: int) -> bool:
        """Whether a box of pass ``own`` is kept: it scores what its size needs and, unless it is small or scores
        ``solo_score``, another upright or mirrored pass saw the same face at ``confirm_score`` or more. The same
        face means overlapping by IoU, not containment: a small face inside a large false box must not confirm it."""
        if box.score < self.needed_score(box.h, longest):
            return False
        if box.h < self.medium_face * longest or box.score >= self.solo_score:
            return True
        return any(
            other.score >= self.confirm_score and box.iou(other) >= self.nms_iou
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
            rivals = [d for d in kept if same_face(box, d, self.nms_iou)]
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
        for *corners, score in boxes_by_window(scaled, self.tile, self.tile_overlap, self._run, self.edge_margin):
            x1, y1, x2, y2 = corners
            if y2 - y1 < self.min_face:
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
            if score >= self.threshold and w > 0 and h > 0 and np.isfinite(face[:4]).all():
                boxes.append((x, y, x + w, y + h, score))
        return boxes
