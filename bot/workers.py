"""CPU work off the event loop: worker processes that each load their own detector once, and admission control.

Why not `concurrent.futures.ProcessPoolExecutor`: when one of its workers dies, every job in the pool fails with
BrokenProcessPool, and a running job cannot be stopped at its deadline. Here each worker process is driven by its
own thread over a pipe, so a crash (or a kill at the deadline) fails only the job that worker was running; the
thread starts a fresh worker and the other jobs go on.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import ctypes
import logging
import math
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from anonymizer import errors
from anonymizer.errors import AnonymizerError
from anonymizer.options import Options, Result

logger = logging.getLogger(__name__)

# Admission estimates each image's CPU time from its pixel count along a cost curve: seconds at a few sizes, measured
# by every worker at start (CALIBRATION_TILES), joined by straight lines and extended past the largest with the last
# slope. A curve, not a rate per megapixel, because the detectors cap the resolution they look at: on the 2-core
# machine with the default detectors (one thread, 2026-11-27 15:33 UTC), a worker took 0.04 s for 0.26 MP, 0.38 s
# for 2.1 MP, 0.83 s for 6.3 MP, 1.03 s for 12.6 MP and 1.52 s for 25 MP, so a rate taken at 2 MP would put a 12 MP
# photo at 2.3 s and turn away users who could have been served. Every finished job then scales the whole curve by
# how much slower or faster the machine runs than at start (another process's load, photos costing more than the
# calibration photo).
# Until the workers have calibrated, this curve (megapixels, seconds) is assumed; erring high turns a late apology
# into an early "busy".
INITIAL_COST_CURVE = ((0.0, 0.5), (2.0, 1.0), (12.0, 3.0))
# A file's pixel count is unknown before it is downloaded: phone JPEGs carry 0.2-0.3 bytes per pixel.
INITIAL_BYTES_PER_PIXEL = 0.25
# Without any size to go by, an image is taken to be a 12 MP photo.
UNKNOWN_MEGAPIXELS = 12.0
# Weight of the newest measurement in the running means.
SMOOTHING = 0.3
# At start, every worker times scikit-image's astronaut (512 x 512, a real face) and tilings of it up to a phone
# photo's 12 MP, all workers at once as under load, so admission knows this machine's speed with the configured
# detectors before the first user arrives. Real faces matter: on a photo without any, the detectors run extra
# passes, which would make every estimate too high.
CALIBRATION_TILES = ((1, 1), (2, 4), (6, 8))
# Admission plans with each estimate stretched by this much. The learned speed is a mean, so a plan filled up to the
# deadline misses it whenever the last jobs run slower than the mean: in a 50-user storm of 12 MP photos on the
# 2-core machine, jobs took 1.13-1.42 s against a learned 1.2 s, and the last photo admitted in a burst got a late
# apology in 1-2 of 300 updates (benchmarks/bench_bot_overload.py).
ESTIMATE_HEADROOM = 1.25
# How long a worker may take to start and load its models.
WORKER_START_TIMEOUT = 120.0


class WorkerCrashedError(Exception):
    """The worker process died while it ran this job (a crash in native code, or killed at the deadline)."""


class WorkerFailedError(Exception):
    """The job raised an unexpected error inside the worker; only its type name crosses back, never data."""


class WorkerStartError(Exception):
    """A worker process could not start or load its models."""


class BusyError(Exception):
    """The request is refused now, so it gets an answer at once instead of a late one."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy, retry after {retry_after} s")
        self.retry_after = retry_after


class DeadlineExceededError(Exception):
    """The job did not finish within the request's budget; it was stopped and its result will never be used."""


def _calibrate(options: Options) -> list[tuple[float, float]]:
    """(megapixels, seconds) this worker takes for each CALIBRATION_TILES image, through the whole pipeline."""
    import numpy as np
    from skimage import data as samples

    import anonymizer

    astronaut = np.ascontiguousarray(samples.astronaut()[:, :, ::-1])  # RGB to the pipeline's BGR
    curve = []
    for tiles in CALIBRATION_TILES:
        image = np.tile(astronaut, (*tiles, 1))
        data = anonymizer.encode_image(image, "JPEG")
        started = time.perf_counter()
        anonymizer.anonymize(data, options)
        curve.append((image.shape[0] * image.shape[1] / 1e6, time.perf_counter() - started))
    return curve


