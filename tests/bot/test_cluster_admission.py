"""Admission across the cluster, decided in a real Redis: per-user limits hold across fronts, the backlog of every
front counts, a worker machine that joins raises the capacity without restarting anything, videos keep to their
lane across fronts, and a long job stays with the worker that runs it."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiogram.methods import SendMessage
from redis.asyncio import Redis

from anonymizer.options import MediaKind
from bot.admission import BusyError, Lane, Limits, UnavailableError
from bot.cluster import keys
from bot.cluster.front import ClusterJobs
from bot.cluster.machine import hold_jobs
from bot.cluster.pacing import SharedPacing
from bot.cluster.workers import Announcement, announce
from bot.pricing import JobSize
from testing.cluster import RedisServer

CURVE = [(0.26, 0.1), (2.1, 1.0), (12.6, 2.0)]


@pytest.fixture
async def fronts(redis_server: RedisServer) -> AsyncIterator[tuple[ClusterJobs, ClusterJobs]]:
    redis_server.client().flushall()
    limits = Limits(queue_limit=10, per_user_limit=1, video_queue_limit=4, reply_reserve=0.0)
    pair = tuple(ClusterJobs(redis_server.url(), limits) for _ in range(2))
    yield pair  # type: ignore[misc]
    for front in pair:
        await front.close()


async def admits(front: ClusterJobs, user_id: int, work: float, deadline: float, lane: Lane = Lane.PHOTOS) -> bool:
    """Whether `front` admits the request now (it leaves at once)."""
    try:
        async with front.admission(user_id, [work], deadline, lane):
            return True
    except BusyError:
        return False


async def test_a_users_limit_holds_across_fronts(fronts: tuple[ClusterJobs, ClusterJobs]) -> None:
    first, second = fronts
    await announce(first.redis, "machine-1", Announcement(2, CURVE))
    deadline = time.monotonic() + 15

    async with first.admission(user_id=7, estimates=[1.0], deadline=deadline):
        assert not await admits(second, 7, 1.0, deadline)
        assert await admits(second, 8, 1.0, deadline)
    assert await admits(second, 7, 1.0, deadline)


async def test_the_backlog_of_every_front_counts_and_a_new_worker_raises_capacity(
    fronts: tuple[ClusterJobs, ClusterJobs],
) -> None:
    first, second = fronts
    await announce(first.redis, "machine-1", Announcement(1, CURVE))
    deadline = time.monotonic() + 10

    async with first.admission(user_id=1, estimates=[6.0], deadline=deadline):
        # 6 s admitted on one front plus 6 s here, stretched by the headroom, do not fit 10 s on one process...
        with pytest.raises(BusyError) as busy:
            async with second.admission(user_id=2, estimates=[6.0], deadline=deadline):
                pass
        assert busy.value.retry_after == 6
        # ...but do on two, once a second machine has announced itself.
        await announce(first.redis, "machine-2", Announcement(1, CURVE))
        assert await admits(second, 2, 6.0, deadline)


async def test_no_worker_alive_is_unavailable_at_once(fronts: tuple[ClusterJobs, ClusterJobs]) -> None:
    first, _ = fronts
    with pytest.raises(UnavailableError):
        async with first.admission(user_id=1, estimates=[1.0], deadline=time.monotonic() + 15):
            pass


async def test_the_cluster_prices_jobs_at_the_slowest_machines_speed(
    fronts: tuple[ClusterJobs, ClusterJobs],
) -> None:
    first, _ = fronts
    await announce(first.redis, "fast", Announcement(2, CURVE))
    await announce(first.redis, "slow", Announcement(2, [(mp, seconds * 2) for mp, seconds in CURVE]))
    await first.refresh()

    assert first.processes == 4
    assert first.estimate_seconds(JobSize(MediaKind.IMAGE, pixels=2_100_000)) == pytest.approx(2.0)


async def test_messages_are_paced_to_telegrams_limits_across_fronts(redis_server: RedisServer) -> None:
    """One message a second per chat and thirty a second in all, whichever front sends."""
    redis_server.client().flushall()
    fronts = [Redis.from_url(redis_server.url()) for _ in range(2)]
    pacers = [SharedPacing(redis) for redis in fronts]
    sent: list[tuple[int, float]] = []

    async def make_request(bot: Any, method: SendMessage) -> bool:
        sent.append((int(method.chat_id), time.monotonic()))
        return True

    bot: Any = SimpleNamespace(id=42)
    started = time.monotonic()
    await asyncio.gather(
        *(pacers[index % 2](make_request, bot, SendMessage(chat_id=1, text="x")) for index in range(3)),
        *(pacers[index % 2](make_request, bot, SendMessage(chat_id=100 + index, text="x")) for index in range(30)),
    )
    for redis in fronts:
        await redis.aclose()

    same_chat = sorted(at for chat, at in sent if chat == 1)
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(same_chat)), same_chat
    assert max(at for _, at in sent) - started >= 0.9, "33 messages went out faster than 30 a second"


async def test_the_requests_of_a_front_that_died_stop_counting(fronts: tuple[ClusterJobs, ClusterJobs]) -> None:
    """Telegram delivers a dead front's updates again; its admitted work must not keep them out as "busy"."""
    dead, alive = fronts
    await announce(dead.redis, "machine-1", Announcement(1, CURVE))
    deadline = time.monotonic() + 10
    held = dead.admission(user_id=1, estimates=[6.0], deadline=deadline)
    await held.__aenter__()  # admitted, then the front is killed: it never leaves
    assert not await admits(alive, 2, 6.0, deadline)

    await dead.redis.delete(keys.front_key(dead.instance))  # its heartbeat has run out

    assert await admits(alive, 1, 6.0, deadline)


