"""A cluster's Redis as a public bot must treat it: what is read from it is data, never code."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import time
from pathlib import Path
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from anonymizer.options import Options
from bot.cluster import keys
from bot.cluster.front import ClusterJobs
from bot.jobs import Job, WorkerFailedError
from testing.cluster import RedisServer
from testing.fake_telegram import TOKEN
from testing.images import astronaut_bgr, jpeg
from tests.bot.helpers import bot_settings_for


class RunsACommand:
    """What someone who can write to Redis plants: unpickling it runs `touch <marker>`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (subprocess.call, (["touch", str(self.marker)],))


async def plant_under_the_next_result(redis: AsyncRedis, payload: bytes) -> str:
    """Act as a hostile worker: read the job's id off the queue and put `payload` where taskiq-redis keeps that job's
    result (a key named by the task id alone)."""
    while not (entries := await redis.xrange(keys.STREAM)):
        await asyncio.sleep(0.01)
    job_id = str(json.loads(entries[-1][1][b"data"])["task_id"])
    await redis.set(job_id, payload)
    return job_id


async def test_a_pickled_result_planted_in_redis_is_refused_not_run(redis_server: RedisServer, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    payload = pickle.dumps(RunsACommand(marker))
    pickle.loads(payload)  # noqa: S301 (the payload is live: unpickled, it runs its command)
    assert marker.exists()
    marker.unlink()
    redis = AsyncRedis.from_url(redis_server.url())
    jobs = ClusterJobs(redis_server.url(), bot_settings_for(TOKEN).limits())
    await jobs.start()
    try:
        planting = asyncio.create_task(plant_under_the_next_result(redis, payload))
        (outcome,) = await jobs.run([Job(jpeg(astronaut_bgr()), Options())], time.monotonic() + 5)
        job_id = await planting
        still_planted = await redis.exists(job_id)
    finally:
        await jobs.close()
        await redis.aclose()
    assert isinstance(outcome, WorkerFailedError), "the planted value was taken for a result"
    assert not still_planted, "the front never read the planted value: the test proved nothing"
    assert not marker.exists(), "the front unpickled what it read from Redis"
