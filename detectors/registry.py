"""Detectors created by name, in the style of timm's ``create_model``: ``create("union:yunet,ssd,haar")``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from detectors.base import Detector
from detectors.chain import POLICIES, Chain

_REGISTRY: dict[str, type[Detector]] = {}

D = TypeVar("D", bound=type[Detector])


def register(name: str) -> Callable[[D], D]:
    """Class decorator: make a Detector subclass creatable as ``create(name)`` and set its ``name``."""

    def decorate(cls: D) -> D:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def unregister(name: str) -> None:
    """Remove a registered detector (for tests that register throwaway detectors)."""
    _REGISTRY.pop(name, None)


def available() -> list[str]:
    """The registered detector names, sorted."""
    return sorted(_REGISTRY)


def _accepted(cls: type[Detector]) -> set[str] | None:
    """Keyword settings the detector's constructor takes, or None when it takes ``**kwargs``."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters if p.name != "self"}


def create(spec: str, **settings: Any) -> Detector:
    """A detector or chain from a spec: ``"ssd"``, ``"ssd,haar"`` (fallback) or ``"union:yunet,ssd,haar"``.

    ``settings`` (such as ``threshold``) go to every member whose constructor accepts them; a setting with
    value None means "the detector's default" and is dropped; a setting no member accepts is a ValueError.
    A single detector whose model files are missing raises ``ModelMissingError``; a chain skips such a
    member with a warning and fails only when none could be loaded.
    """
    policy, explicit, members = _parse(spec)
    settings = {k: v for k, v in settings.items() if v is not None}
    factories, used = [], set()
    for name in members:
        cls = _REGISTRY[name]
        accepted = _accepted(cls)
        chosen = dict(settings) if accepted is None else {k: v for k, v in settings.items() if k in accepted}
        used.update(chosen)
        factories.append((name, functools.partial(cls, **chosen)))
    unused = set(settings) - used
    if unused:
        raise ValueError(f"setting(s) {', '.join(sorted(unused))} not accepted by detector(s) {', '.join(members)}")
    if len(factories) == 1 and not explicit:
        return factories[0][1]()
    return Chain.load(factories, policy)


def _parse(spec: str) -> tuple[str, bool, list[str]]:
    text = spec.strip().lower()
    policy, explicit = "fallback", False
    if ":" in text:
        policy, text = (part.strip() for part in text.split(":", 1))
        explicit = True
        if policy not in POLICIES:
            raise ValueError(f"unknown chain policy {policy!r} in {spec!r}; use one of: {', '.join(POLICIES)}")
    members = [m.strip() for m in text.split(",") if m.strip()]
    if not members:
        raise ValueError(f"no detector named in {spec!r}; available: {', '.join(available())}")
    for name in members:
        if name not in _REGISTRY:
            raise ValueError(f"unknown detector {name!r}; available: {', '.join(available())}")
    return policy, explicit, members
