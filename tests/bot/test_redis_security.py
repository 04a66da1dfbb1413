"""A cluster's Redis as a public bot must treat it: what is read from it is data, never code; TLS with the CA the
operator gives; strangers write nothing to it. Real redis-servers (one of them speaking TLS only, with a certificate
made here), a front as a process, the fake Bot API."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError

from anonymizer.options import Options, Result
from bot.cluster import keys
from bot.cluster.deployment import ClusterDeployment
from bot.cluster.front import ClusterJobs
from bot.cluster.machine import WorkerMachine
from bot.jobs import Job, WorkerFailedError
from bot.pool import ProcessPool
from bot.settings import PipelineSettings
from bot.texts import ENGLISH
from testing.cluster import RedisServer, front, make_certificates, wait_for_workers
from testing.fake_telegram import TOKEN, FakeTelegramServer, FakeUser
from testing.images import astronaut_bgr, jpeg
from tests.bot.helpers import bot_settings_for

PASSWORD = "TlsRedisPasswordForTests0123456789"
STRANGER = FakeUser(6001, "Mallory", "en")
MEMBER = FakeUser(6002, "Alice", "en")


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


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server that speaks TLS only and asks for a password, with a CA and certificate made for this module."""
    directory = tmp_path_factory.mktemp("tls-redis")
    server = RedisServer(directory, tls=make_certificates(directory), password=PASSWORD).start()
    yield server
    server.stop()


async def test_a_front_and_a_worker_machine_work_through_rediss_with_the_ca_given(
    tls_redis: RedisServer, worker_pool: ProcessPool
) -> None:
    """Jobs, results, heartbeats and the users' choices all cross TLS, the CA named in the URL (the worker machine
    runs in this process, on the session's worker processes); a client without the CA is turned away."""
    url = tls_redis.url()
    machine = WorkerMachine(PipelineSettings(_env_file=None, redis_url=url), worker_pool, url)
    stop = asyncio.Event()
    serving = asyncio.create_task(machine.serve(stop))
    deployment = ClusterDeployment(bot_settings_for(TOKEN, redis_url=url))
    try:
        await asyncio.to_thread(wait_for_workers, tls_redis.client(), worker_pool.size, 30)
        await deployment.start()
        key = StorageKey(bot_id=1, chat_id=MEMBER.id, user_id=MEMBER.id)
        await deployment.storage.set_data(key, {"filter": "blur"})
        choice = await deployment.storage.get_data(key)
        deadline = time.monotonic() + 30
        data = jpeg(astronaut_bgr())
        async with deployment.jobs.admission(MEMBER.id, [1.0], deadline) as ticket:
            (result,) = await deployment.jobs.run([Job(data, deployment.settings.options())], deadline, ticket=ticket)
    finally:
        await deployment.close()
        stop.set()
        await serving
    assert isinstance(result, Result) and result.detections, "no picture came back through rediss://"
    assert choice == {"filter": "blur"}
    without_ca = Redis.from_url(url.partition("?")[0])
    with pytest.raises(RedisConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        without_ca.ping()


async def test_a_strangers_update_writes_no_claim_to_redis(
    telegram: FakeTelegramServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The allowed-users check comes before the claim that makes each update answered once: strangers cannot fill
    Redis with day-long keys."""
    front_process = front(redis_server.url(), telegram.base_url, tmp_path, ALLOWED_USER_IDS=str(MEMBER.id))
    try:
        await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=60)
        telegram.send_photo(STRANGER, jpeg(astronaut_bgr()))
        (refusal,) = await telegram.wait_for(lambda call: call.chat_id == STRANGER.id, timeout=20)
        member = telegram.send_text(MEMBER, "/start")
        (welcome,) = await telegram.wait_for(lambda call: call.chat_id == MEMBER.id, timeout=20)
    finally:
        await asyncio.to_thread(front_process.stop)
    assert refusal.text == ENGLISH.not_allowed and welcome.text == ENGLISH.start
    claims = {key.decode() for key in redis_server.client().scan_iter("photo-anon:update:*")}
    assert claims == {keys.update_key(int(TOKEN.partition(":")[0]), telegram.update_id_of(member))}, claims
