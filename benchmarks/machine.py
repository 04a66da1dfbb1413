"""What a report says about where its figures were measured: a figure without its machine and command is a rumour."""

from __future__ import annotations

import contextlib
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import cv2


def describe() -> str:
    """CPU, cores, memory, Python and OpenCV of this machine, in one line."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration), open("/proc/cpuinfo") as info:
        cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    memory = ""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        memory = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GB"
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}, Python {platform.python_version()}, OpenCV {cv2.__version__}, "
        f"{platform.system()} {platform.release()}"
    )


def stamp(program: str, argv: Sequence[str] | None = None) -> str:
    """The line a generated report starts with: when, on what, by which command (``program`` and its arguments)."""
    arguments = argv if argv is not None else sys.argv[1:]
    command = " ".join([program, *(shlex.quote(part) for part in arguments)])
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Generated {when} on {describe()} by `{command}`."
