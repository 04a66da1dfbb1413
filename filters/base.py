"""What a filter receives: an image and face regions, nothing about how they were found."""

from __future__ import annotations

from typing import Protocol


class Region(Protocol):
    """A face box in image pixels; ``detectors.Detection`` satisfies it, so do plain dataclasses."""

    @property
    def x(self) -> int: ...
    @property
    def y(self) -> int: ...
    @property
    def w(self) -> int: ...
    @property
    def h(self) -> int: ...
