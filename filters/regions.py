"""What filters paint over: boxes in image pixels, whether a detector found them or a user drew them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SHAPES = ("ellipse", "box")


class Box(Protocol):
    """A box in image pixels; ``detectors.Detection`` satisfies it, so do ``Region`` and plain dataclasses."""

    @property
    def x(self) -> int: ...
    @property
    def y(self) -> int: ...
    @property
    def w(self) -> int: ...
    @property
    def h(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Region:
    """A region a user adds to be covered, such as a face the detector missed.

    ``shape`` ("ellipse" or "box") is what the user drew, so it overrides the filter's mask for this region alone;
    None paints it like a face. The margin grows it like a face either way, by a share of its own size.
    """

    x: int
    y: int
    w: int
    h: int
    shape: str | None = None

    def __post_init__(self) -> None:
        if self.shape is not None and self.shape not in SHAPES:
            raise ValueError(f"a region's shape must be one of {', '.join(SHAPES)} or None, not {self.shape!r}")
