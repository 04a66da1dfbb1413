"""The embedded deployment: one machine, its own worker processes, everything it remembers in its memory."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import suppress

from aiogram.fsm.storage.memory import MemoryStorage

from anonymizer.options import Result
from bot import metrics
from bot.admission import Capacity, LocalLedger, Ticket
from bot.deployment import Deployment
from bot.jobs import AdmittingJobs, DeadlineExceededError, Job, Progress, WorkerFailedError
from bot.middlewares import MemoryRateCounter
from bot.originals import MemoryOriginals
from bot.polling import AnsweredUpdates
from bot.pool import ProcessPool
from bot.pricing import JobSize
from bot.settings import BotSettings

logger = logging.getLogger(__name__)

# How long the pool may take to stop a job at its deadline and say so.
POOL_STOP_S = 0.2


class EmbeddedJobs(AdmittingJobs):
    """The embedded job service: admission in this process's memory, jobs in the local process pool.

    A request (a photo, a file or an album) is admitted only if it can be answered in time (bot.admission); GIFs
    and videos go in a lane of their own, on at most `video_processes` processes.
    """

    def __init__(self, pool: ProcessPool, settings: BotSettings) -> None:
        limits = settings.limits()
        super().__init__(LocalLedger(Capacity(pool.size, settings.video_processes), limits), limits.reply_reserve)
        self.ledger: LocalLedger
        self.pool = pool

    def estimate_seconds(self, job: JobSize) -> float:
        return self.pool.speed.estimate_seconds(job)

    @property
    def queue_depth(self) -> int:
        """Pictures admitted and not yet answered."""
        return sum(ticket.pictures for ticket in self.ledger.tickets)

    async def healthy(self) -> bool:
        return bool(self.pool.worker_pids())

    async def close(self) -> None:
        """The pool belongs to the deployment; nothing of this service's own to release."""

    async def run(
        self, jobs: list[Job], deadline: float, *, ticket: Ticket | None = None, progress: Progress | None = None
    ) -> list[Result | Exception]:
        """Run the jobs in the pool, in order; each entry is a Result or the error for that job.

        A video's `ticket` first waits for its turn (bot.admission); `progress(done, total)` is then called in this
        event loop as its frames are written. Raises DeadlineExceededError when the budget runs out; the unfinished
        jobs are then dropped from the queue or their workers stopped, so no result can arrive later.
        """
        stop_at = await self.results_due(deadline, ticket, progress)
        relay = _in_this_loop(progress) if progress is not None else None
        futures = [self.pool.submit(job, stop_at, progress=relay) for job in jobs]
        waiting = asyncio.gather(*(asyncio.wrap_future(future) for future in futures), return_exceptions=True)
        try:
            # A moment after the pool's own stop at `stop_at`, so that a job stopped there is stopped by the pool,
            # which learns from it, rather than abandoned here.
            outcomes = await asyncio.wait_for(waiting, timeout=max(0.0, stop_at - time.monotonic()) + POOL_STOP_S)
        except (TimeoutError, asyncio.CancelledError) as stopped:
            for future in futures:
                self.pool.abandon(future)
            if isinstance(stopped, asyncio.CancelledError):
                raise
            raise DeadlineExceededError from None
        if any(isinstance(outcome, DeadlineExceededError) for outcome in outcomes):
            raise DeadlineExceededError
        # A job whose future was cancelled (its worker stopped) comes back as CancelledError, not an Exception.
        return [
            WorkerFailedError(type(outcome).__name__)
            if isinstance(outcome, BaseException) and not isinstance(outcome, Exception)
            else outcome
            for outcome in outcomes
        ]


def _in_this_loop(progress: Progress) -> Callable[[int, int], None]:
    """`progress` called from the pool's relay thread, run in the calling event loop."""
    loop = asyncio.get_running_loop()

    def relay(done: int, total: int) -> None:
        with suppress(RuntimeError):  # the loop is closed: nobody is waiting for this job any more
            loop.call_soon_threadsafe(progress, done, total)

    return relay


class EmbeddedDeployment(Deployment):
    """One machine: jobs in local processes, /mode choices, originals and the Mini App's call counts in memory."""

    def __init__(self, settings: BotSettings, pool: ProcessPool, *, owns_pool: bool = False) -> None:
        self.pool = pool
        self.owns_pool = owns_pool
        self.settings = settings
        self.jobs: EmbeddedJobs = EmbeddedJobs(pool, settings)
        self.storage = MemoryStorage()
        self.originals = MemoryOriginals(settings.strict_window_seconds)
        self.rates = MemoryRateCounter()
        metrics.QUEUE_DEPTH.set_function(lambda: self.jobs.queue_depth)
        metrics.WORKERS_ALIVE.set_function(lambda: len(pool.worker_pids()))

    def answered_updates(self) -> AnsweredUpdates:
        bot_id = self.settings.bot_token.get_secret_value().partition(":")[0]
        return AnsweredUpdates(self.settings.state_dir / f"answered-updates-{bot_id}")

    async def close(self) -> None:
        """A pool this deployment started is stopped with it: an answer still being made would only keep the stop
        waiting for nobody."""
        await self.jobs.close()
        if self.owns_pool:
            await asyncio.to_thread(self.pool.close, False)
