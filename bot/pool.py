"""CPU work off the event loop: a pebble process pool whose worker processes load the detectors once.

pebble, not `concurrent.futures.ProcessPoolExecutor`: when one of the latter's workers dies every job in the pool
fails with BrokenProcessPool, and a running job cannot be stopped. pebble stops a job at its timeout or when its
future is cancelled (killing that worker and starting a fresh one), fails only the job of a worker that died, and
recycles workers after a number of jobs. The same pool runs the jobs of the embedded bot and of a cluster's worker
machines.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import itertools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from contextlib import suppress
from typing import Any

import pebble

from anonymizer.errors import AnonymizerError
from anonymizer.options import MediaKind, Options, Result
from bot.jobs import (
    DeadlineExceededError,
    Job,
    Outcome,
    Progress,
    WorkerCrashedError,
    WorkerFailedError,
    WorkerStartError,
)
from bot.pricing import SpeedModel
from bot.settings import PipelineSettings

logger = logging.getLogger(__name__)

# At start, every worker times scikit-image's astronaut (512 x 512, a real face) and tilings of it up to a phone
# photo's 12 MP, all workers at once as under load, so admission knows this machine's speed with the configured
# detectors before the first user arrives. Real faces matter: on a photo without any, the detectors run extra
# passes, which would make every estimate too high.
CALIBRATION_TILES = ((1, 1), (2, 4), (6, 8))
# Each size is timed this many times and the fastest kept: the first run at a new size pays once for allocating its
# buffers and the network's layers for its input shape, which a serving worker has long paid, and a run slowed by a
# passing stall would make admission turn away users it could serve.
CALIBRATION_RUNS = 2
WORKER_START_TIMEOUT = 120.0  # to start, load the models and time the calibration photos
MAX_JOBS_PER_WORKER = 500  # then a fresh process: memory fragmented by large photos goes back to the system
PR_SET_PDEATHSIG = 1  # Linux's prctl option that sends a signal to a process when its parent dies
PROGRESS_EVERY_S = 0.5  # a GIF's or video's progress leaves its worker at most this often (and at its last frame)

# Set in a worker process when its models could not be loaded; every job it is given then reports this.
_start_error: str | None = None
# In a worker process: the pipe on which GIF and video jobs report (token, frames done, frames in all).
_progress_pipe: Any = None


def _die_with_parent() -> None:
    """A worker must not outlive the process that feeds it (a worker machine killed with SIGKILL): its jobs would
    run for nobody. Elsewhere than Linux this does nothing."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _return_freed_memory() -> None:
    """Hand the memory a finished job freed back to the system: glibc keeps freed blocks for reuse, so an idle bot
    would otherwise hold every worker's largest job. Elsewhere (no glibc) this does nothing."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _start_worker(
    warm_up_options: Options,
    threads: int,
    initializer: Callable[[], object] | None,
    progress_pipe: Any,
    strict_options: Options | None,
) -> None:
    """pebble's initializer: load the models once (the second look's too, so the first /strict does not pay for
    them). A failure to load the first look's is kept and reported by every job, because pebble would otherwise
    restart a worker that cannot start, forever."""
    global _start_error, _progress_pipe
    _die_with_parent()
    _progress_pipe = progress_pipe
    import anonymizer

    try:
        if initializer is not None:
            initializer()
        anonymizer.warm_up(warm_up_options, threads=threads)
    except Exception as error:
        _start_error = f"{type(error).__name__}: {error}"
    if strict_options is not None and _start_error is None:
        # A second look that cannot load (its weights missing) fails alone when asked for; first looks go on.
        with suppress(Exception):
            anonymizer.warm_up(strict_options, threads=threads)
    _return_freed_memory()


def _calibrate(options: Options) -> list[tuple[float, float]]:
    """(megapixels, seconds) this worker takes for each CALIBRATION_TILES image through the whole pipeline, at its
    best of CALIBRATION_RUNS."""
    if _start_error is not None:
        raise WorkerStartError(f"a worker could not load its models: {_start_error}")
    import numpy as np
    from skimage import data as samples

    import anonymizer

    astronaut = np.ascontiguousarray(samples.astronaut()[:, :, ::-1])  # RGB to the pipeline's BGR
    curve = []
    for tiles in CALIBRATION_TILES:
        image = np.tile(astronaut, (*tiles, 1))
        data = anonymizer.encode_image(image, "JPEG")
        runs = []
        for _ in range(CALIBRATION_RUNS):
            started = time.perf_counter()
            anonymizer.anonymize(data, options)
            runs.append(time.perf_counter() - started)
        curve.append((image.shape[0] * image.shape[1] / 1e6, min(runs)))
    _return_freed_memory()
    return curve


def _reporter(token: int) -> Callable[[int, int], None]:
    """Progress of one GIF or video job, sent to the pool's owner on the pipe, at most every PROGRESS_EVERY_S.

    One small message is one write of the pipe, which POSIX keeps whole among concurrent writers (and a worker
    killed mid-job cannot leave a lock held, as a multiprocessing.Queue's could)."""
    last = 0.0

    def report(done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if _progress_pipe is not None and (now - last >= PROGRESS_EVERY_S or done >= total):
            last = now
            _progress_pipe.send((token, done, total))

    return report


def _run_job(job: Job, deadline: float | None, token: int) -> Outcome:
    """One job in a worker process. A job whose deadline (a time.monotonic() instant, the same clock in every
    process of the machine) passed while it waited is not started at all. Images go through `anonymize`; GIFs and
    videos through `anonymize_media`, reporting their progress."""
    if _start_error is not None:
        return Outcome.failed(WorkerStartError(_start_error))
    if deadline is not None and time.monotonic() >= deadline:
        return Outcome.expired()
    import anonymizer

    started = time.perf_counter()
    try:
        if job.kind == MediaKind.IMAGE:
            result = anonymizer.anonymize(job.data, job.options, faces=job.faces)
        else:
            result = anonymizer.anonymize_media(job.data, job.options, progress=_reporter(token))
    except AnonymizerError as error:
        return Outcome.refused(error)
    except Exception as error:  # any other failure is reported; the worker lives on
        return Outcome.failed(error)
    finally:
        _return_freed_memory()
    return Outcome.done(result, time.perf_counter() - started)


class ProcessPool:
    """A fixed number of worker processes with one FIFO queue of jobs; safe to use from any thread or event loop."""

    def __init__(
        self,
        size: int,
        warm_up_options: Options,
        start_method: str = "spawn",
        initializer: Callable[[], object] | None = None,
        strict_options: Options | None = None,
    ) -> None:
        """`initializer`, a module-level function, runs first in every worker process (the tests audit with it);
        `strict_options` are loaded beside `warm_up_options` when second looks are offered."""
        if size < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = size
        self.warm_up_options = warm_up_options
        # The workers already share the cores: each one spreading over all of them only adds contention.
        threads = max(1, (os.cpu_count() or 1) // size)
        self.speed = SpeedModel()
        context = multiprocessing.get_context(start_method)
        self._progress_in, self._progress_out = context.Pipe(duplex=False)
        self._listeners: dict[int, Callable[[int, int], None]] = {}
        self._tokens = itertools.count(1)
        self._pool = pebble.ProcessPool(
            max_workers=size,
            max_tasks=MAX_JOBS_PER_WORKER,
            initializer=_start_worker,
            initargs=(warm_up_options, threads, initializer, self._progress_out, strict_options),
            context=context,
        )
        self._jobs: dict[concurrent.futures.Future[Any], concurrent.futures.Future[Any]] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._progress_thread = threading.Thread(target=self._relay_progress, name="progress", daemon=True)
        self._progress_thread.start()

    def _relay_progress(self) -> None:
        """Hand each progress report to the listener of its job, until close() sends None."""
        while True:
            try:
                report = self._progress_in.recv()
            except (EOFError, OSError):
                return
            if report is None:
                return
            token, done, total = report
            with self._lock:
                listener = self._listeners.get(token)
            if listener is not None:
                listener(done, total)

    def start(self) -> ProcessPool:
        """Start every worker and wait until all have loaded their models and timed the calibration photos, so the
        first user does not wait; the slowest worker's time at each size is this machine's cost curve."""
        calibrations = [self._pool.schedule(_calibrate, (self.warm_up_options,)) for _ in range(self.size)]
        try:
            curves = [future.result(timeout=WORKER_START_TIMEOUT) for future in calibrations]
        except concurrent.futures.TimeoutError:
            raise WorkerStartError(f"the workers did not start within {WORKER_START_TIMEOUT:.0f} s") from None
        except (pebble.ProcessExpired, BrokenProcessPool) as error:
            raise WorkerStartError(f"a worker died while starting ({error})") from None
        slowest = [(points[0][0], max(seconds for _, seconds in points)) for points in zip(*curves, strict=True)]
        self.speed.calibrated(slowest)
        logger.info("worker speed: %s", ", ".join(f"{seconds:.2f} s for {mp:.1f} MP" for mp, seconds in slowest))
        return self

    def submit(
        self, job: Job, deadline: float | None = None, *, progress: Progress | None = None
    ) -> concurrent.futures.Future[Result]:
        """Queue one job; the future resolves to a Result or raises AnonymizerError or a worker error.

        With a deadline (a time.monotonic() instant) the job cannot run past it: it is not started once the
        deadline has passed, and pebble stops it (killing its worker) when it runs longer than the time left.
        A GIF or video job calls `progress(done, total)` on a thread of this process as its frames are written.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            token = next(self._tokens)
            if progress is not None:
                self._listeners[token] = progress
        timeout = None if deadline is None else max(0.001, deadline - time.monotonic())
        task = self._pool.schedule(_run_job, (job, deadline, token), timeout=timeout)
        future: concurrent.futures.Future[Result] = concurrent.futures.Future()
        with self._lock:
            self._jobs[future] = task
        task.add_done_callback(lambda finished: self._finished(finished, future, job, token, timeout))
        return future

    def _finished(
        self,
        task: concurrent.futures.Future[Any],
        future: concurrent.futures.Future[Result],
        job: Job,
        token: int,
        timeout: float | None,
    ) -> None:
        with self._lock:
            self._jobs.pop(future, None)
            self._listeners.pop(token, None)
        if not future.set_running_or_notify_cancel():
            return
        if task.cancelled():
            future.set_exception(DeadlineExceededError())
            return
        error = task.exception()
        if isinstance(error, TimeoutError):
            if job.teaches_speed and timeout is not None:
                # Stopped at its deadline: it costs at least what it was allowed, which the price must learn or it
                # keeps admitting what cannot finish.
                self.speed.learn_overrun(job.priced, timeout)
            future.set_exception(DeadlineExceededError())
        elif isinstance(error, pebble.ProcessExpired):
            logger.warning("a worker died during a job (exit code %s); pebble starts a new one", error.exitcode)
            future.set_exception(WorkerCrashedError("the worker process died while processing the image"))
        elif error is not None:
            future.set_exception(WorkerFailedError(type(error).__name__))
        else:
            outcome: Outcome = task.result()
            value = outcome.value()
            if isinstance(value, Result):
                if job.teaches_speed:
                    self.speed.learn(value, len(job.data), outcome.seconds)
                future.set_result(value)
            else:
                future.set_exception(value)

    def abandon(self, future: concurrent.futures.Future[Any]) -> None:
        """Give up on a job: pebble drops it if it is still queued and stops its worker if it is running."""
        with self._lock:
            task = self._jobs.get(future)
        if task is not None:
            task.cancel()
        future.cancel()

    @property
    def outstanding(self) -> int:
        """Jobs queued or running, including abandoned jobs whose worker has not been freed yet."""
        with self._lock:
            return len(self._jobs)

    # pebble keeps which process runs which task to itself; the two look-ups below read its bookkeeping, for the
    # tests that kill a worker mid-job and for the benchmarks that measure the workers' memory.
    def worker_pids(self) -> list[int]:
        """The live worker processes."""
        workers = self._pool._pool_manager.worker_manager.workers
        return [pid for pid, process in list(workers.items()) if process.is_alive()]

    def pid_running(self, future: concurrent.futures.Future[Any]) -> int | None:
        """The worker process running this job, if one is."""
        with self._lock:
            task_future = self._jobs.get(future)
        for task in list(self._pool._pool_manager.task_manager.tasks.values()):
            if task.future is task_future and task.started and task.worker_id:
                return int(task.worker_id)
        return None

    def close(self, wait: bool = True) -> None:
        """Stop accepting jobs; the jobs already queued are finished first, then the workers exit."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if wait:
            self._pool.close()
            self._pool.join()
        else:
            self._pool.stop()
            self._pool.join()
        self._progress_out.send(None)
        self._progress_thread.join()
        self._progress_in.close()
        self._progress_out.close()


def start_pool(settings: PipelineSettings) -> ProcessPool:
    """This machine's WORKERS processes with the configured detectors, loaded and timed; WorkerStartError (the pool
    closed again) if they cannot start."""
    logger.info("starting %d worker process(es)", settings.workers)
    pool = ProcessPool(settings.workers, settings.options(), strict_options=settings.options(strict=True))
    try:
        return pool.start()
    except WorkerStartError:
        pool.close(wait=False)
        raise
