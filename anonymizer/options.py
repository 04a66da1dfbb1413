"""The one options type every entry point (command line, bot, benchmarks) maps its settings onto."""

from __future__ import annotations

from dataclasses import dataclass, field

from detectors.base import Detection

DEFAULT_DETECTOR = "ssd,haar"
DEFAULT_FILTER = "noise"
DEFAULT_MASK = "ellipse"
DEFAULT_MARGIN = 0.3
MAX_INPUT_BYTES = 50 * 1024 * 1024
MAX_INPUT_PIXELS = 60_000_000


@dataclass(frozen=True, slots=True)
class Options:
    """How to anonymize one image; defaults defined here once."""

    detector: str = DEFAULT_DETECTOR
    filter: str = DEFAULT_FILTER
    mask: str = DEFAULT_MASK
    margin: float = DEFAULT_MARGIN
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
