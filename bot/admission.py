"""Admission control: price a job in estimated seconds, and admit a request only if it can be answered in time.

The same rules hold in both modes; the embedded bot keeps the ledger in memory (`LocalAdmission`), the distributed
front keeps it in Redis so that every front sees the whole cluster's backlog (`bot.distributed`).
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

# Admission estimates each image's CPU time from its pixel count along a cost curve: seconds at a few sizes, measured
# by every worker at start (CALIBRATION_TILES), joined by straight lines and extended past the largest with the last
# slope. A curve, not a rate per megapixel, because the detectors cap the resolution they look at, so a rate taken
# at 2 MP would price a 12 MP photo far too high and turn away users who could have been served. Every finished job
# then scales the whole curve by how much slower or faster the machine runs than at start (another process's load,
# photos costing more than the calibration photo).
# Until the workers have calibrated, this curve (megapixels, seconds) is assumed; erring high turns a late apology
# into an early "busy".
INITIAL_COST_CURVE = ((0.0, 0.5), (2.0, 1.0), (12.0, 3.0))
# A file's pixel count is unknown before it is downloaded: phone JPEGs carry 0.2-0.3 bytes per pixel.
INITIAL_BYTES_PER_PIXEL = 0.25
# Without any size to go by, an image is taken to be a 12 MP photo.
UNKNOWN_MEGAPIXELS = 12.0
# Weight of the newest measurement in the running means.
SMOOTHING = 0.3
# Admission plans with each estimate stretched by this much. The learned speed is a mean, so a plan filled up to the
# deadline misses it whenever the last jobs run slower than the mean; the overload benchmark
# (benchmarks/bench_bot_overload.py) shows the late apologies this headroom avoids.
ESTIMATE_HEADROOM = 1.25


class BusyError(Exception):
    """The request is refused now, so it gets an answer at once instead of a late one."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy, retry after {retry_after} s")
        self.retry_after = retry_after


class UnavailableError(Exception):
    """No work can be taken at all right now (no worker alive, or the queue's store unreachable)."""


class CostCurve:
    """Seconds per image by megapixels: straight lines between measured points, flat below the smallest, and the
    last slope past the largest."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        ordered = sorted(points)
        self.points = ordered
        self._megapixels = [mp for mp, _ in ordered]
        self._seconds = [seconds for _, seconds in ordered]

    def seconds(self, megapixels: float) -> float:
        sizes, times = self._megapixels, self._seconds
        if megapixels <= sizes[0] or len(sizes) == 1:
            return times[0]
        right = min(bisect.bisect_left(sizes, megapixels), len(sizes) - 1)
        slope = (times[right] - times[right - 1]) / (sizes[right] - sizes[right - 1])
        if megapixels > sizes[-1]:
            slope = max(0.0, slope)
        return times[right] + slope * (megapixels - sizes[right])


@dataclass(frozen=True)
class JobSize:
    """What is known of one job before it runs: its kind and its size from the message's metadata."""

    kind: str = "image"
    pixels: int | None = None
    size_bytes: int | None = None


class SpeedModel:
    """This machine's (or cluster's) speed: the cost curve, scaled by what finished jobs showed; thread-safe."""

    def __init__(self, curve: Sequence[tuple[float, float]] = INITIAL_COST_CURVE) -> None:
        self.curve = CostCurve(curve)
        self.slowdown = 1.0
        self._bytes_per_pixel = INITIAL_BYTES_PER_PIXEL
        self._lock = threading.Lock()

    def calibrated(self, curve: Sequence[tuple[float, float]]) -> None:
        with self._lock:
            self.curve = CostCurve(curve)

    def learn(self, input_bytes: int, pixels: int, seconds: float) -> None:
        """Account for one finished image: how compressed inputs are, how fast this machine runs now."""
        if pixels <= 0:
            return
        with self._lock:
            self._bytes_per_pixel += SMOOTHING * (input_bytes / pixels - self._bytes_per_pixel)
            self.slowdown += SMOOTHING * (seconds / self.curve.seconds(pixels / 1e6) - self.slowdown)

    def estimate_seconds(self, job: JobSize) -> float:
        """CPU seconds one job is expected to take. Image jobs are priced from their pixel count, else their file
        size; another kind of job (video: by frame count) adds its own rule here."""
        if job.kind != "image":
            raise ValueError(f"no estimator for jobs of kind {job.kind!r}")
        if job.pixels:
            megapixels = job.pixels / 1e6
        elif job.size_bytes:
            megapixels = job.size_bytes / self._bytes_per_pixel / 1e6
        else:
            megapixels = UNKNOWN_MEGAPIXELS
        return self.slowdown * self.curve.seconds(megapixels)


def refusal(
    *,
    backlog_seconds: float,
    work: float,
    capacity: float,
    now: float,
    deadline: float,
    reply_reserve: float,
    busy: bool,
) -> int | None:
    """The "try again in N s" for a request costing `work` seconds, or None if it fits before its deadline.

    `capacity` is how many jobs run at once (worker processes); `busy` says whether anything is admitted already (an
    idle bot always takes a request: refusing it would help nobody).
    """
    if busy and now + (backlog_seconds + work) * ESTIMATE_HEADROOM / capacity > deadline - reply_reserve:
        return retry_after(backlog_seconds, capacity)
    return None


def retry_after(backlog_seconds: float, capacity: float) -> int:
    return max(1, math.ceil(backlog_seconds / capacity))


class LocalAdmission:
    """The admission ledger of one process: requests admitted and not yet answered, per user and in all."""

    def __init__(self, capacity: int, *, queue_limit: int, per_user_limit: int, reply_reserve: float) -> None:
        self.capacity = capacity
        self.queue_limit = queue_limit
        self.per_user_limit = per_user_limit
        self.reply_reserve = reply_reserve
        self._per_user: Counter[int] = Counter()
        self._admitted_seconds = 0.0
        self._admitted_jobs = 0
        self._in_flight = 0

    def backlog_seconds(self) -> float:
        """How long the workers need for what has been admitted so far."""
        return self._admitted_seconds / self.capacity

    @property
    def admitted_jobs(self) -> int:
        return self._admitted_jobs

    @contextmanager
    def admit(self, user_id: int, estimates: list[float], deadline: float) -> Iterator[None]:
        """Hold a place for one request whose jobs cost `estimates` seconds, or raise BusyError."""
        work = sum(estimates)
        wait = retry_after(self._admitted_seconds, self.capacity)
        if self._per_user[user_id] >= self.per_user_limit:
            raise BusyError(wait)
        if self._admitted_jobs + len(estimates) > self.queue_limit:
            raise BusyError(wait)
        late = refusal(
            backlog_seconds=self._admitted_seconds,
            work=work,
            capacity=self.capacity,
            now=time.monotonic(),
            deadline=deadline,
            reply_reserve=self.reply_reserve,
            busy=self._in_flight > 0,
        )
        if late is not None:
            raise BusyError(late)
        self._per_user[user_id] += 1
        self._admitted_seconds += work
        self._admitted_jobs += len(estimates)
        self._in_flight += 1
        try:
            yield
        finally:
            self._per_user[user_id] -= 1
            if not self._per_user[user_id]:
                del self._per_user[user_id]
            self._admitted_seconds -= work
            self._admitted_jobs -= len(estimates)
            self._in_flight -= 1
            if not self._in_flight:  # no rounding residue left to make an idle bot look busy
                self._admitted_seconds = 0.0
