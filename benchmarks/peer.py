"""photo-anon against deface, as people install and run each: whole processes on the same photos.

    python -m benchmarks.peer speed              # the held-out photos and a sample of the suite, 3 interleaved rounds
    python -m benchmarks.peer quality --suite    # what deface covers on the upright photos and every variant

deface is installed on first use into its own virtual environment (``out/peer/venv``) from
``benchmarks/peer-requirements.txt``: deface 1.5.0 with onnx and onnxruntime, the install its README recommends for
speed (it then runs CenterFace on onnxruntime, with OpenCV 5). Nothing of deface is part of this project; it runs
as a separate program, exactly as a user would run it.

Speed: both tools anonymize the same folder of photos in one process each, with their default settings, rounds
interleaved (the order alternating) so that the machine's drift hits both alike; the report gives each round, the
medians and their ratio. The folder holds the held-out half of the labelled photos (the half no tuning looked at)
as PNG, and every variant of the suite made of every ``--every``-th of them (PNG, and JPEG as Telegram sends them).
Quality: deface paints faces solid black (``--replacewith solid``, its ellipse grown by its
default ``--mask-scale 1.3``) on each case of a variant, and what turned black is scored as the comparison scores
this project's masks.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from anonymizer.codec import decode_image, encode_image
from benchmarks import metrics
from benchmarks.compare_detectors import DEFAULT_DATA, ROOT, evenly_spaced
from benchmarks.datasets import HALVES, half, load_annotations
from benchmarks.machine import stamp
from benchmarks.variants import SUITE, VARIANTS

OUT = ROOT / "out" / "peer"
REQUIREMENTS = Path(__file__).with_name("peer-requirements.txt")
PEER = "deface"


def peer_program(venv: Path) -> Path:
    """deface's command in its own virtual environment, installed there first if it is not yet."""
    program = venv / "bin" / PEER
    if program.exists():
        return program
    print(f"installing {PEER} into {venv} (once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    return program


def our_program() -> Path:
    """photo-anon beside the Python that runs this benchmark (the project's virtual environment)."""
    return Path(sys.executable).with_name("photo-anon")


def write_cases(data: Path, photos: str, every: int, folder: Path) -> int:
    """The labelled photos of one half as they are, and every suite variant of every ``every``-th of them, as files
    in ``folder``; how many."""
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for index, sample in enumerate(half(load_annotations(data), photos)):
        image = decode_image(sample.path.read_bytes()).bgr
        for variant in ["upright", *(SUITE if index % every == 0 else ())]:
            for case in VARIANTS[variant](sample.name, image, sample.faces, sample.ignore):
                suffix = ".png" if case.data.startswith(b"\x89PNG") else ".jpg"
                (folder / f"{count:04d}{suffix}").write_bytes(case.data)
                count += 1
    return count


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def speed(args: argparse.Namespace) -> dict:
    """Whole-process seconds of each tool on the same folder of photos, in interleaved rounds."""
    deface = peer_program(args.venv)
    seconds: dict[str, list[float]] = {"photo-anon": [], PEER: []}
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "photos"
        cases = write_cases(args.data, args.photos, args.every, source)
        for round_ in range(args.rounds):
            order = ["photo-anon", PEER] if round_ % 2 == 0 else [PEER, "photo-anon"]
            for tool in order:
                work = Path(scratch) / f"{tool}-{round_}"
                subprocess.run(["cp", "-r", str(source), str(work)], check=True)
                if tool == PEER:
                    seconds[tool].append(timed([str(deface), str(work)]))
                else:
                    seconds[tool].append(timed([str(our_program()), "anonymize", str(work), "-o", f"{work}-out"]))
    medians = {tool: statistics.median(values) for tool, values in seconds.items()}
    return {
        "photos": f"the {args.photos} labelled photos and the suite of every {args.every}th of them: {cases} files",
        "rounds": seconds,
        "median_s": medians,
        "ratio": medians["photo-anon"] / medians[PEER],
    }


def painted_by_peer(original: np.ndarray, anonymized: np.ndarray) -> np.ndarray:
    """What deface's solid fill painted: pixels it turned black, with the holes of already-black pixels filled."""
    turned_black = np.all(anonymized == 0, axis=-1) & np.any(original != 0, axis=-1)
    return ndimage.binary_fill_holes(turned_black)


def quality(args: argparse.Namespace) -> dict:
    """deface's coverage and over-painting on each variant, scored on the pixels it painted."""
    deface = peer_program(args.venv)
    samples = evenly_spaced(load_annotations(args.data), args.limit)
    variants = ["upright", *SUITE] if args.suite else args.variants
    summaries = {}
    for variant in variants:
        results = []
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            cases = []
            for sample in tqdm(samples, desc=f"{variant}: making cases", unit="photo"):
                image = decode_image(sample.path.read_bytes()).bgr
                for case in VARIANTS[variant](sample.name, image, sample.faces, sample.ignore):
                    path = folder / f"{len(cases):05d}.png"
                    path.write_bytes(encode_image(decode_image(case.data).pixels, "PNG"))
                    cases.append((path, case))
            started = time.perf_counter()
            subprocess.run(
                [str(deface), str(folder), "--replacewith", "solid"],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            per_case = (time.perf_counter() - started) / max(1, len(cases))
            for path, case in cases:
                original = decode_image(path.read_bytes()).bgr
                anonymized = decode_image(path.with_name(f"{path.stem}_anonymized.png").read_bytes()).bgr
                painted = painted_by_peer(original, anonymized)
                none = np.empty((0, 4))
                results.append(
                    metrics.evaluate_image(case.name, case.faces, case.ignore, none, np.empty(0), painted, per_case)
                )
        summary = metrics.summarize(results)
        summaries[variant] = {
            key: summary[key]
            for key in ("images", "faces", "covered", "covered@16+", "fully_anonymized", "overpainting", "median_s")
        }
        print(f"{variant}: {json.dumps(summaries[variant])}", file=sys.stderr)
    return {"photos": len(samples), "variants": summaries}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with annotations.json")
    parser.add_argument("--venv", type=Path, default=OUT / "venv", help="where deface is installed")
    parser.add_argument("--out", type=Path, default=OUT)
    commands = parser.add_subparsers(dest="command", required=True)
    speed_parser = commands.add_parser("speed", help="whole-process time of both tools on the same photos")
    speed_parser.add_argument("--photos", default="held-out", choices=HALVES, help="which half of the labelled set")
    speed_parser.add_argument("--every", type=int, default=8, help="the suite's variants of every n-th photo")
    speed_parser.add_argument("--rounds", type=int, default=3)
    quality_parser = commands.add_parser("quality", help="what deface covers on each variant of the labelled set")
    quality_parser.add_argument("--variants", nargs="+", default=["upright"], choices=sorted(VARIANTS))
    quality_parser.add_argument("--suite", action="store_true", help="the upright photos and every variant")
    quality_parser.add_argument("--limit", type=int, help="only N photos spread over the set")
    args = parser.parse_args(argv)

    report = speed(args) if args.command == "speed" else quality(args)
    report["generated"] = stamp("python -m benchmarks.peer", argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"peer-{args.command}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
