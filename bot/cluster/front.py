"""A front's job service: admission in the cluster's ledger, jobs through taskiq to the worker machines.

The job's input and output bytes wait in Redis keys of their own (with a TTL of the request's budget), not in the
stream: stream entries stay in memory until trimmed, and a key can be deleted the moment the job is done. The stream
entry carries only the job's id, kind, filter, deadline and front; the outcome (without the bytes) comes back as JSON
through taskiq's result backend. A video is queued only once admission gives it its turn; its progress comes back
through a key the worker updates.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import suppress
from typing import Any, cast

from redis.exceptions import RedisError
from taskiq import AsyncResultBackend
from taskiq.exceptions import SendTaskError, TaskiqError
from taskiq.kicker import AsyncKicker

from anonymizer.options import Result
from bot import metrics
from bot.admission import Lane, Limits, Ticket, UnavailableError
from bot.cluster import keys
from bot.cluster.codec import choice_document, outcome_of
from bot.cluster.connection import (
    HEARTBEAT_S,
    HEARTBEAT_TTL_S,
    TASK_NAME,
    connect,
    create_broker,
    wall_clock,
    warn_if_persistent,
)
from bot.cluster.ledger import RedisLedger
from bot.cluster.workers import census, forget_the_dead
from bot.jobs import AdmittingJobs, DeadlineExceededError, Job, Progress, WorkerFailedError
from bot.pricing import JobSize, SpeedModel

logger = logging.getLogger(__name__)

# How often a waiting front looks for a result, and for a video's progress.
RESULT_POLL_S = 0.02
PROGRESS_POLL_S = 0.5


class ClusterJobs(AdmittingJobs):
    """The job service of a front: every front and worker machine of the cluster meet in one Redis."""

    def __init__(self, redis_url: str, limits: Limits) -> None:
        self.redis = connect(redis_url)
        self.broker = create_broker(redis_url)
        # This front's id: its admitted requests and its claims on updates are its own while its heartbeat lives.
        self.instance = uuid.uuid4().hex
        super().__init__(RedisLedger(self.redis, limits, self.instance), limits.reply_reserve, self.instance)
        self.ledger: RedisLedger
        # The slowest machine's speed: admission must hold for whichever worker gets the job.
        self.speed = SpeedModel()
        self.processes = 0
        self._kicker: AsyncKicker[Any, Any] = AsyncKicker(TASK_NAME, self.broker, {})
        self._started = False
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and start this front's heartbeat; a Redis that is down now is no reason not to start (users are
        told, and it is retried)."""
        self._heartbeat = asyncio.create_task(self._beat())
        try:
            await self.broker.startup()
            await self.refresh()
            self._started = True
            await warn_if_persistent(self.redis)
        except (RedisError, OSError) as error:
            logger.warning("Redis unreachable at start (%s); retrying with each request", type(error).__name__)

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        with suppress(RedisError, OSError):
            await self.broker.shutdown()
        await self.redis.aclose()

    async def _beat(self) -> None:
        """This front's sign of life, by which the others know whether an update it claimed is still being
        answered and whether the requests it admitted still count, and workers whether its jobs are wanted."""
        while True:
            with suppress(RedisError, OSError):
                await self.redis.set(keys.front_key(self.instance), 1, px=int(HEARTBEAT_TTL_S * 1000))
            await asyncio.sleep(HEARTBEAT_S)

    async def healthy(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def refresh(self) -> None:
        """Read the worker machines' processes and speed (the slowest machine's price at each calibration size:
        every machine times the same sizes)."""
        await forget_the_dead(self.redis)
        machines = await census(self.redis)
        self.processes = sum(machine.processes for machine in machines)
        if machines:
            self.speed.video_slowdown = max(machine.video_slowdown for machine in machines)
            curves = [machine.curve for machine in machines if machine.curve]
            if curves:
                sizes = [megapixels for megapixels, _ in curves[0]]
                self.speed.calibrated([(mp, max(curve[i][1] for curve in curves)) for i, mp in enumerate(sizes)])
        metrics.WORKERS_ALIVE.set(self.processes)

    async def watch_cluster(self) -> None:
        """Keep the view of the workers fresh (runs until cancelled)."""
        while True:
            try:
                if not self._started:
                    await self.broker.startup()
                    self._started = True
                await self.refresh()
                metrics.QUEUE_DEPTH.set(sum(ticket.pictures for ticket in await self.ledger.tickets()))
            except (RedisError, OSError):
                metrics.WORKERS_ALIVE.set(0)
            await asyncio.sleep(HEARTBEAT_S / 2)

    def estimate_seconds(self, job: JobSize) -> float:
        return self.speed.estimate_seconds(job)

    async def run(
        self, jobs: list[Job], deadline: float, *, ticket: Ticket | None = None, progress: Progress | None = None
    ) -> list[Result | Exception]:
        """Queue every job (a video once it has its turn), then wait for each result until the deadline; a Redis
        that fails meanwhile is retried until then. Raises DeadlineExceededError when a result is still missing at
        the deadline."""
        stop_at = await self.results_due(deadline, ticket, progress)
        until = wall_clock(stop_at)
        ids = [uuid.uuid4().hex for _ in jobs]
        try:
            for job_id, job in zip(ids, jobs, strict=True):
                ttl_ms = max(1, int((stop_at - time.monotonic()) * 1000) + 1000)
                await self.redis.set(keys.input_key(job_id), job.data, px=ttl_ms)
                kicker = self._kicker.with_task_id(job_id)
                choice = choice_document(job)
                arguments = (job.kind, job.options.filter, until, self.instance, job.strict, choice, job.priced)
                await kicker.kiq(job_id, *arguments)
        except (RedisError, OSError, SendTaskError) as error:
            logger.warning("queueing failed: Redis unreachable (%s)", type(error).__name__)
            await self._forget(ids)
            raise UnavailableError from None
        try:
            return list(
                await asyncio.gather(
                    *(
                        self._result(job_id, stop_at, progress if Lane.of(job.kind) == Lane.VIDEOS else None)
                        for job_id, job in zip(ids, jobs, strict=True)
                    )
                )
            )
        finally:
            await self._forget(ids)

    async def _result(self, job_id: str, stop_at: float, progress: Progress | None = None) -> Result | Exception:
        # The task returns the outcome's JSON document; taskiq types the broker's backend with a free type variable.
        backend = cast(AsyncResultBackend[dict[str, Any]], self.broker.result_backend)
        next_progress = time.monotonic()
        while time.monotonic() < stop_at:
            try:
                if progress is not None and time.monotonic() >= next_progress:
                    next_progress = time.monotonic() + PROGRESS_POLL_S
                    if report := await self.redis.get(keys.progress_key(job_id)):
                        done, total = (int(part) for part in report.split())
                        progress(done, total)
                if await backend.is_result_ready(job_id):
                    try:
                        result = await backend.get_result(job_id)
                    except (ValueError, TaskiqError):  # not a result of ours: planted, or garbled
                        logger.warning("job %s: its result is not a result's JSON (planted in Redis?); refused", job_id)
                        return WorkerFailedError("MalformedResult")
                    if result.is_err or not isinstance(result.return_value, dict):
                        return WorkerFailedError("TaskFailed")
                    data = await self.redis.getdel(keys.output_key(job_id))
                    assert data is None or isinstance(data, bytes)  # the client does not decode replies
                    return outcome_of(result.return_value, data).value()
            except (RedisError, OSError):
                pass  # Redis restarting: the job may be lost, the deadline says when to stop hoping
            await asyncio.sleep(RESULT_POLL_S)
        raise DeadlineExceededError

    async def _forget(self, ids: list[str]) -> None:
        """No input waits in Redis for a job nobody will read the result of."""
        with suppress(RedisError, OSError):
            job_keys = (keys.input_key, keys.output_key, keys.progress_key)
            await self.redis.delete(*(key(job_id) for job_id in ids for key in job_keys))
