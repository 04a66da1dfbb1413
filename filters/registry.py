"""Filters created by name, like timm's ``create_model``: callers never import a filter class."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from filters.base import Filter
from filters.masks import DEFAULT_FEATHER, DEFAULT_MARGIN, DEFAULT_MASK, DEFAULT_MIN_MARGIN

_FILTERS: dict[str, type[Filter]] = {}


def register(name: str) -> Callable[[type[Filter]], type[Filter]]:
    """Class decorator adding a filter under ``name``; a name is taken once."""

    def add(cls: type[Filter]) -> type[Filter]:
        if name in _FILTERS:
            raise ValueError(f"a filter named {name!r} is already registered")
        cls.name = name
        _FILTERS[name] = cls
        return cls

    return add


def available() -> list[str]:
    return sorted(_FILTERS)


def create(
    name: str,
    mask: str = DEFAULT_MASK,
    margin: float = DEFAULT_MARGIN,
    feather: float = DEFAULT_FEATHER,
    min_margin: float = DEFAULT_MIN_MARGIN,
    **settings: object,
) -> Filter:
    """The filter ``name`` painting ``mask`` ("ellipse" or "box") over each face grown by ``margin`` per side,
    and by at least ``min_margin`` pixels.

    ``feather`` is the soft outer band, as a share of the grown region's radius; ``settings`` are the
    filter's own (see each class). Unknown names or settings raise ValueError naming what exists.
    """
    cls = _FILTERS.get(name)
    if cls is None:
        raise ValueError(f"unknown filter {name!r}; available: {', '.join(available())}")
    own = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    unknown = sorted(set(settings) - set(own))
    if unknown:
        raise ValueError(
            f"filter {name!r} has no setting {', '.join(unknown)}; its settings: {', '.join(own) or 'none'}"
        )
    return cls(mask=mask, margin=margin, feather=feather, min_margin=min_margin, **settings)
