"""The ledger of the detector's passes: for each pass of SCRFD and each member of the chain, on the labelled photos
and on every variant of the suite, how often it runs, what it costs and what it buys.

    python -m benchmarks.ledger --report data/reports/passes.json      # the default, the upright photos and the suite
    python -m benchmarks.ledger --photos held-out --variants upright dark
    python -m benchmarks.ledger --detector strict --variants upright    # a union's members, and its SCRFD's passes

Each case is decoded by the pipeline's decoder and given to the detector as the pipeline gives it. What a pass buys
is what the answer loses without that pass's candidates, the other passes having run as they did (a pass that only
decides whether another runs is credited with nothing for that): the faces only it covers, the photos only it
completes (every face of 20 px or more covered) and the paint it adds outside faces, in points of the photo's area,
as the default filter's mask paints them. A rule that runs no pass of its own (a lower bar for faces cut by the
photo's edge, for black-and-white photos) is measured as the detector with that rule switched off, and a union's
member as the union without it. Time is each pass's share of the detector's own time, measured as it ran: its
forwards of the network, and the resizing and decoding around them. Figures taken on a loaded machine say so in
the report's stamp; the shares are ratios within one run and hold better than the seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

import detectors
from anonymizer import face_filter
from anonymizer.codec import decode_image
from anonymizer.options import DEFAULT_DETECTOR, Options
from benchmarks import metrics
from benchmarks.compare_detectors import DEFAULT_DATA, DEFAULT_OUT
from benchmarks.datasets import HALVES, half, load_annotations
from benchmarks.machine import stamp
from benchmarks.variants import SUITE, VARIANTS, Case
from detectors import Chain, Detection, Detector
from detectors.backends import OnnxNet, Outputs
from detectors.scrfd import Pass, ScrfdDetector

# The rules measured by switching them off: the setting that turns each off.
RULES = {"edge rule": {"edge_share": 1.0}, "black-and-white rule": {"grey_share": 1.0}}


@dataclass
class Tally:
    """One pass, rule or member over one variant's cases: how often it ran, what it cost, what it alone bought."""

    runs: int = 0
    seconds: float = 0.0
    forwards: int = 0
    faces: int = 0
    photos: int = 0
    paint: float = 0.0


@dataclass
class Variant:
    """One variant's cases under the detector, and a tally per pass, rule and member."""

    cases: int = 0
    faces: int = 0
    detect_seconds: float = 0.0
    covered: int = 0
    complete: int = 0
    paint: float = 0.0
    parts: dict[str, Tally] | None = None

    def tally(self, name: str) -> Tally:
        self.parts = self.parts if self.parts is not None else {}
        return self.parts.setdefault(name, Tally())


class Remembered:
    """A network whose outputs are kept per input, so a rule's second run over the same case costs no forward again:
    the second run sees exactly the first run's outputs."""

    def __init__(self, net: OnnxNet) -> None:
        self._net = net
        self._seen: dict[bytes, Outputs] = {}

    def run(self, blob: np.ndarray) -> Outputs:
        key = hashlib.blake2b(np.ascontiguousarray(blob).data, digest_size=16).digest() + str(blob.shape).encode()
        if key not in self._seen:
            self._seen[key] = {name: value.copy() for name, value in self._net.run(blob).items()}
        return self._seen[key]

    def forget(self) -> None:
        self._seen.clear()


class Ledger:
    """The detector of a spec taken apart: a single SCRFD, a backup chain (only its first member that loaded runs) or
    a union, whose SCRFD members are measured pass by pass and whose members are measured each."""

    def __init__(self, spec: str) -> None:
        detector = detectors.create(spec)
        self.policy = detector.policy if isinstance(detector, Chain) else "single"
        if self.policy == "fallback":
            raise ValueError("a fallback chain runs its members photo by photo: measure a single detector or a union")
        self.chain = detector if isinstance(detector, Chain) else None
        # A backup chain holds only the member that loaded: the others stand by for a machine without its weights.
        self.members: list[Detector] = self.chain.members if self.chain else [detector]
        self.ablated: dict[int, dict[str, ScrfdDetector]] = {}
        self.memories: list[Remembered] = []
        for index, member in enumerate(self.members):
            if isinstance(member, ScrfdDetector):
                # One memory per weights: the windowed looks may run other weights than the whole-photo ones.
                memory = Remembered(member._net)
                window_memory = memory if member._window_net is member._net else Remembered(member._window_net)
                member._net, member._window_net = memory, window_memory
                self.memories += [memory] if window_memory is memory else [memory, window_memory]
                self.ablated[index] = {}
                for rule, settings in RULES.items():
                    ablated = ScrfdDetector(replace(member.settings, **settings))
                    ablated._net, ablated._window_net = memory, window_memory
                    self.ablated[index][rule] = ablated

    def answer(self, found: Sequence[list[Detection]]) -> list[Detection]:
        """The detector's answer from what each member found."""
        if self.chain is not None and self.policy == "union":
            return self.chain.merged(found)
        return found[0]

    def measure(self, case: Case, image: np.ndarray, judge: Callable[[list[Detection]], metrics.ImageResult]) -> dict:
        """What the detector found on one case, and for each pass, rule and member: whether it ran, its seconds and
        forwards, and the judged answer without it (None where that answer is the same)."""
        for memory in self.memories:
            memory.forget()
        found: list[list[Detection]] = []
        passes: dict[int, list[Pass]] = {}
        seconds: dict[str, tuple[float, int]] = {}
        start = time.perf_counter()
        for index, member in enumerate(self.members):
            mark = time.perf_counter()
            if isinstance(member, ScrfdDetector):
                passes[index] = member.passes(image)
                found.append(member.decide(passes[index], image))
                seconds.update(
                    {found_pass.name: (found_pass.seconds, found_pass.forwards) for found_pass in passes[index]}
                )
            else:
                found.append(member.detect(image))
            if len(self.members) > 1:
                seconds[f"member {member.name}"] = (time.perf_counter() - mark, 0)
        detect_seconds = time.perf_counter() - start
        answer = self.answer(found)
        without: dict[str, list[Detection]] = {}
        for index, member_passes in passes.items():
            scrfd = self.members[index]
            assert isinstance(scrfd, ScrfdDetector)
            for left_out in member_passes:
                if len(left_out.rows):
                    kept = [other for other in member_passes if other is not left_out]
                    without[left_out.name] = self._replaced(found, index, scrfd.decide(kept, image))
            for rule, ablated in self.ablated[index].items():
                without[rule] = self._replaced(found, index, ablated.detect(image))
                seconds[rule] = (0.0, 0)
        if len(self.members) > 1:
            for index, member in enumerate(self.members):
                without[f"member {member.name}"] = self.answer([f for i, f in enumerate(found) if i != index] or [[]])
        return {
            "detect_seconds": detect_seconds,
            "result": judge(answer),
            "seconds": seconds,
            "without": {name: None if _same(boxes, answer) else judge(boxes) for name, boxes in without.items()},
        }

    def _replaced(self, found: Sequence[list[Detection]], index: int, boxes: list[Detection]) -> list[Detection]:
        return self.answer([boxes if i == index else f for i, f in enumerate(found)])


