"""Small image and box helpers shared by the detectors: input normalisation, padding and box merging."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np

from detectors.base import Detection


def pad_to_min_size(image: np.ndarray, min_side: int) -> np.ndarray:
    """The image padded at the bottom/right to at least ``min_side`` each way, so boxes keep their coordinates."""
    height, width = image.shape[:2]
    bottom, right = max(0, min_side - height), max(0, min_side - width)
    if not bottom and not right:
        return image
    return cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def resize_to(image: np.ndarray, scale: float) -> np.ndarray:
    """The image scaled by ``scale`` (area interpolation when shrinking, so small faces keep their shape)."""
    if scale == 1.0:
        return image
    width = max(1, round(image.shape[1] * scale))
    height = max(1, round(image.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


class Pyramid:
    """An image and its copies at the scales asked for, each made once; a copy smaller than ``first`` is made from
    that one, the others from the image. A 12 MP photo is then read once, to make its 2560 px copy, which gives the
    640 and 320 px ones, instead of once per copy (area interpolation when shrinking, as ``resize_to``). Each copy is
    made from ``first`` or the image, never from another smaller copy: shrinking twice moved a close-up's score."""

    def __init__(self, image: np.ndarray, first: float = 1.0) -> None:
        self.shape = image.shape
        self._first = first
        self._levels = {1.0: image}

    def at(self, scale: float) -> np.ndarray:
        """The image scaled by ``scale``, its sides rounded from the image's own."""
        if scale not in self._levels:
            self._levels[scale] = self._made(scale)
        return self._levels[scale]

    def _made(self, scale: float) -> np.ndarray:
        source = self._first if scale < self._first else 1.0
        height, width = self.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        interpolation = cv2.INTER_AREA if scale < source else cv2.INTER_LINEAR
        return cv2.resize(self.at(source), size, interpolation=interpolation)