def _return_freed_memory() -> None:
    """Hand the memory a finished job freed back to the system. glibc keeps freed blocks for reuse: a worker held
    254 MB after timing a 12.6 MP photo and 158 MB after trimming, so an idle bot would hold every worker's largest
    job. Elsewhere (no glibc) this does nothing."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _worker_main(
    conn: Connection,
    warm_up_options: Options,
    threads: int,
    initializer: Callable[[], object] | None,
    calibrate: bool,
) -> None:
    """A worker process: load the models once (and time the calibration photos if asked), then anonymize one job at
    a time until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the bot, which lets the jobs in flight finish.
    import anonymizer

    try:
        if initializer is not None:
            initializer()
        anonymizer.warm_up(warm_up_options, threads=threads)
        calibration = _calibrate(warm_up_options) if calibrate else None
    except Exception as error:  # reported to the parent as a start failure
        conn.send(("start_failed", f"{type(error).__name__}: {error}"))
        return
    _return_freed_memory()
    conn.send(("ready", calibration))
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        data, options = job
        started = time.perf_counter()
        try:
            result = anonymizer.anonymize(data, options)
        except AnonymizerError as error:
            conn.send(("refused", (type(error).__name__, str(error)), time.perf_counter() - started))
        except Exception as error:  # any other failure is reported; the worker lives on
            conn.send(("failed", type(error).__name__, time.perf_counter() - started))
        else:
            conn.send(("done", result, time.perf_counter() - started))
        _return_freed_memory()


def _refusal(type_name: str, message: str) -> AnonymizerError:
    """Rebuild the pipeline's refusal in this process from its class name and user-facing message."""
    error_type = getattr(errors, type_name, AnonymizerError)
    if not (isinstance(error_type, type) and issubclass(error_type, AnonymizerError)):
        error_type = AnonymizerError
    try:
        return error_type(message)
    except TypeError:
        return AnonymizerError(message)


@dataclass
class _Job:
    data: bytes
    options: Options
    future: concurrent.futures.Future[Result]


class CostCurve:
    """Seconds per image by megapixels: straight lines between measured points, flat below the smallest, and the
    last slope past the largest."""

    def __init__(self, points: Sequence[tuple[float, float]]) -> None:
        ordered = sorted(points)
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


