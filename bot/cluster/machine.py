"""A worker machine of a cluster (`python -m bot.worker`): it takes jobs from the Redis queue with taskiq's receiver
and runs them in WORKERS local processes (the same pool as the embedded bot), announcing its capacity and speed every
second so that the fronts' admission counts it. Start it on as many machines as you like."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import StreamIdT
from taskiq.receiver import Receiver

from anonymizer.errors import AnonymizerError
from anonymizer.options import MediaKind, Result
from bot import metrics
from bot.cluster import keys
from bot.cluster.codec import outcome_document, with_choice
from bot.cluster.connection import HEARTBEAT_S, RESULT_TTL_S, STREAM_LENGTH, TASK_NAME, connect, create_broker
from bot.cluster.workers import Announcement, announce, withdraw
from bot.jobs import DeadlineExceededError, Job, Outcome
from bot.pool import ProcessPool, start_pool
from bot.retry import Outage
from bot.settings import PipelineSettings, StartupError, entry_point, stop_on_signals

logger = logging.getLogger("bot.worker")

# Waits between attempts to reach a Redis that is down, growing to the last.
RECONNECT_DELAYS = (0.5, 1, 2, 5)
# A worker claims its jobs afresh only when they have been idle this long, so that it never takes back a job that
# another worker has just been handed.
HOLD_MIN_IDLE_MS = 500


async def hold_jobs(redis: Redis, consumer: str) -> int:
    """Claim this worker's unacknowledged jobs afresh (their idle time starts again), so that no other worker takes
    over a job that is still running here, however long it runs. Returns how many it holds."""
    pending = await redis.xpending_range(
        keys.STREAM, keys.GROUP, min="-", max="+", count=STREAM_LENGTH, consumername=consumer
    )
    ids: list[StreamIdT] = [entry["message_id"] for entry in pending]
    if ids:
        await redis.xclaim(
            keys.STREAM, keys.GROUP, consumer, min_idle_time=HOLD_MIN_IDLE_MS, message_ids=ids, justid=True
        )
    return len(ids)


class WorkerMachine:
    """The jobs of this machine: each taken from the queue, run in the pool, its outcome saved for the front."""

    def __init__(self, settings: PipelineSettings, pool: ProcessPool, redis_url: str) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = connect(redis_url)
        self.broker = create_broker(redis_url)
        self.broker.is_worker_process = True

        async def run_job(*arguments: Any) -> dict[str, Any]:
            """The queue's task: the job's message in, its outcome's JSON out (`run_job` names the arguments)."""
            return outcome_document(await self.run_job(*arguments))

        self.broker.register_task(run_job, task_name=TASK_NAME)
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.redis_ok = False

    async def run_job(
        self,
        job_id: str,
        kind: str,
        filter_name: str,
        deadline: float,
        front: str,
        strict: bool = False,
        choice: dict[str, Any] | None = None,
        priced: float = 0.0,
    ) -> Outcome:
        """One job; its input is read (not taken) so that another worker can still run it if this one dies, and
        deleted with the outcome saved. A job whose front is gone is not run: its result would never be read. A GIF
        or video reports its progress in a Redis key the front reads."""
        if kind not in tuple(MediaKind):
            return Outcome.failed(ValueError(kind))
        if time.time() >= deadline or not await self.redis.exists(keys.front_key(front)):
            metrics.JOBS.labels("expired").inc()
            return Outcome.expired()
        data = await self.redis.get(keys.input_key(job_id))
        if data is None:  # the front gave up on it, or Redis lost it in a restart
            metrics.JOBS.labels("expired").inc()
            return Outcome.expired()
        assert isinstance(data, bytes)  # the client does not decode replies
        local_deadline = time.monotonic() + (deadline - time.time())
        started = time.perf_counter()
        options, faces = with_choice(self.settings.options(filter_name, strict), choice)
        progress = None if kind == MediaKind.IMAGE else self._progress_to_redis(job_id)
        job = Job(data, options, MediaKind(kind), strict, faces, float(priced))
        future = self.pool.submit(job, local_deadline, progress=progress)
        del data, job
        try:
            result: Result = await asyncio.wrap_future(future)
        except DeadlineExceededError:
            outcome, label = Outcome.expired(), "expired"
        except AnonymizerError as error:
            outcome, label = Outcome.refused(error), "refused"
        except Exception as error:  # a crashed worker process, or a bug: the front shows the failure
            outcome, label = Outcome.failed(error), "error"
        else:
            try:
                await self.redis.set(keys.output_key(job_id), result.data, ex=RESULT_TTL_S)
            except (RedisError, OSError):
                outcome, label = Outcome.failed(ConnectionError()), "error"
            else:
                outcome, label = Outcome.done(result, time.perf_counter() - started), "result"
        finally:
            with suppress(RedisError, OSError):
                await self.redis.delete(keys.input_key(job_id))
        metrics.JOBS.labels(label).inc()
        return outcome

    def _progress_to_redis(self, job_id: str) -> Callable[[int, int], None]:
        """A job's progress, reported on the pool's relay thread, written to its key from this event loop."""
        loop = asyncio.get_running_loop()

        async def write(done: int, total: int) -> None:
            with suppress(RedisError, OSError):  # progress is a courtesy; the result is what counts
                await self.redis.set(keys.progress_key(job_id), f"{done} {total}", ex=RESULT_TTL_S)

        def report(done: int, total: int) -> None:
            with suppress(RuntimeError):  # the loop has stopped: the machine is going down
                asyncio.run_coroutine_threadsafe(write(done, total), loop)

        return report

    async def heartbeat(self) -> None:
        """Publish this machine's process count and speed (its cost curve scaled by what its jobs showed), and
        hold on to the jobs running here, so none is handed to another worker while it runs."""
        while True:
            speed = self.pool.speed
            curve = [(mp, seconds * speed.slowdown) for mp, seconds in speed.curve.points]
            try:
                machine = Announcement(self.pool.size, curve, self.settings.video_processes, speed.video_slowdown)
                await announce(self.redis, self.identity, machine)
                await hold_jobs(self.redis, self.broker.consumer_name)
                self.redis_ok = True
                metrics.WORKERS_ALIVE.set(len(self.pool.worker_pids()))
            except (RedisError, OSError):
                self.redis_ok = False
            await asyncio.sleep(HEARTBEAT_S)

    async def healthy(self) -> bool:
        return self.redis_ok and bool(self.pool.worker_pids())

    async def serve(self, stop: asyncio.Event) -> None:
        """Take jobs until `stop` is set; a Redis that goes away is waited for, with one log line per outage."""
        heartbeat = asyncio.create_task(self.heartbeat())
        runner = None
        if self.settings.metrics_port:
            runner = await metrics.serve(self.settings.metrics_host, self.settings.metrics_port, self.healthy)
        outage = Outage("Redis", RECONNECT_DELAYS, logger)
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            while not stop.is_set():
                receiver = Receiver(
                    self.broker, executor=executor, max_async_tasks=self.pool.size, max_prefetch=0, run_startup=True
                )
                try:
                    await receiver.listen(stop)
                except Exception as error:  # Redis gone (taskiq's task group may wrap it): wait for it to return
                    await outage.wait(error, stop)
                    continue
                outage.over()
        heartbeat.cancel()
        with suppress(RedisError, OSError):
            await withdraw(self.redis, self.identity)
        if runner is not None:
            await runner.cleanup()
        with suppress(RedisError, OSError):
            await self.broker.shutdown()
        await self.redis.aclose()


async def run(settings: PipelineSettings, pool: ProcessPool, redis_url: str) -> None:
    machine = WorkerMachine(settings, pool, redis_url)
    logger.info("worker %s takes jobs with %d process(es)", machine.identity, pool.size)
    await machine.serve(stop_on_signals())


def main(argv: list[str] | None = None) -> int:
    """Exit code 2 with one line on stderr for bad settings; 0 after a graceful stop (SIGINT or SIGTERM)."""
    return entry_point("photo-anon-worker", "python -m bot.worker", PipelineSettings, argv, serve_jobs)


def serve_jobs(settings: PipelineSettings) -> int:
    if settings.redis_url is None:
        raise StartupError("REDIS_URL is not set (the queue the fronts put jobs on)")
    pool = start_pool(settings)
    try:
        asyncio.run(run(settings, pool, settings.redis_url.get_secret_value()))
    finally:
        pool.close(wait=True)
    logger.info("stopped")
    return 0
