"""Admission control: price a job in estimated seconds, and admit a request only if it can be answered in time.

The same rules hold in both modes; the embedded bot keeps the ledger in memory (`LocalAdmission`), the distributed
front keeps it in Redis so that every front sees the whole cluster's backlog (`bot.distributed`).

Two lanes share the worker processes. Photos (and image files, albums, second looks) must be answered within
their budget of seconds; videos, GIFs and video notes take minutes and have a budget of their own. A video holds
one worker process from its start to its end, so it would make every photo behind it late: at most
`video_capacity` processes run videos, and while videos are admitted the photo lane plans with that many
processes fewer. A waiting video starts only when a video slot is free and the photos already admitted still fit
their deadlines on the processes left; the photos admitted meanwhile are planned without the process it will take,
so it starts within about one photo budget however many photos keep coming.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from anonymizer.media import MediaInfo
from anonymizer.options import DETECT_SIDE, Result

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
# A second look (Options.strict(): more passes, two detectors) at a photo costs about this many first looks.
STRICT_COST = 2.5
# Telegram's metadata gives a video's duration but not its frame rate: phones record at 30 fps.
ASSUMED_FRAME_RATE = 30.0
# A video file sent as a document comes with its byte size only: its length is guessed at this many bytes a second
# (a phone clip Telegram has compressed), its frames at this size.
ASSUMED_VIDEO_BYTES_PER_SECOND = 250_000
ASSUMED_VIDEO_PIXELS = 1280 * 720
# Seconds per pixel of every frame for decoding, painting and encoding a video, until finished videos have shown
# this machine's own figure (the detector's searches are priced along the cost curve instead); errs high.
INITIAL_VIDEO_SECONDS_PER_PIXEL = 35e-9

# The two lanes of work (see the module's docstring) and the kinds of job in each.
PHOTOS, VIDEOS = "photos", "videos"
IMAGE, ANIMATION, VIDEO = "image", "animation", "video"


def lane_of(kind: str) -> str:
    """Images go in the photo lane; GIFs, videos and video notes in the video lane."""
    return PHOTOS if kind == IMAGE else VIDEOS


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
    """What is known of one job before it runs, from the message's metadata: its kind ("image", "animation",
    "video"), its pixels (an image's, or one frame's), its file size and a video's or GIF's seconds; `strict` for a
    second look at a photo."""

    kind: str = IMAGE
    pixels: int | None = None
    size_bytes: int | None = None
    duration: float | None = None
    strict: bool = False


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

    def learn(self, input_bytes: int, pixels: int, seconds: float) -> None:
        """Account for one finished image: how compressed inputs are, how fast this machine runs now."""
        if pixels <= 0:
            return
        with self._lock:
            self._bytes_per_pixel += SMOOTHING * (input_bytes / pixels - self._bytes_per_pixel)
            self.slowdown += SMOOTHING * (seconds / self.curve.seconds(pixels / 1e6) - self.slowdown)

    def learn_media(self, result: Result, seconds: float) -> None:
        """Account for one finished GIF or video: how much slower than priced this machine runs them."""
        if result.frames <= 0 or result.duration <= 0:
            return
        priced = self._video_seconds(result.width * result.height, result.duration, result.frames / result.duration)
        with self._lock:
            self.video_slowdown += SMOOTHING * (seconds / priced - self.video_slowdown)

    def estimate_seconds(self, job: JobSize) -> float:
        """CPU seconds one job is expected to take. Image jobs are priced from their pixel count, else their file
        size; GIFs and videos by their frames (every pixel decoded, painted and encoded) and the detector's searches
        on the keyframes."""
        if job.kind in (ANIMATION, VIDEO):
            duration = job.duration or (job.size_bytes or 0) / ASSUMED_VIDEO_BYTES_PER_SECOND
            pixels = job.pixels or ASSUMED_VIDEO_PIXELS
            return self.video_slowdown * self._video_seconds(pixels, duration, ASSUMED_FRAME_RATE)
        if job.kind != IMAGE:
            raise ValueError(f"no estimator for jobs of kind {job.kind!r}")
        if job.pixels:
            megapixels = job.pixels / 1e6
        elif job.size_bytes:
            megapixels = job.size_bytes / self._bytes_per_pixel / 1e6
        else:
            megapixels = UNKNOWN_MEGAPIXELS
        return self.slowdown * self.curve.seconds(megapixels) * (STRICT_COST if job.strict else 1.0)

    def _video_seconds(self, frame_pixels: int, duration: float, frame_rate: float) -> float:
        """Seconds for a video at this machine's calibrated speed: its searches, each on a frame shrunk to
        DETECT_SIDE (frames taken to be 16:9, as phones record), along the cost curve, and every pixel of every
        frame at the per-pixel rate."""
        frames = max(1, round(duration * frame_rate))
        longest = math.sqrt(frame_pixels * 16 / 9)
        searched = frame_pixels * min(1.0, DETECT_SIDE / longest) ** 2 if longest else 0
        searches = MediaInfo(VIDEO, "", 0, 0, frames, duration, frame_rate=frame_rate).searches()
        return searches * self.curve.seconds(searched / 1e6) + frames * frame_pixels * INITIAL_VIDEO_SECONDS_PER_PIXEL


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


@dataclass(eq=False)
class Ticket:
    """One admitted request: what it costs, until when, in which lane; a video's `started` once it holds a worker
    process."""

    user_id: int
    work: float
    jobs: int
    deadline: float
    lane: str = PHOTOS
    started: bool = False
    order: int = field(default_factory=itertools.count().__next__)


def video_may_start(
    *,
    now: float,
    capacity: float,
    video_capacity: int,
    videos_running: int,
    photo_backlog: float,
    earliest_photo_deadline: float | None,
    reply_reserve: float,
) -> bool:
    """Whether the next waiting video may take a worker process now: a video slot is free and the photos admitted
    still fit their deadlines (the earliest, for all of their work: erring early) on the processes left."""
    if videos_running >= video_capacity:
        return False
    if earliest_photo_deadline is None:
        return True
    left = capacity - videos_running - 1
    if left <= 0:
        return False
    return now + photo_backlog * ESTIMATE_HEADROOM / left <= earliest_photo_deadline - reply_reserve


class LocalAdmission:
    """The admission ledger of one process: requests admitted and not yet answered, per user, per lane and in all."""

    def __init__(
        self,
        capacity: int,
        *,
        queue_limit: int,
        per_user_limit: int,
        reply_reserve: float,
        video_capacity: int = 1,
        video_queue_limit: int = 4,
    ) -> None:
        self.capacity = capacity
        self.queue_limit = queue_limit
        self.per_user_limit = per_user_limit
        self.reply_reserve = reply_reserve
        self.video_capacity = max(1, min(video_capacity, capacity))
        self.video_queue_limit = video_queue_limit
        self._tickets: list[Ticket] = []

    def _lane(self, lane: str) -> list[Ticket]:
        return [ticket for ticket in self._tickets if ticket.lane == lane]

    def photo_capacity(self) -> int:
        """Processes the photo lane plans with: the videos admitted take theirs (up to the video slots)."""
        return self.capacity - min(len(self._lane(VIDEOS)), self.video_capacity)

    def backlog_seconds(self) -> float:
        """How long the photo lane's processes need for what has been admitted to it so far."""
        return sum(ticket.work for ticket in self._lane(PHOTOS)) / max(1, self.photo_capacity())

    @property
    def admitted_jobs(self) -> int:
        return sum(ticket.jobs for ticket in self._tickets)

    @contextmanager
    def admit(self, user_id: int, estimates: list[float], deadline: float, lane: str = PHOTOS) -> Iterator[Ticket]:
        """Hold a place for one request whose jobs cost `estimates` seconds in `lane`, or raise BusyError."""
        work = sum(estimates)
        same_lane = self._lane(lane)
        backlog = sum(ticket.work for ticket in same_lane)
        if lane == PHOTOS:
            capacity = self.photo_capacity()
            full = sum(ticket.jobs for ticket in same_lane) + len(estimates) > self.queue_limit
        else:
            capacity = self.video_capacity
            full = len(same_lane) >= self.video_queue_limit
        wait = retry_after(backlog, max(1, capacity))
        if sum(ticket.user_id == user_id for ticket in self._tickets) >= self.per_user_limit or full:
            raise BusyError(wait)
        if capacity <= 0:  # one worker process, holding a video: photos wait for it
            raise BusyError(retry_after(sum(ticket.work for ticket in self._lane(VIDEOS)), 1))
        late = refusal(
            backlog_seconds=backlog,
            work=work,
            capacity=capacity,
            now=time.monotonic(),
            deadline=deadline,
            reply_reserve=self.reply_reserve,
            busy=bool(same_lane),
        )
        if late is not None:
            raise BusyError(late)
        ticket = Ticket(user_id, work, len(estimates), deadline, lane)
        self._tickets.append(ticket)
        try:
            yield ticket
        finally:
            self._tickets.remove(ticket)

    def may_start(self, ticket: Ticket) -> bool:
        """True once this video may take a worker process (and from then on); videos start in the order admitted."""
        if ticket.started or ticket.lane != VIDEOS:
            return True
        waiting = [other for other in self._lane(VIDEOS) if not other.started]
        if not waiting or min(waiting, key=lambda other: other.order) is not ticket:
            return False
        photos = self._lane(PHOTOS)
        ticket.started = video_may_start(
            now=time.monotonic(),
            capacity=self.capacity,
            video_capacity=self.video_capacity,
            videos_running=sum(other.started for other in self._lane(VIDEOS)),
            photo_backlog=sum(other.work for other in photos),
            earliest_photo_deadline=min((other.deadline for other in photos), default=None),
            reply_reserve=self.reply_reserve,
        )
        return ticket.started
