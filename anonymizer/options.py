"""The one options type every entry point (command line, bot, benchmarks) maps its settings onto."""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.base import Detection

# Chosen by the detector comparison (data/README.md; `python -m benchmarks.compare_detectors`): SCRFD-2.5G fully
# anonymizes 89.4 % of the labelled photos of ../shared/eval (YuNet 82.9 %, deface 82 %) and covers 97.1 % of faces
# 16 px or taller at 1.9 % over-painting, in under half of deface's time; of the same photos stored sideways it
# fully anonymizes 85.3 %. The user's first chain "ssd,haar" (still available by name) covers
# 30 % of the faces.
# YuNet, then Haar, run only when the models before them are missing ("backup"), so the tool keeps working without
# downloaded weights; run whenever the first finds nothing (a fallback), Haar painted false faces on photos
# without any and added none on the labelled ones.
DEFAULT_DETECTOR = "backup:scrfd,yunet,haar"
DEFAULT_FILTER = "noise"
DEFAULT_MASK = "ellipse"
# Each side of the face box grows by 15 % of the face and by at least 6 px (the box itself is always painted whole):
# a detector's box is a few pixels off whatever the face's size, which only a pixel floor absorbs on small faces.
# With SCRFD, 6 px instead of 4 covers 0.8 point more of the 16 px+ faces for 0.33 point more over-painting; a
# margin of 0.2, or deface's 0.3 (--mask-scale 1.3), paints more for fewer faces (data/README.md).
DEFAULT_MARGIN = 0.15
DEFAULT_MIN_MARGIN = 6.0
MAX_INPUT_BYTES = 50 * 1024 * 1024
MAX_INPUT_PIXELS = 60_000_000


@dataclass(frozen=True, slots=True)
class Options:
    """How to anonymize one image; defaults defined here once."""

    detector: str = DEFAULT_DETECTOR
    filter: str = DEFAULT_FILTER
    mask: str = DEFAULT_MASK
    margin: float = DEFAULT_MARGIN
    min_margin: float = DEFAULT_MIN_MARGIN
    threshold: float | None = None
    max_bytes: int = MAX_INPUT_BYTES
    max_pixels: int = MAX_INPUT_PIXELS


@dataclass(frozen=True, slots=True)
class Result:
    """The anonymized image and what was done to it."""

    data: bytes
    format: str
    width: int
    height: int
    detections: list[Detection] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
