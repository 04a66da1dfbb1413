"""SCRFD's forward pass on each inference backend, so the backend the detector runs on is a measured choice.

    python -m benchmarks.backends                 # cv2.dnn and onnxruntime (FP32): 1 and 2 threads, three sizes
    python -m benchmarks.backends --int8          # and the INT8 weights `photo-anon models download` derived

Each backend runs the same model (the detector's any-size rewrite of the export) on the same input; rounds are
interleaved so that another load on the machine hits every backend alike, and each figure is the median of the
rounds, wall clock and CPU time (CPU time counts every thread, so it shows what a second thread costs). Each row
also says how far the backend's outputs are from cv2.dnn's (the detector decodes every backend's outputs alike, so
a backend is only a candidate when this is float noise) and what one forward over a batch of windows costs
against one forward per window.

INT8 is measured for speed and output distance only; ``scrfd[precision='int8']`` runs the same weights, and what
they cover is measured by the quality suite (``python -m benchmarks.compare_detectors``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from anonymizer.codec import decode_image
from benchmarks.compare_detectors import DEFAULT_DATA, ROOT, evenly_spaced
from benchmarks.datasets import load_annotations
from benchmarks.machine import stamp
from detectors.backends import BACKENDS, OnnxNet, Outputs
from detectors.models import model_path
from detectors.scrfd import INT8_MODEL, MODEL, STRIDES, any_size_model, input_blob

OUT = ROOT / "out" / "backends"
# (height, width): the close-up look, the fitted pass, and a full-resolution window of a phone photo.
SIZES = ((320, 320), (640, 640), (992, 1312))
# Windows of one full-resolution pass: a 12 MP photo is looked at in six.
BATCH = 6
# The lowest score the detector keeps a box at (its floor): what a backend's box differences matter for.
CANDIDATE = 0.1


def _backends(int8: bytes | None, threads: int) -> dict[str, OnnxNet]:
    """The detector's model on each backend (and INT8 on onnxruntime), each running on ``threads`` threads."""
    cv2.setNumThreads(threads)
    model = any_size_model(model_path(MODEL))
    nets = {backend: OnnxNet(model, backend) for backend in BACKENDS}
    if int8 is not None:
        nets["onnxruntime-int8"] = OnnxNet(int8, "onnxruntime")
    return nets


def _timed(forward: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    forward()
    return time.perf_counter() - wall, time.process_time() - cpu


def _distance(expected: Outputs, got: Outputs) -> tuple[float, float]:
    """How far a backend's outputs are from cv2.dnn's: the largest score difference, and the largest box-side
    difference in input pixels over the anchors cv2.dnn scores as a face candidate (``CANDIDATE``)."""
    scores, sides = 0.0, 0.0
    for stride in STRIDES:
        score = expected[f"score_{stride}"].ravel()
        scores = max(scores, float(np.abs(score - got[f"score_{stride}"].ravel()).max()))
        candidate = score >= CANDIDATE
        boxes = (expected[f"bbox_{stride}"].reshape(-1, 4) - got[f"bbox_{stride}"].reshape(-1, 4))[candidate]
        sides = max(sides, float(np.abs(boxes).max(initial=0.0)) * stride)
    return scores, sides


def measure(photo: np.ndarray, int8: bytes | None, threads: int, rounds: int) -> list[dict]:
    """Median wall and CPU milliseconds of one forward per backend and input size, single and batched."""
    nets = _backends(int8, threads)
    rows = []
    for height, width in SIZES:
        # A real photo's pixels, so that the score maps (and INT8's rounding of them) are a photo's.
        blob = input_blob(cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA))
        batch = np.repeat(blob, BATCH, axis=0)
        reference = nets["opencv"].run(blob)
        times: dict[str, list[tuple[float, float]]] = {}
        for _ in range(rounds):
            for name, net in nets.items():
                for label, given in ((name, blob), (f"{name} batch", batch)):
                    times.setdefault(label, []).append(_timed(lambda net=net, given=given: net.run(given)))
        for name, net in nets.items():
            scores, sides = _distance(reference, net.run(blob))
            single, batched = times[name], times[f"{name} batch"]
            rows.append(
                {
                    "backend": name,
                    "threads": threads,
                    "input": f"{width}x{height}",
                    "wall_ms": round(statistics.median(t[0] for t in single) * 1000, 1),
                    "cpu_ms": round(statistics.median(t[1] for t in single) * 1000, 1),
                    f"batch_of_{BATCH}_over_{BATCH}_calls": round(
                        statistics.median(t[1] for t in batched) / (BATCH * statistics.median(t[1] for t in single)),
                        2,
                    ),
                    "max_score_difference": round(scores, 6),
                    "max_box_difference_px": round(sides, 4),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with annotations.json")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--int8", action="store_true", help="also the INT8 weights (photo-anon models download)")
    args = parser.parse_args(argv)

    photo = decode_image(evenly_spaced(load_annotations(args.data), 1)[0].path.read_bytes()).bgr
    int8 = model_path(INT8_MODEL).read_bytes() if args.int8 else None
    rows = [row for threads in args.threads for row in measure(photo, int8, threads, args.rounds)]
    report = {"generated": stamp("python -m benchmarks.backends", argv), "onnxruntime": ort.__version__, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "backends.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
