"""Connections to Redis and taskiq's broker over it, set up alike in fronts and worker machines."""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq.serializers import JSONSerializer
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from bot.cluster import keys

logger = logging.getLogger(__name__)

TASK_NAME = "photo_anon.run_job"
# A job idle this long in a worker that took it is handed to another worker: a live worker claims its jobs afresh
# every heartbeat, so this only passes for a worker that died; short enough to matter within a photo's budget.
REDELIVER_AFTER_MS = 10_000
# The stream keeps this many entries (ids and options only); older ones are trimmed.
STREAM_LENGTH = 10_000
# Results wait this long for their front to read them; the front deletes them as soon as it has.
RESULT_TTL_S = 60
# Worker machines and fronts say they are alive this often, and are taken for dead after HEARTBEAT_TTL_S.
HEARTBEAT_S = 1.0
HEARTBEAT_TTL_S = 3.5


def client_settings() -> dict[str, Any]:
    """A command that meets a connection Redis closed (a restart) is retried on a fresh one, so a Redis that came
    back costs nothing; one that stays away fails within seconds, not minutes."""
    return {
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def connect(redis_url: str) -> Redis:
    return Redis.from_url(redis_url, **client_settings())


def create_broker(redis_url: str) -> RedisStreamBroker:
    """taskiq's Redis Streams broker (one message at a time per free process, acknowledged when the result is
    saved) and its Redis result backend (each result expiring, deleted once read, and JSON: a value planted in
    Redis must never be unpickled by a front, which holds the bot token)."""
    broker = RedisStreamBroker(
        redis_url,
        queue_name=keys.STREAM,
        consumer_group_name=keys.GROUP,
        consumer_id="0",  # a group created after a Redis restart still sees the jobs added before it
        xread_count=1,
        idle_timeout=REDELIVER_AFTER_MS,
        unacknowledged_lock_timeout=5,
        maxlen=STREAM_LENGTH,
        **client_settings(),
    )
    backend: Any = RedisAsyncResultBackend(
        redis_url,
        result_ex_time=RESULT_TTL_S,
        keep_results=False,
        serializer=JSONSerializer(),
        **client_settings(),
    )
    return broker.with_result_backend(backend)


def wall_clock(deadline: float) -> float:
    """A time.monotonic() deadline as a Unix time, which means the same on every machine (clocks kept by NTP)."""
    return time.time() + (deadline - time.monotonic())


async def warn_if_persistent(redis: Redis) -> None:
    """Image bytes pass through Redis: a Redis that snapshots or logs to disk could write them there."""
    try:
        save = (await redis.config_get("save")).get("save", "")
        appendonly = (await redis.config_get("appendonly")).get("appendonly", "no")
    except RedisError:
        return  # CONFIG may be disabled on a managed Redis: the operator's docs say to turn persistence off
    if save or appendonly == "yes":
        logger.warning(
            "Redis persistence is on (save=%r, appendonly=%s): image bytes could reach its disk; "
            "run Redis with --save '' --appendonly no",
            save,
            appendonly,
        )
