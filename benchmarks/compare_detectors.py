"""Compare face detectors and chains on labelled photos: detection quality, what the painted mask covers, speed.

    python -m benchmarks.compare_detectors                      # ../shared/eval, every detector + the default
    python -m benchmarks.compare_detectors --wider ~/WIDER      # the official WIDER FACE val split (3,226 images)
    python -m benchmarks.compare_detectors --detectors yunet "union:yunet,ssd" "yunet[threshold=0.4]" --limit 40

A detector spec is what ``detectors.create`` takes ("ssd", "ssd,haar", "union:yunet,ssd"); a member may carry
its own settings (the fields of its settings dataclass) in brackets, ``"union:yunet[threshold=0.4 upscale=3],ssd"``,
for tuning.

Each image is decoded by the pipeline's decoder, re-encoded as PNG in memory, and run through the pipeline PNG in,
PNG out (the conditions of the deface reference figures): every spec, bracketed or not, through
``anonymizer.anonymize`` itself. Privacy figures are taken on ``Filter.mask``, exactly what is painted. Outputs in
``--out`` (default ``out/compare``): results.md, results.json, pr_curve.png, coverage_by_size.png, per-detector
detections (reusable with ``--cache``), and side-by-side miss examples.
Miss examples show evaluation photos: they stay in ``--out`` and must never be committed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

import detectors
from anonymizer import anonymize, face_filter
from anonymizer.codec import decode_image, encode_image
from anonymizer.options import Options
from benchmarks import metrics
from benchmarks.datasets import HALVES, Sample, half, load_annotations, load_wider
from benchmarks.machine import stamp
from benchmarks.variants import SUITE, VARIANTS, Case
from detectors import Detection
from testing.paths import EVAL_DIR

ROOT = Path(__file__).resolve().parent.parent
# The labelled photos: ../shared/eval beside the checkout, or $PHOTO_ANON_EVAL_DIR.
DEFAULT_DATA = EVAL_DIR
DEFAULT_OUT = ROOT / "out" / "compare"
# deface 1.5.0 on ../shared/eval (its README): CenterFace, threshold 0.2, --mask-scale 1.3, solid ellipse.
REFERENCE = {
    "label": "deface 1.5.0 (reference)",
    "covered": 84.9,
    "covered@10-15": 69.1,
    "covered@16-31": 88.7,
    "covered@32-63": 96.0,
    "covered@64-127": 95.8,
    "covered@128+": 97.0,
    "fully_anonymized": 82.0,
    "overpainting": 2.3,
    "median_s": 0.35,
}
STAGES = ("decode", "detect", "filter", "encode")


@dataclass
class Run:
    """One detector spec under evaluation: how it runs, and what it found so far (kept for the cache)."""

    label: str
    options: Options
    cached: dict[str, dict]
    found: dict[str, dict]

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-zA-Z0-9]+", "_", self.label).strip("_")

    def process(self, case: Case) -> tuple[list[Detection], dict[str, float]]:
        """Detections and stage timings for one case, from the cache when allowed."""
        if case.name in self.cached:
            entry = self.cached[case.name]
        else:
            result = anonymize(case.data, self.options)
            boxes = [[d.x, d.y, d.w, d.h, d.score, d.detector] for d in result.detections]
            entry = {"boxes": boxes, "timings": dict(result.timings)}
        self.found[case.name] = entry
        return [Detection(*box) for box in entry["boxes"]], entry["timings"]


def evenly_spaced(samples: Sequence[Sample], limit: int | None) -> list[Sample]:
    """At most ``limit`` samples spread over the whole (sorted) set, so a quick run still sees every source."""
    if not limit or limit >= len(samples):
        return list(samples)
    return [samples[int(i * len(samples) / limit)] for i in range(limit)]


def _format(value: float, digits: int = 1) -> str:
    return "–" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def results_table(summaries: dict[str, dict[str, float]], with_reference: bool) -> str:
    """The Markdown tables: privacy on the painted mask, detection quality by face height, and time."""
    buckets = [name for name, _, _ in metrics.HEIGHT_BUCKETS]
    privacy_head = [
        "detector",
        "faces covered %",
        *[f"{b} px" for b in buckets],
        "16+ px",
        "pose atypical",
        "fully anonymized %",
        "over-painting %",
        "median s",
        "p95 s",
    ]
    lines = ["| " + " | ".join(privacy_head) + " |", "|" + "---|" * len(privacy_head)]
    rows = list(summaries.items())
    if with_reference:
        rows.append((REFERENCE["label"], {k: v for k, v in REFERENCE.items() if k != "label"}))
    for label, s in rows:
        cells = [f"`{label}`" if label != REFERENCE["label"] else label, _format(s.get("covered", np.nan))]
        cells += [_format(s.get(f"covered@{b}", np.nan)) for b in buckets]
        cells += [_format(s.get("covered@16+", np.nan)), _format(s.get("covered@pose", np.nan))]
        cells += [_format(s.get(k, np.nan)) for k in ("fully_anonymized", "overpainting")]
        cells += [_format(s.get(k, np.nan), 3) for k in ("median_s", "p95_s")]
        lines.append("| " + " | ".join(cells) + " |")
    detection_head = ["detector", "precision %", "recall %", "AP", *[f"{b} px R % / AP" for b in buckets]]
    lines += ["", "| " + " | ".join(detection_head) + " |", "|" + "---|" * len(detection_head)]
    for label, s in summaries.items():
        cells = [f"`{label}`", _format(s["precision"]), _format(s["recall"]), _format(s["ap"], 3)]
        cells += [f"{_format(s[f'recall@{b}'])} / {_format(s[f'ap@{b}'], 3)}" for b in buckets]
        lines.append("| " + " | ".join(cells) + " |")
    stage_head = ["detector", *[f"{stage} median s" for stage in STAGES], "total / (decode + encode)"]
    lines += ["", "| " + " | ".join(stage_head) + " |", "|" + "---|" * len(stage_head)]
    for label, s in summaries.items():
        cells = [f"`{label}`", *[_format(s.get(f"{stage}_s", np.nan), 3) for stage in STAGES]]
        cells.append(_format(s.get("floor_ratio", np.nan), 2))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(summaries: dict[str, dict[str, float]], curves: dict[str, tuple[np.ndarray, np.ndarray]], out: Path) -> None:
    """pr_curve.png and coverage_by_size.png (aggregate figures only, no image content)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    for label, (precision, recall) in curves.items():
        axes.plot(recall, precision, label=f"{label} (AP {summaries[label]['ap']:.3f})")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Faces at IoU 0.5")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(out / "pr_curve.png", dpi=110)
    plt.close(figure)

    buckets = [name for name, _, _ in metrics.HEIGHT_BUCKETS]
    figure, axes = plt.subplots(figsize=(7, 5))
    for label, summary in summaries.items():
        axes.plot(buckets, [summary[f"covered@{b}"] for b in buckets], marker="o", label=label)
    axes.plot(buckets, [REFERENCE[f"covered@{b}"] for b in buckets], "k--", label=REFERENCE["label"])
    axes.set(xlabel="face height (px)", ylabel="faces covered by the painted mask (%)", ylim=(0, 101))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(out / "coverage_by_size.png", dpi=110)
    plt.close(figure)


