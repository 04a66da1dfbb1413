"""The worker machines' heartbeats: what each machine announces every second, and what a front reads of them all."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from bot.admission import Capacity
from bot.cluster import keys
from bot.cluster.connection import HEARTBEAT_TTL_S


@dataclass(frozen=True)
class Announcement:
    """One worker machine: how many jobs it runs at once (and of them, videos), its cost curve (megapixels,
    seconds) and how much slower than priced it runs videos."""

    processes: int
    curve: list[tuple[float, float]] = field(default_factory=list)
    video_processes: int = 1
    video_slowdown: float = 1.0


async def announce(redis: Redis, identity: str, announcement: Announcement) -> None:
    """A worker machine's heartbeat, valid for HEARTBEAT_TTL_S."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.WORKER_INFO, identity, json.dumps(asdict(announcement)))
        pipe.zadd(keys.WORKERS, {identity: time.time() + HEARTBEAT_TTL_S})
        await pipe.execute()


async def withdraw(redis: Redis, identity: str) -> None:
    """A worker machine leaving on a graceful stop, rather than when its heartbeat runs out."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(keys.WORKERS, identity)
        pipe.hdel(keys.WORKER_INFO, identity)
        await pipe.execute()


async def census(redis: Redis | Pipeline) -> list[Announcement]:
    """What every worker machine alive has announced."""
    # Without `withscores` the reply is the members alone; the client's stubs cannot tell the two replies apart.
    alive = cast(list[bytes], await redis.zrangebyscore(keys.WORKERS, time.time(), "+inf"))
    announced = await redis.hmget(keys.WORKER_INFO, alive) if alive else []
    machines = []
    for raw in announced:
        try:
            document = json.loads(raw or "")
            curve = [(float(mp), float(seconds)) for mp, seconds in document["curve"]]
            processes, videos = int(document["processes"]), int(document["video_processes"])
            machines.append(Announcement(processes, curve, videos, float(document["video_slowdown"])))
        except (ValueError, TypeError, KeyError):
            continue  # not what a worker machine writes: nothing a front counts on
    return machines


def capacity_of(machines: list[Announcement]) -> Capacity:
    return Capacity(
        sum(machine.processes for machine in machines), sum(machine.video_processes for machine in machines)
    )


async def forget_the_dead(redis: Redis) -> None:
    """Drop the machines whose heartbeat ran out (a killed machine cannot withdraw itself)."""
    dead = cast(list[bytes], await redis.zrangebyscore(keys.WORKERS, "-inf", time.time()))
    if dead:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.WORKERS, *dead)
            pipe.hdel(keys.WORKER_INFO, *dead)
            await pipe.execute()
