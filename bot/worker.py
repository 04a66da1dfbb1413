"""`python -m bot.worker`: a worker machine of the distributed bot. It takes jobs from the Redis queue with taskiq's
receiver and runs them in WORKERS local processes (the same pool as the embedded bot), publishing its capacity and
speed every second so that the fronts' admission counts it. Start it on as many machines as you like."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import suppress

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq.receiver import Receiver

from anonymizer.errors import AnonymizerError
from anonymizer.options import Result
from bot import jobs, metrics
from bot.admission import ANIMATION, IMAGE, VIDEO
from bot.distributed import (
    HEARTBEAT_S,
    RESULT_TTL_S,
    TASK_NAME,
    announce,
    create_broker,
    front_key,
    hold_jobs,
    input_key,
    output_key,
    progress_key,
    redis_client_settings,
    result_summary,
    withdraw,
)
from bot.jobs import DeadlineExceededError, WorkerStartError
from bot.logs import configure_logging
from bot.settings import WorkerSettings, describe_error, usage
from bot.workers import WorkerPool, start_pool

logger = logging.getLogger("bot.worker")

EXIT_CONFIGURATION = 2
# Waits between attempts to reach a Redis that is down, growing to the last.
RECONNECT_DELAYS = (0.5, 1, 2, 5)


class WorkerMachine:
    """The jobs of this machine: each taken from the queue, run in the pool, its outcome saved for the front."""

    def __init__(self, settings: WorkerSettings, pool: WorkerPool, redis_url: str) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = Redis.from_url(redis_url, **redis_client_settings())
        self.broker = create_broker(redis_url)
        self.broker.is_worker_process = True

        async def run_job(
            job_id: str, kind: str, filter_name: str, deadline: float, front: str, strict: bool = False
        ) -> jobs.Outcome:
            return await self.run_job(job_id, kind, filter_name, deadline, front, strict)

        self.broker.register_task(run_job, task_name=TASK_NAME)
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.redis_ok = False

    async def run_job(
        self, job_id: str, kind: str, filter_name: str, deadline: float, front: str, strict: bool = False
    ) -> jobs.Outcome:
        """One job; its input is read (not taken) so that another worker can still run it if this one dies, and
        deleted with the outcome saved. A job whose front is gone is not run: its result would never be read. A GIF
        or video reports its progress in a Redis key the front reads."""
        if kind not in (IMAGE, ANIMATION, VIDEO):
            return jobs.failed(ValueError(kind))
        if time.time() >= deadline or not await self.redis.exists(front_key(front)):
            metrics.JOBS.labels("expired").inc()
            return jobs.expired()
        data = await self.redis.get(input_key(job_id))
        if data is None:  # the front gave up on it, or Redis lost it in a restart
            metrics.JOBS.labels("expired").inc()
            return jobs.expired()
        assert isinstance(data, bytes)  # the client does not decode replies
        local_deadline = time.monotonic() + (deadline - time.time())
        started = time.perf_counter()
        options = self.settings.options(filter_name, strict)
        progress = None if kind == IMAGE else self._progress_to_redis(job_id)
        future = self.pool.submit(data, options, local_deadline, kind=kind, progress=progress, learn=not strict)
        del data
        try:
            result: Result = await asyncio.wrap_future(future)
        except DeadlineExceededError:
            outcome, label = jobs.expired(), "expired"
        except AnonymizerError as error:
            outcome, label = jobs.refused(error), "refused"
        except Exception as error:  # a crashed worker process, or a bug: the front shows the failure
            outcome, label = jobs.failed(error), "error"
        else:
            try:
                await self.redis.set(output_key(job_id), result.data, ex=RESULT_TTL_S)
            except (RedisError, OSError):
                outcome, label = jobs.failed(ConnectionError()), "error"
            else:
                outcome, label = jobs.done(result_summary(result), time.perf_counter() - started), "result"
        finally:
            with suppress(RedisError, OSError):
                await self.redis.delete(input_key(job_id))
        metrics.JOBS.labels(label).inc()
        return outcome

    def _progress_to_redis(self, job_id: str) -> Callable[[int, int], None]:
        """A job's progress, reported on the pool's relay thread, written to its key from this event loop."""
        loop = asyncio.get_running_loop()

        async def write(done: int, total: int) -> None:
            with suppress(RedisError, OSError):  # progress is a courtesy; the result is what counts
                await self.redis.set(progress_key(job_id), f"{done} {total}", ex=RESULT_TTL_S)

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
                await announce(
                    self.redis,
                    self.identity,
                    self.pool.size,
                    curve,
                    self.settings.video_processes,
                    speed.video_slowdown,
                )
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
        failures = 0
        with concurrent.futures.ThreadPoolExecutor(1) as executor:
            while not stop.is_set():
                receiver = Receiver(
                    self.broker, executor=executor, max_async_tasks=self.pool.size, max_prefetch=0, run_startup=True
                )
                try:
                    await receiver.listen(stop)
                except Exception as error:  # Redis gone (taskiq's task group may wrap it): wait for it to return
                    delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                    if failures == 0:
                        logger.warning("Redis unreachable (%s); retrying until it is back", type(error).__name__)
                    failures += 1
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    continue
                failures = 0
        heartbeat.cancel()
        with suppress(RedisError, OSError):
            await withdraw(self.redis, self.identity)
        if runner is not None:
            await runner.cleanup()
        with suppress(RedisError, OSError):
            await self.broker.shutdown()
        await self.redis.aclose()


async def run(settings: WorkerSettings, pool: WorkerPool, redis_url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    machine = WorkerMachine(settings, pool, redis_url)
    logger.info("worker %s takes jobs with %d process(es)", machine.identity, pool.size)
    await machine.serve(stop)


def main(argv: list[str] | None = None) -> int:
    """Exit code 2 with one line on stderr for bad settings; 0 after a graceful stop (SIGINT or SIGTERM)."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        print(usage("python -m bot.worker", WorkerSettings))
        return 0
    try:
        settings = WorkerSettings()
    except ValidationError as error:
        print(f"photo-anon-worker: {describe_error(error)}", file=sys.stderr)
        return EXIT_CONFIGURATION
    if settings.redis_url is None:
        print("photo-anon-worker: REDIS_URL is not set (the queue the fronts put jobs on)", file=sys.stderr)
        return EXIT_CONFIGURATION
    configure_logging(settings.log_level, [settings.redis_url.get_secret_value()])
    try:
        pool = start_pool(settings)
    except WorkerStartError as error:
        print(f"photo-anon-worker: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    try:
        asyncio.run(run(settings, pool, settings.redis_url.get_secret_value()))
    finally:
        pool.close(wait=True)
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