def save_miss_examples(
    run: Run, results: list[metrics.ImageResult], cases: dict[str, Case], options: Options, out: Path, count: int
) -> None:
    """Side by side (labels left, what was painted right) for the images where most 20+ px faces stayed uncovered."""
    worst = sorted((r for r in results if r.missed), key=lambda r: (-r.missed, r.name))[:count]
    if not worst:
        return
    folder = out / "misses" / run.slug
    folder.mkdir(parents=True, exist_ok=True)
    painter = face_filter(options)
    for rank, result in enumerate(worst, 1):
        case = cases[result.name]
        image = decode_image(case.data).bgr
        found = [Detection(*box) for box in run.found[result.name]["boxes"]]
        labelled = image.copy()
        for x, y, w, h in case.ignore.astype(int):
            cv2.rectangle(labelled, (x, y), (x + w, y + h), (128, 128, 128), 1)
        for (x, y, w, h), covered in zip(case.faces.astype(int), result.covered, strict=True):
            cv2.rectangle(labelled, (x, y), (x + w, y + h), (0, 200, 0) if covered else (0, 0, 255), 2)
        for d in found:
            cv2.rectangle(labelled, (d.x, d.y), (d.x + d.w, d.y + d.h), (255, 128, 0), 1)
        side_by_side = np.hstack([labelled, painter.apply(image, found)])
        filename = f"{rank:02d}_{re.sub(r'[^a-zA-Z0-9]+', '_', result.name)}.jpg"
        (folder / filename).write_bytes(encode_image(side_by_side, "JPEG"))


