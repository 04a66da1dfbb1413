"""Labelled face sets for the comparison: the project's ``annotations.json`` format and the official WIDER FACE layout.

Both become the same list of ``Sample``s, sorted by name so every run visits images in the same order. Only the
labels are read here; the pixels are decoded by the pipeline's own decoder when an image is evaluated.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.metrics import as_boxes

# WIDER FACE's own evaluation ignores faces it marks invalid; faces under 10 px tall are too small to be
# anonymized meaningfully and are don't-care regions in this project's labelled set too.
MIN_FACE_HEIGHT = 10
WIDER_GT_NAMES = ("wider_face_split/wider_face_val_bbx_gt.txt", "wider_face_val_bbx_gt.txt")
WIDER_IMAGE_DIRS = ("WIDER_val/images", "images")
WIDER_ATTRS = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")


# The labelled photos in two fixed halves, by a hash of each name: a change is tuned on the tuning half and its figures
# are quoted on the held-out half, which no tuning looked at (a figure taken on the photos a change was tuned on is
# not a figure of the change). "all" is both.
HALVES = ("all", "tuning", "held-out")


class DatasetError(ValueError):
    """The labels cannot be read: the message says which file and why."""


@dataclass(frozen=True)
class Sample:
    """One labelled photo: where it is, the faces that must be covered and the don't-care regions."""

    name: str
    path: Path
    faces: np.ndarray
    ignore: np.ndarray
    attrs: list[dict] = field(default_factory=list)


def load_annotations(directory: Path) -> list[Sample]:
    """The entries of ``directory/annotations.json`` (paths relative to the directory)."""
    directory = Path(directory)
    index = directory / "annotations.json"
    try:
        entries = json.loads(index.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DatasetError(f"cannot read {index}: {error}") from error
    samples = []
    for entry in entries:
        try:
            samples.append(
                Sample(
                    name=entry["image"],
                    path=directory / entry["image"],
                    faces=as_boxes(entry.get("boxes", [])),
                    ignore=as_boxes(entry.get("ignore", [])),
                    attrs=list(entry.get("box_attrs", [])),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise DatasetError(f"malformed entry in {index}: {entry!r:.200}") from error
    return sorted(samples, key=lambda s: s.name)


def half(samples: Sequence[Sample], which: str) -> list[Sample]:
    """The samples of one of HALVES: "tuning" (an even CRC-32 of the name), "held-out" (odd) or "all"."""
    if which not in HALVES:
        raise ValueError(f"the photos are one of {', '.join(HALVES)}, not {which!r}")
    if which == "all":
        return list(samples)
    return [sample for sample in samples if (zlib.crc32(sample.name.encode()) % 2 == 0) == (which == "tuning")]


def _find(directory: Path, candidates: tuple[str, ...], what: str) -> Path:
    for candidate in candidates:
        if (directory / candidate).exists():
            return directory / candidate
    raise DatasetError(f"no {what} under {directory} (looked for {', '.join(candidates)})")


def load_wider(directory: Path) -> list[Sample]:
    """The WIDER FACE val split as downloaded: ``wider_face_split/wider_face_val_bbx_gt.txt``, ``WIDER_val/images``.

    Each record is an image path, a face count, then one line per face:
    ``x y w h blur expression illumination invalid occlusion pose`` (an image without faces still has one line of
    zeros). Faces WIDER marks invalid, or under 10 px tall, become ignore regions; zero-size boxes are dropped.
    """
    directory = Path(directory)
    gt_file = _find(directory, WIDER_GT_NAMES, "wider_face_val_bbx_gt.txt")
    images = _find(directory, WIDER_IMAGE_DIRS, "WIDER_val/images folder")
    lines = [line.strip() for line in gt_file.read_text().splitlines()]
    samples = []
    position = 0
    try:
        while position < len(lines):
            if not lines[position]:
                position += 1
                continue
            name, count = lines[position], int(lines[position + 1])
            rows = lines[position + 2 : position + 2 + max(count, 1)]
            if len(rows) < max(count, 1):
                raise IndexError("fewer face lines than the count says")
            position += 2 + max(count, 1)
            faces, ignore, attrs = [], [], []
            for row in rows[:count]:
                values = [int(v) for v in row.split()]
                if len(values) < 4:
                    raise ValueError("a face line needs at least x y w h")
                x, y, w, h = values[:4]
                if w <= 0 or h <= 0:
                    continue
                flags = dict(zip(WIDER_ATTRS, values[4:10], strict=False))
                if flags.get("invalid", 0) or h < MIN_FACE_HEIGHT:
                    ignore.append((x, y, w, h))
                else:
                    faces.append((x, y, w, h))
                    attrs.append(flags)
            samples.append(Sample(name, images / name, as_boxes(faces), as_boxes(ignore), attrs))
    except (IndexError, ValueError) as error:
        raise DatasetError(f"malformed {gt_file} near line {position + 1}") from error
    return sorted(samples, key=lambda s: s.name)
