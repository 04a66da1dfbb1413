"""Several detectors behind one Detector: run in order until one finds faces, all at once and merged, or the first
that could be loaded."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from detectors.base import Detection, Detector
from detectors.geometry import merge_overlapping
from detectors.models import ModelMissingError

log = logging.getLogger(__name__)

POLICIES = ("fallback", "union", "backup")


class Chain(Detector):
    """Detectors combined by a policy.

    ``fallback`` (the user's design): the next detector runs only when those before it found nothing, so the
    cheap accurate one answers most photos and the next is a safety net. ``union``: every detector runs and
    overlapping boxes are merged into one (best score kept, names joined as ``"yunet+ssd"``). ``backup``: only the
    first detector whose model files are there is loaded and run; the others stand by for a machine without them.
    A detector that finds nothing on a photo is usually right, and a second one run just then mostly paints its false
    boxes (Haar finds six "faces" in scikit-image's photo of coins), so the default chain is a backup, not a fallback.
    """

    def __init__(
        self, members: Sequence[Detector], policy: str = "fallback", judges: Sequence[Detector] | None = None
    ) -> None:
        """``judges`` (fallback only): one detector per member that says whether the member found faces, when the
        member itself runs with other settings (a threshold the user chose)."""
        if policy not in POLICIES:
            raise ValueError(f"unknown chain policy {policy!r}; use one of: {', '.join(POLICIES)}")
        if not members:
            raise ValueError("a chain needs at least one detector")
        if judges is not None and len(judges) != len(members):
            raise ValueError("a chain needs one judge per member")
        self.members = list(members)
        self.judges = list(judges) if judges is not None else list(members)
        self.policy = policy
        self.name = f"{policy}:" + ",".join(m.name for m in self.members)

    @classmethod
    def load(
        cls,
        factories: Sequence[tuple[str, Callable[[], Detector]]],
        policy: str = "fallback",
        judges: Sequence[Callable[[], Detector]] | None = None,
    ) -> Chain:
        """Build each member (and its judge, if given), skipping with one warning each those whose model files are
        missing.

        This is what keeps the tool working without downloaded weights: ``ssd,haar`` degrades to Haar. A ``backup``
        chain stops at the first member that loads. Raises ``ModelMissingError`` only when no member could be loaded.
        """
        members, built_judges, problems = [], [], []
        for index, (name, factory) in enumerate(factories):
            try:
                members.append(factory())
                if judges is not None:
                    built_judges.append(judges[index]())
            except ModelMissingError as error:
                problems.append(str(error))
                log.warning("detector %s skipped: %s", name, error)
                continue
            if policy == "backup":
                break
        if not members:
            raise ModelMissingError("; ".join(problems))
        return cls(members, policy, built_judges if judges is not None else None)

    def _find(self, image: np.ndarray) -> list[Detection]:
        if self.policy == "backup":
            return self.members[0].detect(image)
        if self.policy == "fallback":
            for member, judge in zip(self.members, self.judges, strict=True):
                found = member.detect(image)
                if found or (judge is not member and judge.detect(image)):
                    return found
            return []
        return self.merged([member.detect(image) for member in self.members])

    def merged(self, found: Sequence[list[Detection]]) -> list[Detection]:
        """A union's answer from what each member found (one list per member, in order): overlapping boxes merged."""
        return merge_overlapping([d for boxes in found for d in boxes], name_order=[m.name for m in self.members])
