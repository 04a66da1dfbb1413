"""What the queue costs and what it buys, with real processes: a redis-server and `python -m bot.worker`
machines, driven through the front's job service (`bot.cluster.front.ClusterJobs`).

    pytest benchmarks/bench_bot_distributed.py -q -s                    # full form
    OVERLOAD=short pytest benchmarks/bench_bot_distributed.py -q -s     # CI's short form: fewer rounds

- Queue hop: one 2 MP photo at a time, turn about through the embedded pool and through Redis to a worker machine
  (one process each); the added latency at p50 and p95. Fails if the hop adds more than HOP_LIMIT_S at the
  median (p95 on a shared machine says more about the neighbours than about the hop).
- Throughput: 12 MP photos through a worker machine running one process, then two (WORKERS=1, WORKERS=2; the
  machine has two cores). In the full form, fails if two processes give less than SCALING_FLOOR times one's
  throughput; the short form only checks that every photo comes back (four photos say nothing about scaling).
- Coordination ceiling: jobs that cost the pipeline nothing (a few bytes that are not an image, refused at once:
  even a 160 x 120 photo costs a detector tens of milliseconds, which would time the workers, not the
  coordination) through the front's path (admission in Redis, input, stream, worker, result) to two worker
  processes, as fast as they go. Fails below CEILING_FLOOR jobs a second: the front and Redis must stay well
  above Telegram's 30 messages a second per bot, so that workers, not the front, are what limits the bot. (Sending
  to Telegram is left out: the front paces itself to those 30 messages a second on purpose.)

All parts share the machine (the 2-core development machine: the workers compete with the front and Redis for the
cores), so the figures are a floor for a cluster whose workers have machines of their own.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from anonymizer.errors import AnonymizerError
from anonymizer.options import MediaKind, Options, Result
from benchmarks.measure import percentile
from bot.admission import Limits
from bot.cluster.front import ClusterJobs
from bot.embedded import EmbeddedJobs
from bot.jobs import Job
from bot.pool import ProcessPool
from bot.pricing import JobSize
from bot.settings import REPLY_RESERVE_S, BotSettings
from testing.cluster import Process, RedisServer, wait_for_workers, worker
from testing.fake_telegram import TOKEN
from testing.images import composite, jpeg

FULL = os.environ.get("OVERLOAD", "full") != "short"
HOP_ROUNDS = 30 if FULL else 6
THROUGHPUT_PHOTOS = 12 if FULL else 4
CEILING_JOBS = 600 if FULL else 200
CEILING_CONCURRENCY = 40
# The queue hop (two Redis writes, a stream entry, the worker's reads, the result's polling) may add this much.
HOP_LIMIT_S = 0.25
# Two worker processes on two cores must give at least this much more than one (one process already spreads
# part of its work over both cores' threads).
SCALING_FLOOR = 1.2
# Replies a second the front must sustain: twice Telegram's limit per bot.
CEILING_FLOOR = 60.0
# Admission's limits out of the way: these parts measure the queue, not what admission lets in.
NO_LIMITS = Limits(queue_limit=10_000, per_user_limit=10_000, video_queue_limit=4, reply_reserve=REPLY_RESERVE_S)


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-cluster")


class Machines:
    """One worker machine at a time, restarted only when what is asked of it changes (each start loads the models
    and times the calibration photos)."""

    def __init__(self, redis_server: RedisServer, directory: Path) -> None:
        self.redis_server, self.directory = redis_server, directory
        self.machine: Process | None = None
        self.processes = 0
        self.detector: str | None = None

    def with_processes(self, processes: int, detector: str | None = None) -> None:
        """A machine running `processes` worker processes (with `detector` instead of the default chain)."""
        if self.machine is not None and (self.processes, self.detector) == (processes, detector):
            return
        self.stop()
        self.redis_server.client().flushall()
        settings = {"DETECTOR": detector} if detector else {}
        name = f"bench-worker-{processes}-{detector or 'default'}"
        self.machine = worker(self.redis_server.url(), self.directory, name, processes=processes, **settings)
        self.processes, self.detector = processes, detector
        wait_for_workers(self.redis_server.client(), processes)

    def stop(self) -> None:
        if self.machine is not None:
            self.machine.stop()
            self.machine = None


@pytest.fixture(scope="module")
def machines(redis_server: RedisServer, cluster_dir: Path) -> Iterator[Machines]:
    running = Machines(redis_server, cluster_dir)
    yield running
    running.stop()


def photo(size: tuple[int, int], index: int = 0) -> bytes:
    width, height = size
    image, _ = composite(size, [(width // 5 + 10 * index, height // 4, height // 3)], background=50 + index)
    return jpeg(image, quality=90)


async def timed_runs(service: EmbeddedJobs | ClusterJobs, data: bytes, rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        (outcome,) = await service.run([Job(data, Options())], time.monotonic() + 60)
        seconds.append(time.perf_counter() - started)
        assert isinstance(outcome, Result), outcome
    return seconds


async def queue_rate(redis_url: str, jobs: list[bytes]) -> float:
    """Photos a second through the queue, all queued at once."""
    service = ClusterJobs(redis_url, NO_LIMITS)
    await service.start()
    try:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(service.run([Job(data, Options())], time.monotonic() + 600) for data in jobs))
        assert all(isinstance(outcome, Result) for (outcome,) in outcomes)
        return len(jobs) / (time.perf_counter() - started)
    finally:
        await service.close()


async def alternating_runs(embedded: EmbeddedJobs, redis_url: str, data: bytes, rounds: int) -> dict[str, list[float]]:
    """The same photo through the embedded pool and through the queue, turn about, so that whatever else the
    machine is doing weighs on both alike."""
    queued = ClusterJobs(redis_url, NO_LIMITS)
    await queued.start()
    try:
        for service in (embedded, queued):  # the first job of each worker pays for warming caches
            await timed_runs(service, data, 1)
        seconds: dict[str, list[float]] = {"embedded": [], "queue": []}
        for _ in range(rounds):
            seconds["embedded"] += await timed_runs(embedded, data, 1)
            seconds["queue"] += await timed_runs(queued, data, 1)
        return seconds
    finally:
        await queued.close()


def test_queue_hop_latency_for_a_2mp_photo(benchmark, redis_server: RedisServer, machines: Machines) -> None:
    data = photo((1600, 1200))
    machines.with_processes(1)
    pool = ProcessPool(1, Options()).start()
    try:
        embedded_service = EmbeddedJobs(pool, BotSettings(_env_file=None, bot_token=TOKEN, workers=1))
        seconds = benchmark.pedantic(
            lambda: asyncio.run(alternating_runs(embedded_service, redis_server.url(), data, HOP_ROUNDS)),
            rounds=1,
            iterations=1,
        )
    finally:
        pool.close()
    embedded, queued = seconds["embedded"], seconds["queue"]
    figures = {
        "embedded_p50_s": round(statistics.median(embedded), 3),
        "embedded_p95_s": round(percentile(embedded, 0.95), 3),
        "queue_p50_s": round(statistics.median(queued), 3),
        "queue_p95_s": round(percentile(queued, 0.95), 3),
    }
    # What the hop adds is read from each round's pair (the queue's run minus the embedded run just before it): the
    # difference of two percentiles taken apart can even come out negative.
    added = [queue - local for local, queue in zip(embedded, queued, strict=True)]
    figures["added_p50_s"] = round(statistics.median(added), 3)
    figures["added_p95_s"] = round(percentile(added, 0.95), 3)
    benchmark.extra_info.update(figures)
    print(f"\nqueue hop, 2 MP photo, {HOP_ROUNDS} rounds: {figures}")
    assert figures["added_p50_s"] <= HOP_LIMIT_S, f"the queue hop adds {figures['added_p50_s']} s at the median"


def test_throughput_with_one_and_two_worker_processes(benchmark, redis_server: RedisServer, machines: Machines) -> None:
    photos = [photo((4000, 3000), index) for index in range(THROUGHPUT_PHOTOS)]
    rates = {}
    for processes in (1, 2):
        machines.with_processes(processes)
        run = lambda: asyncio.run(queue_rate(redis_server.url(), photos))  # noqa: E731
        rate = benchmark.pedantic(run, rounds=1, iterations=1) if processes == 2 else run()
        assert isinstance(rate, float)
        rates[processes] = rate
    figures = {
        "photos": THROUGHPUT_PHOTOS,
        "one_process_per_s": round(rates[1], 2),
        "two_processes_per_s": round(rates[2], 2),
        "scaling": round(rates[2] / rates[1], 2),
    }
    benchmark.extra_info.update(figures)
    print(f"\n12 MP throughput: {figures}")
    if FULL:
        assert figures["scaling"] >= SCALING_FLOOR, f"two worker processes gave only {figures['scaling']}x one"


async def tiny_job_storm(redis_url: str, inputs: list[bytes], concurrency: int) -> float:
    """Jobs a second through the front's path (admission in Redis, the input written, the stream, a worker, the
    result read back), `concurrency` requests at a time."""
    service = ClusterJobs(redis_url, NO_LIMITS)
    await service.start()
    await service.refresh()
    gate = asyncio.Semaphore(concurrency)

    async def request(user_id: int, data: bytes) -> Result | Exception:
        async with gate:
            deadline = time.monotonic() + 60
            estimate = [service.estimate_seconds(JobSize(MediaKind.IMAGE, size_bytes=len(data)))]
            async with service.admission(user_id, estimate, deadline):
                (outcome,) = await service.run([Job(data, Options())], deadline)
                return outcome

    try:
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(request(index, data) for index, data in enumerate(inputs)))
        elapsed = time.perf_counter() - started
    finally:
        await service.close()
    assert all(isinstance(outcome, AnonymizerError) for outcome in outcomes), "a job did not make the round trip"
    return len(inputs) / elapsed


def test_coordination_ceiling_with_jobs_that_cost_nothing(
    benchmark, redis_server: RedisServer, cluster_dir: Path, machines: Machines
) -> None:
    inputs = [b"not an image %d" % index for index in range(CEILING_JOBS)]
    machines.with_processes(2)
    rate = benchmark.pedantic(
        lambda: asyncio.run(tiny_job_storm(redis_server.url(), inputs, CEILING_CONCURRENCY)), rounds=1, iterations=1
    )
    benchmark.extra_info.update({"jobs": len(inputs), "jobs_per_s": round(rate, 1)})
    print(f"\ncoordination ceiling, {len(inputs)} tiny jobs, {CEILING_CONCURRENCY} at a time: {rate:.1f} jobs/s")
    assert rate >= CEILING_FLOOR, f"the front's path through Redis to the workers took only {rate:.1f} jobs a second"