def summarize_run(
    results: list[metrics.ImageResult], timings: list[dict[str, float]], pose_covered: list[bool]
) -> dict[str, float]:
    """The metric summary plus per-stage medians, the floor ratio and coverage of atypical-pose faces."""
    summary = metrics.summarize(results)
    for stage in STAGES:
        summary[f"{stage}_s"] = float(np.median([t.get(stage, np.nan) for t in timings]))
    floor = np.array([t["decode"] + t["encode"] for t in timings])
    summary["floor_ratio"] = float(np.median(np.array([t["total"] for t in timings]) / floor))
    summary["covered@pose"] = 100.0 * float(np.mean(pose_covered)) if pose_covered else float("nan")
    return summary


@dataclass
class Evaluation:
    """What one spec did on one variant: per-case scores and timings, and coverage of atypical-pose faces."""

    results: list[metrics.ImageResult]
    timings: list[dict[str, float]]
    pose: list[bool]

    def summary(self) -> dict[str, float]:
        return summarize_run(self.results, self.timings, self.pose)


def evaluate(
    variant: str, samples: Sequence[Sample], runs: Sequence[Run], options: Options
) -> tuple[dict[str, Evaluation], dict[str, Case]]:
    """Every run on every case the variant makes of the samples; also the cases some run missed a face on."""
    painter = face_filter(options)
    evaluations = {run.label: Evaluation([], [], []) for run in runs}
    missed_cases: dict[str, Case] = {}
    progress = tqdm(total=len(samples) * len(runs), unit="run", desc=f"{variant}: detectors x photos")
    for sample in samples:
        image = decode_image(sample.path.read_bytes()).bgr
        atypical = np.array([a.get("pose", 0) == 1 for a in sample.attrs], dtype=bool)
        for case in VARIANTS[variant](sample.name, image, sample.faces, sample.ignore):
            for run in runs:
                found, timing = run.process(case)
                boxes = np.array([[d.x, d.y, d.w, d.h] for d in found], dtype=float).reshape(-1, 4)
                scores = np.array([d.score for d in found], dtype=float)
                mask = painter.mask(case.shape, found)
                result = metrics.evaluate_image(
                    case.name, case.faces, case.ignore, boxes, scores, mask, timing["total"]
                )
                evaluation = evaluations[run.label]
                evaluation.results.append(result)
                evaluation.timings.append(timing)
                if len(atypical) == len(result.covered):
                    evaluation.pose.extend(result.covered[atypical].tolist())
                if result.missed:
                    missed_cases[case.name] = case
        progress.update(len(runs))
    progress.close()
    return evaluations, missed_cases


# The coverage test runs the slower variants on every n-th photo: the report gives the default's figures on that
# sample too, so the test holds it to figures measured on the same photos.
SAMPLE_EVERY = 8


