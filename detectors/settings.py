"""Each detector's settings as one frozen dataclass: the one place that says what a detector takes, its defaults and
what each value may be. The registry builds them from bracketed settings (``"scrfd[threshold=0.3]"``), the command
line reads their defaults for its help, and a detector is given one, so a bad value is refused before any weight is
loaded, in one line that names the setting.

A field's annotation says its kind and, through ``typing.Annotated``, its bounds or choices: ``Score`` is a float
from 0 to 1, ``Pixels`` a positive whole number, ``OneOf(("a", "b"))`` one of those strings.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, fields
from typing import Annotated, Any, Union


@dataclass(frozen=True)
class Within:
    """A number's bounds, inclusive; ``what`` names it in the message ("a score")."""

    low: float
    high: float = math.inf
    what: str = ""

    def problem(self, name: str, value: float) -> str | None:
        if self.low <= value <= self.high:
            return None
        what = f"{self.what} " if self.what else ""
        if math.isfinite(self.high):
            return f"{name} is {what}from {self.low:g} to {self.high:g}, not {value!r}"
        return f"{name} is {what}{self.low:g} or more, not {value!r}"


@dataclass(frozen=True)
class OneOf:
    """A string's choices."""

    choices: tuple[str, ...]

    def problem(self, name: str, value: str) -> str | None:
        return None if value in self.choices else f"{name} is one of {', '.join(self.choices)}, not {value!r}"


Score = Annotated[float, Within(0, 1, "a score")]
Share = Annotated[float, Within(0, 1, "a share")]
Pixels = Annotated[int, Within(1)]
Distance = Annotated[float, Within(0)]


@dataclass(frozen=True)
class Settings:
    """What every registered detector takes: ``threshold``, the score a face must reach. Subclasses add their own
    fields (and may give ``threshold`` another default); each value is checked against its field when built."""

    threshold: Score = 0.5

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            kind, bounds = _hints(type(self))[field.name]
            if not _fits(value, kind):
                raise ValueError(f"{field.name} takes {_described(kind)}, not {value!r}")
            for bound in bounds:
                if value is not None and (problem := bound.problem(field.name, value)):
                    raise ValueError(problem)

    @classmethod
    def names(cls) -> list[str]:
        """The settings' names, in the order they are declared."""
        return [field.name for field in fields(cls)]


Hints = dict[str, tuple[Any, tuple[Within | OneOf, ...]]]
_HINTS: dict[type[Settings], Hints] = {}


def _hints(cls: type[Settings]) -> Hints:
    """Each field's kind and its bounds or choices, read once per class from its annotations."""
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls, include_extras=True)
        _HINTS[cls] = {name: _unwrapped(hint) for name, hint in hints.items()}
    return _HINTS[cls]


def _unwrapped(hint: Any) -> tuple[Any, tuple[Within | OneOf, ...]]:
    """A hint's kind without ``Annotated``, and the bounds or choices it carried (also inside ``X | None``)."""
    if typing.get_origin(hint) is Annotated:
        kind, *extras = typing.get_args(hint)
        return kind, tuple(extra for extra in extras if isinstance(extra, Within | OneOf))
    if typing.get_origin(hint) in (Union, types.UnionType):
        options = [_unwrapped(option) for option in typing.get_args(hint)]
        return Union[tuple(kind for kind, _ in options)], tuple(b for _, bounds in options for b in bounds)  # noqa: UP007
    return hint, ()


def _fits(value: object, kind: Any) -> bool:
    """Whether ``value`` is of ``kind``: a number for a float, a whole number for an int, never a bool for either."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        return any(_fits(value, option) for option in typing.get_args(kind))
    if origin is tuple:
        item, *rest = typing.get_args(kind)
        return isinstance(value, tuple) and rest == [Ellipsis] and all(_fits(part, item) for part in value)
    if kind is type(None):
        return value is None
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _described(kind: Any) -> str:
    """What a value of ``kind`` looks like, for a message."""
    origin = typing.get_origin(kind)
    if origin in (Union, types.UnionType):
        return " or ".join(_described(option) for option in typing.get_args(kind))
    if origin is tuple:
        return "a tuple such as (640, 320)"
    return {bool: "True or False", float: "a number", int: "a whole number", type(None): "None"}.get(
        kind, f"a {getattr(kind, '__name__', kind)}"
    )