def _same(a: list[Detection], b: list[Detection]) -> bool:
    return sorted((d.x, d.y, d.w, d.h) for d in a) == sorted((d.x, d.y, d.w, d.h) for d in b)


def run_variant(ledger: Ledger, variant: str, samples: Sequence, options: Options) -> Variant:
    """Every case the variant makes of the samples, tallied."""
    painter = face_filter(options)
    tally = Variant()
    for sample in tqdm(samples, desc=f"{variant}: photos", unit="photo"):
        image = decode_image(sample.path.read_bytes()).bgr
        for case in VARIANTS[variant](sample.name, image, sample.faces, sample.ignore):
            bgr = decode_image(case.data).bgr

            def judge(found: list[Detection], case: Case = case) -> metrics.ImageResult:
                return metrics.judge_mask(case.name, case.faces, case.ignore, painter.mask(case.shape, found), 0.0)

            measured = ledger.measure(case, bgr, judge)
            result: metrics.ImageResult = measured["result"]
            tally.cases += 1
            tally.faces += len(result.covered)
            tally.covered += int(result.covered.sum())
            tally.complete += int(result.fully_anonymized)
            tally.paint += result.overpainted
            tally.detect_seconds += measured["detect_seconds"]
            for name, (seconds, forwards) in measured["seconds"].items():
                part = tally.tally(name)
                part.runs += int(forwards > 0 or seconds > 0)
                part.seconds += seconds
                part.forwards += forwards
            for name, judged in measured["without"].items():
                part = tally.tally(name)
                if judged is not None:
                    part.faces += int((result.covered & ~judged.covered).sum())
                    part.photos += int(result.fully_anonymized and not judged.fully_anonymized)
                    part.paint += result.overpainted - judged.overpainted
    return tally


def figures(tally: Variant) -> dict:
    """The report's figures of one variant: totals, and per pass, rule or member its shares."""
    parts = {}
    for name, part in (tally.parts or {}).items():
        parts[name] = {
            **asdict(part),
            "runs_percent": 100 * part.runs / max(1, tally.cases),
            "time_percent": 100 * part.seconds / max(tally.detect_seconds, 1e-9),
            "paint_points": 100 * part.paint / max(1, tally.cases),
        }
    return {
        "cases": tally.cases,
        "faces": tally.faces,
        "detect_seconds": tally.detect_seconds,
        "covered_percent": 100 * tally.covered / max(1, tally.faces),
        "fully_anonymized_percent": 100 * tally.complete / max(1, tally.cases),
        "overpainting_percent": 100 * tally.paint / max(1, tally.cases),
        "parts": parts,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with annotations.json")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR, help="a spec: one detector, a backup chain or a union")
    parser.add_argument("--photos", default="all", choices=HALVES)
    parser.add_argument("--variants", nargs="+", default=["upright", *SUITE], choices=sorted(VARIANTS))
    parser.add_argument("--report", type=Path, help="write the figures to this JSON file (data/reports/passes.json)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "ledger.json")
    args = parser.parse_args(argv)

    samples = half(load_annotations(args.data), args.photos)
    ledger = Ledger(args.detector)
    options = Options(detector=args.detector)
    by_variant = {variant: figures(run_variant(ledger, variant, samples, options)) for variant in args.variants}
    report = {
        "generated": stamp("python -m benchmarks.ledger", argv),
        "detector": args.detector,
        "policy": ledger.policy,
        "members": [member.name for member in ledger.members],
        "photos": f"{len(samples)} ({args.photos})",
        "variants": by_variant,
    }
    for target in filter(None, (args.out, args.report)):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({v: {k: f[k] for k in ("cases", "detect_seconds")} for v, f in by_variant.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
