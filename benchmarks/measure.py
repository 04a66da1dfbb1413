"""Measures the benchmarks share: percentiles and spreads of latencies, and the peak memory of a fresh process.

The peak is the kernel's high-water mark of resident memory (VmHWM in /proc, so Linux only). ``ru_maxrss`` would
not do: Linux carries it over exec from the forked pytest process, which already holds the large test inputs.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the peak RSS from /proc")

_MEASURE_PEAK = """
import json, sys
from anonymizer import anonymize_media, warm_up

def peak_kb():
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])

warm_up()
loaded = peak_kb()
result = anonymize_media(sys.stdin.buffer.read())
print(json.dumps({"loaded_kb": loaded, "peak_kb": peak_kb(), "faces": len(result.detections), "frames": result.frames,
                  "output": len(result.data), "seconds": result.timings["total"]}))
"""


def fresh_process_peak(data: bytes, timeout: float) -> dict[str, float]:
    """Anonymize ``data`` in a fresh process with the default options, as a bot worker does.

    Returns its peak resident memory (``peak_kb``), the peak once the models were loaded (``loaded_kb``), the faces
    found (a still image), the frames, the output's bytes and the pipeline's seconds.
    """
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE_PEAK], input=data, capture_output=True, check=True, timeout=timeout
    )
    return json.loads(completed.stdout)


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` from 0 to 1) of ``values``: always one of the measured values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def spread(name: str, values: list[float]) -> dict[str, float]:
    """The median, p95 and slowest of ``values`` as ``{name}_p50_s`` and so on (nothing when there are none)."""
    if not values:
        return {}
    return {
        f"{name}_p50_s": round(statistics.median(values), 2),
        f"{name}_p95_s": round(percentile(values, 0.95), 2),
        f"{name}_max_s": round(max(values), 2),
    }