class Derived(Pyramid):
    """Another pyramid's copies, each passed through ``change`` (which gives an image of ``shape`` at full size): a
    brightened or turned view is brightened or turned at each size it is looked at, not at full size first."""

    def __init__(self, source: Pyramid, change: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> None:
        self.shape = shape
        self._source = source
        self._change = change
        self._levels = {}

    def _made(self, scale: float) -> np.ndarray:
        return self._change(self._source.at(scale))


def lifted(source: Pyramid, curve: np.ndarray) -> Pyramid:
    """The pyramid with the lookup table ``curve`` applied to each copy."""
    return Derived(source, lambda level: cv2.LUT(level, curve), source.shape)


def turned(source: Pyramid, angle: int) -> Pyramid:
    """The pyramid turned clockwise by ``angle`` (a quarter turn or two)."""
    height, width = source.shape[:2]
    shape = (width, height, *source.shape[2:]) if angle in (90, 270) else source.shape
    return Derived(source, lambda level: cv2.rotate(level, ROTATE_CODES[angle]), shape)


def window_starts(length: int, window: int, min_overlap: float) -> list[int]:
    """Start offsets of ``window``-px windows covering ``length`` px, neighbours sharing at least ``min_overlap``.

    A face no larger than the overlap then lies wholly inside at least one window.
    """
    if length <= window:
        return [0]
    count = math.ceil((length - window) / (window - min_overlap)) + 1
    return [round(i * (length - window) / (count - 1)) for i in range(count)]


def even_window(length: int, max_window: int, min_overlap: float) -> int:
    """The smallest window that covers ``length`` px in as few windows of at most ``max_window`` px as possible,
    neighbours sharing ``min_overlap`` px: for a network that runs at any size, pixels outside the image or
    covered twice are work for nothing."""
    if length <= max_window:
        return length
    count = math.ceil((length - max_window) / (max_window - min_overlap)) + 1
    return math.ceil((length + (count - 1) * min_overlap) / count)


def touches_inner_edge(
    corners: tuple[float, float, float, float],
    window: tuple[int, int, int, int],
    image_size: tuple[int, int],
    margin: float,
) -> bool:
    """Whether a box (x1, y1, x2, y2 in window pixels) touches a side of its window (left, top, w, h) that lies
    inside the image: such a box is usually a face cut by the window, found whole in a neighbour or coarser pass."""
    x1, y1, x2, y2 = corners
    left, top, window_w, window_h = window
    width, height = image_size
    return (
        (left > 0 and x1 <= margin)
        or (top > 0 and y1 <= margin)
        or (left + window_w < width and x2 >= window_w - margin)
        or (top + window_h < height and y2 >= window_h - margin)
    )


# (x1, y1, x2, y2, score), then any (x, y) points a network gives with the box, such as a face's landmarks.
ScoredBox = tuple[float, ...]


# cv2.rotate's code for each clockwise quarter turn a rotated pass may use.
ROTATE_CODES = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
Corners = tuple[float, float, float, float]


def unturn_box(corners: Corners, angle: int, width: int, height: int) -> Corners:
    """A box (x1, y1, x2, y2) found on an image of ``width`` x ``height`` turned ``angle`` degrees clockwise,
    in the unturned image's pixels. A turned quarter swaps the box's width and height."""
    x1, y1, x2, y2 = corners
    if angle == 90:
        return y1, height - x2, y2, height - x1
    if angle == 180:
        return width - x2, height - y2, width - x1, height - y1
    if angle == 270:
        return width - y2, x1, width - y1, x2
    raise ValueError(f"rotations are 90, 180 or 270 degrees, not {angle}")


def boxes_by_window(
    image: np.ndarray,
    window: int | tuple[int, int],
    min_overlap: float,
    find: Callable[[np.ndarray], Iterable[Sequence[float]]],
    edge_margin: float,
) -> Iterator[ScoredBox]:
    """Run ``find`` on each window of ``image`` (``window`` px square, or (width, height); neighbours sharing
    ``min_overlap`` px) and yield its boxes (x1, y1, x2, y2, score, then any (x, y) points) in ``image`` pixels,
    less those cut by an inner window side.

    One place for the sliding windows every network detector needs: their inputs are fixed or their memory grows
    with the input, and a face no larger than the overlap lies whole in some window.
    """
    height, width = image.shape[:2]
    window_w, window_h = (window, window) if isinstance(window, int) else window
    for top in window_starts(height, window_h, min_overlap):
        for left in window_starts(width, window_w, min_overlap):
            tile = image[top : top + window_h, left : left + window_w]
            placed = (left, top, tile.shape[1], tile.shape[0])
            for x1, y1, x2, y2, score, *points in find(tile):
                if not touches_inner_edge((x1, y1, x2, y2), placed, (width, height), edge_margin):
                    moved = (value + (top if i % 2 else left) for i, value in enumerate(points))
                    yield left + x1, top + y1, left + x2, top + y2, score, *moved


def box_detection(x1: float, y1: float, x2: float, y2: float, score: float, name: str) -> Detection:
    """A Detection from corner coordinates (floats from a network), rounded outward to whole pixels."""
    left, top = int(np.floor(x1)), int(np.floor(y1))
    return Detection(left, top, max(1, int(np.ceil(x2)) - left), max(1, int(np.ceil(y2)) - top), float(score), name)


# Share of the smaller box inside the other that makes two boxes one face, whatever their IoU: how a face cut by a
# tile edge meets the whole face.
CONTAINMENT = 0.7


def same_face(a: Detection, b: Detection, iou_threshold: float, containment: float = CONTAINMENT) -> bool:
    """Whether two boxes overlap as ``merge_overlapping`` groups them (IoU, or most of the smaller inside)."""
    inter_w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    inter_h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inside = max(0, inter_w) * max(0, inter_h) / max(1, min(a.area, b.area))
    return a.iou(b) >= iou_threshold or inside >= containment


def merge_overlapping(
    detections: Sequence[Detection],
    iou_threshold: float = 0.3,
    containment: float = CONTAINMENT,
    name_order: Sequence[str] = (),
) -> list[Detection]:
    """Greedy non-maximum merge: each group of boxes overlapping its best-scoring box becomes one box.

    Boxes overlap when their IoU reaches ``iou_threshold`` or most of the smaller one (``containment``) lies
    inside the other, which is how a face cut by a tile edge meets the whole face. The merged box is the
    envelope of the group (so a face is never covered less because two passes disagreed), keeps the best
    score and joins the distinct detector names, ordered by ``name_order`` when given.
    """
    ordered = sorted(detections, key=lambda d: d.score, reverse=True)
    if not ordered:
        return []
    boxes = np.array([(d.x, d.y, d.x + d.w, d.y + d.h) for d in ordered], dtype=np.float64)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    remaining = np.arange(len(ordered))
    merged = []
    while remaining.size:
        best, rest = boxes[remaining[0]], boxes[remaining]
        inter_w = np.clip(np.minimum(best[2], rest[:, 2]) - np.maximum(best[0], rest[:, 0]), 0, None)
        inter_h = np.clip(np.minimum(best[3], rest[:, 3]) - np.maximum(best[1], rest[:, 1]), 0, None)
        inter = inter_w * inter_h
        rest_areas = areas[remaining]
        best_area = rest_areas[0]
        iou = inter / np.maximum(best_area + rest_areas - inter, 1e-9)
        of_smaller = inter / np.maximum(np.minimum(best_area, rest_areas), 1e-9)
        in_group = (iou >= iou_threshold) | (of_smaller >= containment)
        in_group[0] = True
        group = remaining[in_group]
        x1, y1 = boxes[group, :2].min(axis=0)
        x2, y2 = boxes[group, 2:].max(axis=0)
        names = _joined_names([ordered[i] for i in group], name_order)
        merged.append(Detection(int(x1), int(y1), int(x2 - x1), int(y2 - y1), ordered[group[0]].score, names))
        remaining = remaining[~in_group]
    return merged


def _joined_names(group: Sequence[Detection], name_order: Sequence[str]) -> str:
    names: list[str] = []
    for detection in group:
        for part in detection.detector.split("+"):
            if part not in names:
                names.append(part)
    rank = {name: i for i, name in enumerate(name_order)}
    names.sort(key=lambda n: rank.get(n, len(rank)))
    return "+".join(names)
