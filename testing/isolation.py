"""Hostile inputs run in a fresh interpreter, so that a native crash, a hang or a memory blow-up is seen for what it is
and attributed to the input that caused it, with each input's outcome, time and peak memory."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from dataclasses import dataclass

from testing.paths import ROOT

# Each case is announced before it runs, so a process that dies or hangs names the input it died on. Peak memory is
# the kernel's high-water mark of this process (VmHWM): ru_maxrss would carry over the forking test runner's peak
# across exec. Past the warm-up, the address space may be capped at what the process has plus an allowance: a
# safety net that stops a runaway case before the machine's memory runs out. It must be generous (decoder threads
# reserve address space by the hundred MB that they never touch), and it is no measure: an allocation it refuses
# looks like any other failure, so the resident peak is what a ceiling is checked against.
_CHILD = r"""
import json, pickle, re, resource, sys, time
import cv2, numpy as np
import anonymizer
from anonymizer.errors import AnonymizerError
from anonymizer.options import Options

def status_mb(field):
    with open("/proc/self/status") as status:
        return int(re.search(field + r":\s+(\d+) kB", status.read()).group(1)) / 1024

options = Options(**json.loads(sys.argv[1]))
address_space_mb = float(sys.argv[2])
run = getattr(anonymizer, sys.argv[3])
cases = pickle.load(sys.stdin.buffer)
run(cv2.imencode(".png", np.full((64, 64, 3), 90, np.uint8))[1].tobytes(), options)
baseline = status_mb("VmHWM")
if address_space_mb:
    limit = int((status_mb("VmSize") + address_space_mb) * 2**20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
for name, data in cases:
    print(json.dumps({"start": name}), flush=True)
    began = time.perf_counter()
    try:
        run(data, options)
        outcome, message = "ok", ""
    except AnonymizerError as error:
        outcome, message = type(error).__name__, str(error)
    except Exception as error:
        outcome, message = "unexpected " + type(error).__name__, str(error)
    seconds = time.perf_counter() - began
    line = {"name": name, "outcome": outcome, "message": message, "seconds": seconds}
    print(json.dumps(line | {"growth_mb": status_mb("VmHWM") - baseline}), flush=True)
print(json.dumps({"peak_mb": status_mb("VmHWM")}), flush=True)
"""


# What a message shown to a user must not contain: byte dumps, identifiers, paths, library internals.
INTERNALS = ("\\x", "b'", 'b"', "0x", "_", ".py", "<", "Traceback", "cv2", "PIL", "Plugin", "libpng", "libjpeg", "av.")


def user_facing(message: str) -> bool:
    """Whether a refusal reads as a sentence for users: capitalised, ended, and free of internals."""
    return bool(message) and message[0].isupper() and message.endswith(".") and not any(i in message for i in INTERNALS)


@dataclass(frozen=True)
class Isolated:
    """Per case: its outcome ("ok", an ``AnonymizerError`` class name or "unexpected ..."), message, seconds and
    the growth of the process's peak memory over its warmed-up size; and the process's own peak."""

    outcomes: dict[str, dict]
    peak_mb: float


def run_isolated(
    cases: list[tuple[str, bytes]],
    options: dict[str, object],
    timeout: float,
    address_space_mb: float = 0,
    call: str = "anonymize_media",
) -> Isolated:
    """Anonymize the cases one after another in a new interpreter with ``Options(**options)``, through
    ``anonymizer.<call>`` (``anonymize`` for still photos only).

    ``address_space_mb`` (0: none) caps the address space the cases may add to the warmed-up process. Fails naming
    the case when the process dies (a native crash, or a runaway case stopped) or runs past ``timeout``.
    """
    try:
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, json.dumps(options), str(address_space_mb), call],
            input=pickle.dumps(cases),
            capture_output=True,
            cwd=ROOT,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        raise AssertionError(f"still running after {timeout} s on {_last_started(expired.stdout)}") from None
    if child.returncode != 0:
        stderr = child.stderr.decode(errors="replace")[-2000:]
        raise AssertionError(f"the process died (exit {child.returncode}) on {_last_started(child.stdout)}: {stderr}")
    lines = [json.loads(line) for line in child.stdout.decode().splitlines()]
    outcomes = {line["name"]: line for line in lines if "name" in line}
    return Isolated(outcomes, lines[-1]["peak_mb"])


def _last_started(stdout: bytes | None) -> str:
    started = [json.loads(line) for line in (stdout or b"").decode().splitlines() if line.startswith('{"start"')]
    return started[-1]["start"] if started else "its start-up"