def sampled_figures(variant: str, evaluation: Evaluation, samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """The default's figures on a variant, and on the cases made of every SAMPLE_EVERY-th photo."""
    sampled = {sample.name for sample in samples[::SAMPLE_EVERY]}
    subset = [result for result in evaluation.results if result.name.split("#")[0] in sampled]
    return {variant: evaluation.summary(), f"{variant}/{SAMPLE_EVERY}": metrics.summarize(subset)}


def suite_table(summaries: dict[str, dict[str, dict[str, float]]]) -> str:
    """One row per variant and spec: the privacy figures, and photos fully anonymized against the upright photos."""
    head = [
        "variant",
        "detector",
        "photos",
        "faces covered %",
        "16+ px %",
        "fully anonymized %",
        "vs upright",
        "over-painting %",
        "median s",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    upright = summaries.get("upright", {})
    for variant, by_spec in summaries.items():
        for label, s in by_spec.items():
            baseline = upright.get(label, {}).get("fully_anonymized", np.nan)
            delta = s["fully_anonymized"] - baseline if variant != "upright" else np.nan
            cells = [
                variant,
                f"`{label}`",
                f"{s['images']:.0f}",
                _format(s["covered"]),
                _format(s["covered@16+"]),
                _format(s["fully_anonymized"]),
                "–" if np.isnan(delta) else f"{delta:+.1f}",
                _format(s["overpainting"]),
                _format(s["median_s"], 3),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    defaults = Options()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with annotations.json")
    parser.add_argument("--wider", type=Path, help="WIDER FACE folder (wider_face_split/ + WIDER_val/images)")
    parser.add_argument("--detectors", nargs="+", help="specs to compare (default: every detector + the default)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--limit", type=int, help="evaluate only N images spread over the set")
    parser.add_argument(
        "--photos",
        default="all",
        choices=HALVES,
        help="every labelled photo, or the half changes are tuned on, or the half kept out of tuning",
    )
    parser.add_argument("--cache", action="store_true", help="reuse detections saved by an earlier run in --out")
    parser.add_argument("--mask", default=defaults.mask, choices=("ellipse", "box"))
    parser.add_argument("--margin", type=float, default=defaults.margin)
    parser.add_argument("--min-margin", type=float, default=defaults.min_margin, help="pixels")
    parser.add_argument("--filter", default=defaults.filter, help="filter used to paint (and to time)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["upright"],
        choices=sorted(VARIANTS),
        metavar="VARIANT",
        help=f"the photos as given (upright), or made into what people send: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--suite", action="store_true", help=f"every variant of the suite: {', '.join(SUITE)}")
    parser.add_argument("--examples", type=int, default=4, help="miss examples per detector (0: none)")
    parser.add_argument(
        "--report",
        type=Path,
        help="also write the figures alone (no photo, no box) to this JSON file: the report the docs and the "
        "coverage test read (data/reports/quality.json)",
    )
    args = parser.parse_args(argv)

    samples = load_wider(args.wider) if args.wider else load_annotations(args.data)
    samples = evenly_spaced(half(samples, args.photos), args.limit)
    specs = list(dict.fromkeys(args.detectors or [*detectors.available(), defaults.detector]))
    variants = list(dict.fromkeys(["upright", *SUITE] if args.suite else args.variants))
    options = Options(filter=args.filter, mask=args.mask, margin=args.margin, min_margin=args.min_margin)
    source = os.path.relpath(args.wider or args.data, ROOT) + ("" if args.photos == "all" else f", {args.photos} half")
    summaries_by_variant: dict[str, dict[str, dict[str, float]]] = {}
    default_figures: dict[str, dict[str, float]] = {}
    for variant in variants:
        out = args.out if variant == "upright" else args.out / variant
        (out / "detections").mkdir(parents=True, exist_ok=True)
        runs = []
        for spec in specs:
            run = Run(spec, replace(options, detector=spec), {}, {})
            cache_file = out / "detections" / f"{run.slug}.json"
            if args.cache and cache_file.exists():
                run.cached = json.loads(cache_file.read_text())["images"]
            runs.append(run)
        evaluations, missed_cases = evaluate(variant, samples, runs, options)
        summaries, curves = {}, {}
        for run in runs:
            evaluation = evaluations[run.label]
            summaries[run.label] = evaluation.summary()
            curves[run.label] = metrics.precision_recall_curve(r.matchings[metrics.ALL] for r in evaluation.results)
            (out / "detections" / f"{run.slug}.json").write_text(json.dumps({"label": run.label, "images": run.found}))
            if args.examples:
                save_miss_examples(run, evaluation.results, missed_cases, options, out, args.examples)
        summaries_by_variant[variant] = summaries
        if defaults.detector in evaluations:
            default_figures.update(sampled_figures(variant, evaluations[defaults.detector], samples))
        first = next(iter(summaries.values()), {"images": 0, "faces": 0})
        header = (
            f"Data: `{source}`, {len(samples)} photos made into {first['images']:.0f} `{variant}` cases with "
            f"{first['faces']:.0f} faces. Mask: {args.mask}, margin {args.margin} (at least {args.min_margin:g} px), "
            f"painted = weight >= {metrics.MASK_PAINTED}; covered = >= "
            f"{metrics.COVERED_SHARE:.0%} of the face box painted. Time: the file in, the same format out, whole "
            f"pipeline, median / 95th percentile per photo.\n\n"
        )
        with_reference = (
            variant == "upright"
            and not args.wider
            and not args.limit
            and args.photos == "all"
            and args.data == DEFAULT_DATA
        )
        table = header + results_table(summaries, with_reference)
        (out / "results.md").write_text(table)
        (out / "results.json").write_text(
            json.dumps(
                {
                    "data": source,
                    "photos": len(samples),
                    "variant": variant,
                    "mask": args.mask,
                    "margin": args.margin,
                    "min_margin": args.min_margin,
                    "summaries": summaries,
                },
                indent=1,
            )
        )
        plot(summaries, curves, out)
        print(table)
    if args.report:
        report = {
            "generated": stamp("python -m benchmarks.compare_detectors", argv),
            "data": source,
            "photos": len(samples),
            "mask": args.mask,
            "margin": args.margin,
            "min_margin": args.min_margin,
            "default_detector": defaults.detector,
            "summaries": summaries_by_variant,
            "default": default_figures,
        }
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    if len(variants) > 1:
        table = suite_table(summaries_by_variant)
        (args.out / "suite.md").write_text(table)
        (args.out / "suite.json").write_text(json.dumps(summaries_by_variant, indent=1))
        print(table)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