class _Worker:
    """One worker process and the thread that feeds it jobs from the pool's queue."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self._pool = pool
        self._index = index
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._current: _Job | None = None
        self._ready = False
        self.calibration: list[tuple[float, float]] | None = None
        self._thread = threading.Thread(target=self._run, name=f"anonymizer-worker-{index}", daemon=True)

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def start_process(self, calibrate: bool = False) -> None:
        """Start the worker process (models load in it) without waiting for it to be ready."""
        parent, child = self._pool.context.Pipe()
        process = self._pool.context.Process(
            target=_worker_main,
            args=(child, self._pool.warm_up_options, self._pool.threads_per_worker, self._pool.initializer, calibrate),
            name=f"anonymizer-{self._index}",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn, self._ready = process, parent, False

    def wait_ready(self, timeout: float = WORKER_START_TIMEOUT) -> None:
        """Block until the worker has loaded its models; raise WorkerStartError if it cannot."""
        assert self._conn is not None
        try:
            if not self._conn.poll(timeout):
                raise WorkerStartError(f"worker {self._index} did not start within {timeout:.0f} s")
            status, detail = self._conn.recv()
        except (EOFError, OSError) as error:
            self._discard_process()
            raise WorkerStartError(f"worker {self._index} died while starting") from error
        if status != "ready":
            self._discard_process()
            raise WorkerStartError(f"worker {self._index} could not load its models: {detail}")
        self._ready = True
        self.calibration = detail

    def start_thread(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def pid_running(self, future: concurrent.futures.Future[Any]) -> int | None:
        with self._lock:
            current, process = self._current, self._process
            if current is not None and current.future is future and process is not None and self._ready:
                return process.pid
        return None

    def abandon(self, future: concurrent.futures.Future[Any]) -> bool:
        """Kill the worker process if it is running this job; its thread then starts a fresh one."""
        with self._lock:
            if self._current is None or self._current.future is not future or self._process is None:
                return False
            self._process.kill()
            return True

    def _run(self) -> None:
        while True:
            job = self._pool.queue.get()
            if job is None:
                self._stop_process()
                return
            if not job.future.set_running_or_notify_cancel():
                self._pool.job_finished(job, None, None)
                continue
            self._execute(job)

    def _execute(self, job: _Job) -> None:
        seconds: float | None = None
        result: Result | None = None
        with self._lock:
            self._current = job
        try:
            if self._process is None:
                self.start_process()
            if not self._ready:
                self.wait_ready()
            assert self._conn is not None
            self._conn.send((job.data, job.options))
            status, payload, seconds = self._conn.recv()
        except WorkerStartError as error:
            logger.error("%s", error)
            job.future.set_exception(error)
        except (EOFError, OSError):
            self._discard_process()
            logger.warning("worker %d died during a job; starting a new one", self._index)
            job.future.set_exception(WorkerCrashedError("the worker process died while processing the image"))
            try:
                self.start_process()  # loads its models while this thread waits for the next job
            except OSError:
                logger.exception("worker %d could not be restarted; retrying with the next job", self._index)
        else:
            if status == "done":
                result = payload
                job.future.set_result(payload)
            elif status == "refused":
                job.future.set_exception(_refusal(*payload))
            else:
                job.future.set_exception(WorkerFailedError(payload))
        finally:
            with self._lock:
                self._current = None
            self._pool.job_finished(job, seconds, result)

    def _discard_process(self) -> None:
        with self._lock:
            process, conn = self._process, self._conn
            self._process, self._conn = None, None
        if conn is not None:
            conn.close()
        if process is not None:
            process.kill()
            process.join(5)

    def _stop_process(self) -> None:
        if self._conn is not None:
            with suppress(OSError):
                self._conn.send(None)
        if self._process is not None:
            self._process.join(10)
        self._discard_process()


class WorkerPool:
    """A fixed number of worker processes with one FIFO queue of jobs; safe to use from any thread or event loop."""

    def __init__(
        self,
        size: int,
        warm_up_options: Options,
        start_method: str = "spawn",
        initializer: Callable[[], object] | None = None,
    ) -> None:
        """`initializer`, a module-level function, runs first in every worker process (the tests audit with it)."""
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self.warm_up_options = warm_up_options
        # The workers already share the cores: each one spreading over all of them only adds contention.
        self.threads_per_worker = max(1, (os.cpu_count() or 1) // size)
        self.initializer = initializer
        self.context = multiprocessing.get_context(start_method)
        self.queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._workers = [_Worker(self, index) for index in range(size)]
        self._outstanding = 0
        self._cost_curve = CostCurve(INITIAL_COST_CURVE)
        self._slowdown = 1.0
        self._bytes_per_pixel = INITIAL_BYTES_PER_PIXEL
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> WorkerPool:
        """Start every worker and wait until all have loaded their models, so the first user does not wait; take
        the slowest worker's time at each size as this machine's cost curve."""
        for worker in self._workers:
            worker.start_process(calibrate=True)
        for worker in self._workers:
            worker.wait_ready()
        calibrations = [worker.calibration for worker in self._workers if worker.calibration is not None]
        if calibrations:
            by_size = zip(*calibrations, strict=True)
            slowest = [(points[0][0], max(seconds for _, seconds in points)) for points in by_size]
            self._cost_curve = CostCurve(slowest)
            logger.info("worker speed: %s", ", ".join(f"{seconds:.2f} s for {mp:.1f} MP" for mp, seconds in slowest))
        for worker in self._workers:
            worker.start_thread()
        return self

    def submit(self, data: bytes, options: Options) -> concurrent.futures.Future[Result]:
        """Queue one image; the future resolves to a Result or raises AnonymizerError or a worker error."""
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            self._outstanding += 1
        self.queue.put(_Job(data, options, future))
        return future

    def abandon(self, future: concurrent.futures.Future[Any]) -> None:
        """Give up on a job: drop it if it is still queued, stop its worker if it is running."""
        if future.cancel():
            return
        for worker in self._workers:
            if worker.abandon(future):
                return

    def job_finished(self, job: _Job, seconds: float | None, result: Result | None) -> None:
        """Account for a finished job and learn this machine's speed and the inputs' compression from it."""
        with self._lock:
            self._outstanding -= 1
            if result is None or seconds is None or not result.width * result.height:
                return
            pixels = result.width * result.height
            self._bytes_per_pixel += SMOOTHING * (len(job.data) / pixels - self._bytes_per_pixel)
            self._slowdown += SMOOTHING * (seconds / self._cost_curve.seconds(pixels / 1e6) - self._slowdown)

    @property
    def outstanding(self) -> int:
        """Jobs queued or running, including abandoned jobs whose worker has not been freed yet."""
        return self._outstanding

    def estimate_seconds(self, pixels: int | None, size_bytes: int | None) -> float:
        """CPU seconds one image is expected to take, from its pixel count or else its file size."""
        if pixels:
            megapixels = pixels / 1e6
        elif size_bytes:
            megapixels = size_bytes / self._bytes_per_pixel / 1e6
        else:
            megapixels = UNKNOWN_MEGAPIXELS
        return self._slowdown * self._cost_curve.seconds(megapixels)

    def worker_pids(self) -> list[int]:
        """The live worker processes (tests kill one to prove a crash costs only its own job)."""
        return [pid for pid in (worker.pid for worker in self._workers) if pid is not None]

    def pid_running(self, future: concurrent.futures.Future[Any]) -> int | None:
        """The worker process running this job, if one is (tests kill it to simulate a crash in native code)."""
        for worker in self._workers:
            if (pid := worker.pid_running(future)) is not None:
                return pid
        return None

    def close(self, wait: bool = True) -> None:
        """Stop accepting jobs; the jobs already queued are finished first, then the workers exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in self._workers:
            self.queue.put(None)
        if wait:
            for worker in self._workers:
                worker.join()