async def test_a_video_admitted_on_one_front_takes_a_process_from_every_fronts_photos(
    fronts: tuple[ClusterJobs, ClusterJobs],
) -> None:
    first, second = fronts
    await announce(first.redis, "machine-1", Announcement(2, CURVE, video_processes=1))
    deadline = time.monotonic() + 9.5
    async with first.admission(user_id=1, estimates=[4.0], deadline=deadline):
        async with first.admission(user_id=2, estimates=[30.0], deadline=time.monotonic() + 300, lane=Lane.VIDEOS):
            # 8 s of photos, with the headroom, do not fit 9.5 s on the one process left...
            assert not await admits(second, 3, 4.0, deadline)
        assert await admits(second, 3, 4.0, deadline)  # ...they do on two


async def test_videos_take_their_turns_across_fronts(fronts: tuple[ClusterJobs, ClusterJobs]) -> None:
    """The oldest waiting video goes first, one per video slot, and not while admitted photos need the process."""
    first, second = fronts
    await announce(first.redis, "machine-1", Announcement(2, CURVE, video_processes=1))
    now = time.monotonic()
    async with (
        first.admission(user_id=1, estimates=[30.0], deadline=now + 300, lane=Lane.VIDEOS) as older,
        second.admission(user_id=2, estimates=[30.0], deadline=now + 301, lane=Lane.VIDEOS) as newer,
    ):
        assert not await second.ledger.take_turn(newer)
        async with second.admission(user_id=3, estimates=[8.0], deadline=time.monotonic() + 9):
            assert not await first.ledger.take_turn(older)  # 8 s of photos need both processes
        assert await first.ledger.take_turn(older)
    later = time.monotonic() + 300
    async with second.admission(user_id=2, estimates=[30.0], deadline=later, lane=Lane.VIDEOS) as video:
        assert await second.ledger.take_turn(video)


async def test_a_live_worker_keeps_its_long_job_and_a_dead_ones_job_is_handed_on(redis_server: RedisServer) -> None:
    """A video runs for minutes, far past the idle time after which a job is given to another worker: the worker
    running it claims it afresh every heartbeat, so only a worker that stopped beating loses its jobs."""
    redis_server.client().flushall()
    redis = Redis.from_url(redis_server.url())
    await redis.xgroup_create(keys.STREAM, keys.GROUP, id="0", mkstream=True)
    for job in ("video", "photo"):
        await redis.xadd(keys.STREAM, {b"data": job.encode()})
    await redis.xreadgroup(keys.GROUP, "busy-worker", {keys.STREAM: ">"}, count=1)
    await redis.xreadgroup(keys.GROUP, "dead-worker", {keys.STREAM: ">"}, count=1)
    idle_ms = 600
    for _ in range(6):  # 0.9 s of heartbeats from the live worker, none from the dead one
        await asyncio.sleep(0.15)
        assert await hold_jobs(redis, "busy-worker") == 1

    _, claimed, _ = await redis.xautoclaim(keys.STREAM, keys.GROUP, "other-worker", min_idle_time=idle_ms)
    await redis.aclose()

    assert [fields[b"data"] for _, fields in claimed] == [b"photo"], "only the dead worker's job is handed on"


async def test_what_is_planted_in_the_ledger_or_the_heartbeats_is_ignored_and_admission_goes_on(
    fronts: tuple[ClusterJobs, ClusterJobs],
) -> None:
    """Someone who can write to Redis plants entries that are not tickets or announcements: a front neither crashes
    nor counts them, and the planted ticket is swept away."""
    first, _ = fronts
    await announce(first.redis, "machine-1", Announcement(2, CURVE))
    await first.redis.hset(keys.WORKER_INFO, "planted", '{"processes": "many", "curve": []}')
    await first.redis.zadd(keys.WORKERS, {"planted": time.time() + 60})
    await first.redis.hset(keys.ADMITTED, "planted", "not a ticket")
    await first.redis.hset(keys.ADMITTED, "typed", '{"id": "typed", "user_id": 1, "lane": "photos", "work": "x"}')

    await first.refresh()
    async with first.admission(user_id=1, estimates=[1.0], deadline=time.monotonic() + 15):
        assert not await first.redis.hexists(keys.ADMITTED, "planted")
        assert not await first.redis.hexists(keys.ADMITTED, "typed")
    assert first.processes == 2
