"""What a job costs, in estimated CPU seconds, from what is known of it before it runs.

Admission estimates each image's CPU time from its pixel count along a cost curve: seconds at a few sizes, measured
by every worker process at start (`bot.pool.CALIBRATION_TILES`), joined by straight lines and extended past the
largest with the last slope. A curve, not a rate per megapixel, because the detectors cap the resolution they look
at, so a rate taken at 2 MP would price a 12 MP photo far too high and turn away users who could have been served.
Every finished job then scales the whole curve by how much slower or faster the machine runs than at start
(another process's load, photos costing more than the calibration photo).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from anonymizer.media import MediaInfo
from anonymizer.options import DETECT_SIDE, MediaKind, Result

# Until the workers have calibrated, this curve (megapixels, seconds) is assumed; erring high turns a late apology
# into an early "busy".
INITIAL_COST_CURVE = ((0.0, 0.5), (2.0, 1.0), (12.0, 3.0))
# A file's pixel count is unknown before it is downloaded: phone JPEGs carry 0.2-0.3 bytes per pixel.
INITIAL_BYTES_PER_PIXEL = 0.25
# Without any size to go by, an image is taken to be a 12 MP photo.
UNKNOWN_MEGAPIXELS = 12.0
# Weight of the newest measurement in the running means.
SMOOTHING = 0.3
# A second look (Options.strict(): more passes, two detectors) at a photo costs about this many first looks.
STRICT_COST = 2.5
# Painting the remembered faces again (the user's choice) skips the detector: decoding, painting and encoding are
# what is left of a first look (benchmarks/bench_bot_choose.py measures a render).
RERENDER_COST = 0.5
# Telegram's metadata gives a video's duration but not its frame rate: phones record at 30 fps.
ASSUMED_FRAME_RATE = 30.0
# A video file sent as a document comes with its byte size only: its length is guessed at this many bytes a second
# (a phone clip Telegram has compressed), its frames at this size.
ASSUMED_VIDEO_BYTES_PER_SECOND = 250_000
ASSUMED_VIDEO_PIXELS = 1280 * 720
# Seconds per pixel of every frame for decoding, painting and encoding a video, until finished videos have shown
# this machine's own figure (the detector's searches are priced along the cost curve instead); errs high.
INITIAL_VIDEO_SECONDS_PER_PIXEL = 35e-9


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
    """What is known of one job before it runs, from the message's metadata: its kind, its pixels (an image's, or
    one frame's), its file size and a video's or GIF's seconds; `strict` for a second look at a photo, `rerender`
    for a photo painted again on its remembered faces."""

    kind: MediaKind = MediaKind.IMAGE
    pixels: int | None = None
    size_bytes: int | None = None
    duration: float | None = None
    strict: bool = False
    rerender: bool = False


class SpeedModel:
    """This machine's (or cluster's) speed: the cost curve, scaled by what finished jobs showed; thread-safe."""

    def __init__(self, curve: Sequence[tuple[float, float]] = INITIAL_COST_CURVE) -> None:
        self.curve = CostCurve(curve)
        self.slowdown = 1.0
        # How much longer videos take than the cost curve and INITIAL_VIDEO_SECONDS_PER_PIXEL say.
        self.video_slowdown = 1.0
        self._bytes_per_pixel = INITIAL_BYTES_PER_PIXEL
        self._lock = threading.Lock()

    def calibrated(self, curve: Sequence[tuple[float, float]]) -> None:
        with self._lock:
            self.curve = CostCurve(curve)

    def learn(self, result: Result, input_bytes: int, seconds: float) -> None:
        """Account for one finished job: for an image, how compressed inputs are and how fast this machine runs
        now; for a GIF or video, how much slower than priced this machine runs them."""
        if result.kind != MediaKind.IMAGE:
            self._learn_media(result, seconds)
            return
        pixels = result.width * result.height
        if pixels <= 0:
            return
        with self._lock:
            self._bytes_per_pixel += SMOOTHING * (input_bytes / pixels - self._bytes_per_pixel)
            self.slowdown += SMOOTHING * (seconds / self.curve.seconds(pixels / 1e6) - self.slowdown)

    def learn_overrun(self, priced: float, ran_at_least: float) -> None:
        """Account for a job stopped at its deadline: it was priced at `priced` seconds (at the slowdown then) and
        ran longer than `ran_at_least`, so this machine is at least that much slower than the price said."""
        if priced <= 0:
            return
        with self._lock:
            ratio = ran_at_least / (priced / self.slowdown)
            if ratio > self.slowdown:
                self.slowdown += SMOOTHING * (ratio - self.slowdown)

    def _learn_media(self, result: Result, seconds: float) -> None:
        if result.frames <= 0 or result.duration <= 0:
            return
        priced = self._video_seconds(result.width * result.height, result.duration, result.frames / result.duration)
        with self._lock:
            self.video_slowdown += SMOOTHING * (seconds / priced - self.video_slowdown)

    def estimate_seconds(self, job: JobSize) -> float:
        """CPU seconds one job is expected to take. Image jobs are priced from their pixel count, else their file
        size; GIFs and videos by their frames (every pixel decoded, painted and encoded) and the detector's searches
        on the keyframes."""
        if job.kind != MediaKind.IMAGE:
            duration = job.duration or (job.size_bytes or 0) / ASSUMED_VIDEO_BYTES_PER_SECOND
            pixels = job.pixels or ASSUMED_VIDEO_PIXELS
            return self.video_slowdown * self._video_seconds(pixels, duration, ASSUMED_FRAME_RATE)
        if job.pixels:
            megapixels = job.pixels / 1e6
        elif job.size_bytes:
            megapixels = job.size_bytes / self._bytes_per_pixel / 1e6
        else:
            megapixels = UNKNOWN_MEGAPIXELS
        share = STRICT_COST if job.strict else RERENDER_COST if job.rerender else 1.0
        return self.slowdown * self.curve.seconds(megapixels) * share

    def _video_seconds(self, frame_pixels: int, duration: float, frame_rate: float) -> float:
        """Seconds for a video at this machine's calibrated speed: its searches, each on a frame shrunk to
        DETECT_SIDE (frames taken to be 16:9, as phones record), along the cost curve, and every pixel of every
        frame at the per-pixel rate."""
        frames = max(1, round(duration * frame_rate))
        longest = math.sqrt(frame_pixels * 16 / 9)
        searched = frame_pixels * min(1.0, DETECT_SIDE / longest) ** 2 if longest else 0
        searches = MediaInfo(MediaKind.VIDEO, "", 0, 0, frames, duration, frame_rate=frame_rate).searches()
        return searches * self.curve.seconds(searched / 1e6) + frames * frame_pixels * INITIAL_VIDEO_SECONDS_PER_PIXEL
