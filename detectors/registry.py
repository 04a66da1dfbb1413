"""Detectors created by name, in the style of timm's ``create_model``: ``create("union:yunet,ssd,haar")``."""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from detectors.base import Detector
from detectors.chain import POLICIES, Chain
from detectors.settings import Settings


class Registered(NamedTuple):
    """A detector class and the settings it is created from."""

    detector: Callable[[Any], Detector]
    settings: type[Settings]


_REGISTRY: dict[str, Registered] = {}

D = TypeVar("D", bound=type[Detector])


def register(name: str, settings: type[Settings]) -> Callable[[D], D]:
    """Class decorator: make a Detector subclass creatable as ``create(name)`` and set its ``name``; it is built as
    ``cls(settings)``, from an instance of ``settings`` made of the spec's bracketed settings and ``create``'s."""

    def decorate(cls: D) -> D:
        cls.name = name
        _REGISTRY[name] = Registered(cls, settings)
        return cls

    return decorate


def unregister(name: str) -> None:
    """Remove a registered detector (for tests that register throwaway detectors)."""
    _REGISTRY.pop(name, None)


def available() -> list[str]:
    """The registered detector names and presets, sorted."""
    return sorted([*_REGISTRY, *PRESETS])


def _settings_of(name: str, given: dict[str, Any]) -> Settings:
    """The member's settings made of ``given``, or a ValueError in one line that names the detector, the setting and
    what it accepts."""
    kind = _REGISTRY[name].settings
    for key in given:
        if key not in kind.names():
            raise ValueError(f"detector {name!r} has no setting {key!r}; it takes: {', '.join(kind.names())}")
    try:
        return kind(**given)
    except ValueError as error:
        raise ValueError(f"detector {name!r}: {error}") from None


# Named specs, created like detectors. "thorough": SCRFD with every pass on every photo (turned and windowed) and
# YuNet with its own turned passes, boxes merged: more faces for more paint and twice the time. "strict": the same at
# lower thresholds, for a second look at a photo where a face was left uncovered (`python -m
# benchmarks.compare_detectors --detectors thorough strict` measures both).
PRESETS = {
    "thorough": "union:scrfd[turned='always' small_hint=0],yunet",
    "strict": "union:scrfd[turned='always' small_hint=0 threshold=0.15],yunet[threshold=0.15]",
}
_MEMBER = re.compile(r"^\s*([a-z0-9_]+)\s*(?:\[(.*)\])?\s*$", re.IGNORECASE)


def create(spec: str, **settings: Any) -> Detector:
    """A detector or chain from a spec: ``"ssd"``, ``"ssd,haar"`` (fallback), ``"union:yunet,ssd,haar"``, a
    preset such as ``"thorough"``, and members with their own settings: ``"union:yunet[threshold=0.3],ssd"``.

    ``settings`` (such as ``threshold``) go to every member whose settings (``detectors.settings``) have them, after
    the member's own bracketed ones; a setting with value None means "the detector's default" and is dropped; a
    setting no member accepts, an unknown bracketed setting or one of the wrong kind or range is a ValueError. A
    single detector whose model files are missing raises ``ModelMissingError``; a chain skips such a member with a
    warning and fails only when none could be loaded.

    In a ``fallback`` chain given a threshold, whether a member found faces is judged at the member's own settings
    and only the boxes it keeps follow the threshold: otherwise a higher threshold would hand photos to the next
    detector, which may find more boxes than the first one found at a lower threshold.
    """
    policy, explicit, members = _parse(spec)
    settings = {k: v for k, v in settings.items() if v is not None}
    threshold = settings.get("threshold")
    if threshold is not None and not (isinstance(threshold, int | float) and 0 <= threshold <= 1):
        raise ValueError(f"threshold is a score from 0 to 1, not {threshold!r}")
    factories, judges = [], []
    used: set[str] = set()
    for name, own in members:
        if name in PRESETS:
            chosen = dict(settings)
            factories.append((name, functools.partial(create, PRESETS[name], **chosen)))
            judges.append(functools.partial(create, PRESETS[name]))
            used.update(chosen)
            continue
        registered = _REGISTRY[name]
        own_settings = _settings_of(name, own)
        chosen = {k: v for k, v in settings.items() if k in registered.settings.names()}
        used.update(chosen)
        factories.append((name, functools.partial(registered.detector, _settings_of(name, {**own, **chosen}))))
        judges.append(functools.partial(registered.detector, own_settings))
    unused = set(settings) - used
    names = ", ".join(name for name, _ in members)
    if unused:
        raise ValueError(f"setting(s) {', '.join(sorted(unused))} not accepted by detector(s) {names}")
    if len(factories) == 1 and not explicit:
        return factories[0][1]()
    return Chain.load(factories, policy, judges if policy == "fallback" and threshold is not None else None)


def _parse(spec: str) -> tuple[str, bool, list[tuple[str, dict[str, Any]]]]:
    """Policy, whether it was written out, and each member's name and bracketed settings."""
    text = spec.strip()
    policy, explicit = "fallback", False
    head = text.split("[", 1)[0]
    if ":" in head:
        policy, text = (part.strip() for part in text.split(":", 1))
        policy, explicit = policy.lower(), True
        if policy not in POLICIES:
            raise ValueError(f"unknown chain policy {policy!r} in {spec!r}; use one of: {', '.join(POLICIES)}")
    members = []
    for member in _split_members(text):
        if not member.strip():
            continue
        match = _MEMBER.match(member)
        if not match:
            raise ValueError(f"cannot read detector {member.strip()!r} in {spec!r}: use name[setting=value ...]")
        name = match.group(1).lower()
        if name not in _REGISTRY and name not in PRESETS:
            raise ValueError(f"unknown detector {name!r}; available: {', '.join(available())}")
        if name in PRESETS and match.group(2):
            raise ValueError(f"preset {name!r} takes no bracketed settings; write out its spec: {PRESETS[name]}")
        members.append((name, _settings(match.group(2) or "", spec)))
    if not members:
        raise ValueError(f"no detector named in {spec!r}; available: {', '.join(available())}")
    return policy, explicit, members


def _split_members(text: str) -> list[str]:
    """Split on commas outside brackets: ``yunet[input_sizes=(640, 320)],ssd`` -> ``yunet[...]``, ``ssd``."""
    members, depth, current = [], 0, ""
    for char in text:
        depth += {"[": 1, "]": -1, "(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            members.append(current)
            current = ""
        else:
            current += char
    return [*members, current]


def _settings(text: str, spec: str) -> dict[str, Any]:
    """``threshold=0.3 input_sizes=(768,)`` -> keyword settings; values are Python literals, else strings."""
    settings = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"cannot read setting {item!r} in {spec!r}: use name[setting=value ...]")
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key] = value
    return settings