class ImageService:
    """Admission control and deadlines in front of the pool, for one event loop.

    A request (a photo, a file or an album) is admitted only if it can be answered in time: the CPU time of the
    requests already admitted plus its own, spread over the workers and stretched by ESTIMATE_HEADROOM, must fit
    the budget it has left; a user may have only `per_user_limit` requests in flight; at most `queue_limit` images
    are admitted at once. Otherwise the user is told at once when to try again.
    """

    def __init__(self, pool: WorkerPool, *, queue_limit: int, per_user_limit: int, reply_reserve: float = 1.5) -> None:
        self.pool = pool
        self.queue_limit = queue_limit
        self.per_user_limit = per_user_limit
        self.reply_reserve = reply_reserve
        self._per_user: Counter[int] = Counter()
        self._admitted_seconds = 0.0
        self._admitted_images = 0
        self._in_flight = 0

    def estimate_seconds(self, pixels: int | None, size_bytes: int | None) -> float:
        return self.pool.estimate_seconds(pixels, size_bytes)

    def backlog_seconds(self) -> float:
        """How long the workers need for what has been admitted so far."""
        return self._admitted_seconds / self.pool.size

    @contextmanager
    def admit(self, user_id: int, estimates: list[float], deadline: float) -> Iterator[None]:
        """Hold a place for one request whose images cost `estimates` seconds, or raise BusyError."""
        retry_after = max(1, math.ceil(self.backlog_seconds()))
        work = sum(estimates)
        if self._per_user[user_id] >= self.per_user_limit:
            raise BusyError(retry_after)
        if self._admitted_images + len(estimates) > self.queue_limit:
            raise BusyError(retry_after)
        finish = time.monotonic() + (self._admitted_seconds + work) * ESTIMATE_HEADROOM / self.pool.size
        if self._in_flight and finish > deadline - self.reply_reserve:
            raise BusyError(retry_after)
        self._per_user[user_id] += 1
        self._admitted_seconds += work
        self._admitted_images += len(estimates)
        self._in_flight += 1
        try:
            yield
        finally:
            self._per_user[user_id] -= 1
            if not self._per_user[user_id]:
                del self._per_user[user_id]
            self._admitted_seconds -= work
            self._admitted_images -= len(estimates)
            self._in_flight -= 1
            if not self._in_flight:  # no rounding residue left to make an idle bot look busy
                self._admitted_seconds = 0.0

    async def anonymize(self, images: list[bytes], options: Options, deadline: float) -> list[Result | Exception]:
        """Anonymize the images in the pool, in order; each entry is a Result or the error for that image.

        Raises DeadlineExceededError when the budget runs out; the unfinished jobs are then dropped from the queue or
        their workers stopped, so no result can arrive later.
        """
        futures = [self.pool.submit(data, options) for data in images]
        waiting = asyncio.gather(*(asyncio.wrap_future(future) for future in futures), return_exceptions=True)
        try:
            return await asyncio.wait_for(waiting, timeout=max(0.0, deadline - self.reply_reserve - time.monotonic()))
        except TimeoutError:
            for future in futures:
                self.pool.abandon(future)
            raise DeadlineExceededError from None
        except asyncio.CancelledError:
            for future in futures:
                self.pool.abandon(future)
            raise
