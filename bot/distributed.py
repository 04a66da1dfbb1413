"""Distributed mode: jobs travel over Redis with taskiq (Redis Streams with acknowledgement) to any number of worker
machines (`python -m bot.worker`); what every front must share lives in Redis too.

- The job's input and output bytes wait in Redis keys of their own (with a TTL of the request's budget), not in
  the stream: stream entries stay in memory until trimmed, and a key can be deleted the moment the job is done.
  The stream entry carries only the job's id, kind, filter, deadline and front; the outcome (without the bytes) comes
  back through taskiq's result backend. Everything is JSON or raw bytes: nothing read from Redis is unpickled.
- A worker machine that dies leaves its jobs unacknowledged; taskiq-redis hands them to another worker once they
  have been idle for REDELIVER_AFTER_MS. A live worker claims its jobs afresh every heartbeat (`hold_jobs`), so a
  video that runs for minutes is never handed out twice. A job whose deadline has passed, or whose front is gone
  (nobody would read its result; Telegram delivers that front's updates again), is never started.
- Videos go through the same queue. Admission keeps them in a lane of their own (bot.admission): a video ticket
  waits until the cluster has a video slot and the admitted photos still fit on the processes left, and only then
  is its job queued. Its progress comes back through a Redis key the worker updates and the front reads.
- Admission uses the cluster's real state: the work admitted by every front (a ledger in Redis, each entry leaving
  at its request's deadline or when its front's heartbeat stops, so a front that dies leaks nothing) and the
  worker processes alive (each worker machine publishes its process count and speed every second).
- Only the front answers users, once per request; updates Telegram delivers again (a front restarted mid-burst,
  a webhook retried) are claimed in Redis by update id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import StreamIdT
from taskiq import AsyncResultBackend
from taskiq.exceptions import SendTaskError
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from anonymizer.options import Detection, Result
from bot import jobs, metrics
from bot.admission import (
    ESTIMATE_HEADROOM,
    PHOTOS,
    VIDEOS,
    BusyError,
    JobSize,
    SpeedModel,
    UnavailableError,
    lane_of,
)
from bot.jobs import DeadlineExceededError, Job, Progress

logger = logging.getLogger(__name__)

PREFIX = "photo-anon"
STREAM = f"{PREFIX}:jobs"
GROUP = f"{PREFIX}:workers"
TASK_NAME = "photo_anon.run_job"
# A job idle this long in a worker that took it is handed to another worker: a live worker claims its jobs afresh
# every heartbeat, so this only passes for a worker that died; short enough to matter within a photo's budget.
REDELIVER_AFTER_MS = 10_000
# A worker claims its jobs afresh only when they have been idle this long, so that it never takes back a job that
# another worker has just been handed.
HOLD_MIN_IDLE_MS = 500
# The stream keeps this many entries (ids and options only); older ones are trimmed.
STREAM_LENGTH = 10_000
# Results wait this long for their front to read them; the front deletes them as soon as it has.
RESULT_TTL_S = 60
# Worker machines and fronts say they are alive this often, and are taken for dead after HEARTBEAT_TTL_S.
HEARTBEAT_S = 1.0
HEARTBEAT_TTL_S = 3.5
# How often a waiting front looks for a result, for a video's progress, and whether its video may start.
RESULT_POLL_S = 0.02
PROGRESS_POLL_S = 0.5
TURN_POLL_S = 0.25
# A handled update is remembered this long, so a delivery again is not answered twice.
UPDATE_MEMORY_S = 24 * 3600
WORKERS_KEY = f"{PREFIX}:workers:alive"
WORKER_INFO = f"{PREFIX}:workers:info"
ADMITTED = f"{PREFIX}:admitted"
ADMITTED_WORK = f"{PREFIX}:admitted:work"
ADMITTED_JOBS = f"{PREFIX}:admitted:jobs"
ADMITTED_OWNERS = f"{PREFIX}:admitted:owners"
# Video tickets: "w" while waiting for a worker process, "r" once they hold one.
ADMITTED_VIDEOS = f"{PREFIX}:admitted:videos"
VIDEO_INFO = f"{WORKER_INFO}:videos"
VIDEO_SPEED = f"{WORKER_INFO}:video-speed"


def input_key(job_id: str) -> str:
    return f"{PREFIX}:input:{job_id}"


def output_key(job_id: str) -> str:
    return f"{PREFIX}:output:{job_id}"


def progress_key(job_id: str) -> str:
    return f"{PREFIX}:progress:{job_id}"


def result_summary(result: Result) -> dict[str, Any]:
    """A Result without its bytes, as JSON can carry it (taskiq's messages and results are JSON documents)."""
    return {
        "format": result.format,
        "width": result.width,
        "height": result.height,
        "detections": [[d.x, d.y, d.w, d.h, d.score, d.detector] for d in result.detections],
        "timings": result.timings,
        "input_format": result.input_format,
        "kind": result.kind,
        "frames": result.frames,
        "tracks": result.tracks,
        "duration": result.duration,
    }


def rebuilt_result(summary: dict[str, Any], data: bytes) -> Result:
    detections = [
        Detection(int(x), int(y), int(w), int(h), float(score), str(name))
        for x, y, w, h, score, name in summary["detections"]
    ]
    return Result(
        data=data,
        format=summary["format"],
        width=summary["width"],
        height=summary["height"],
        detections=detections,
        timings=summary["timings"],
        input_format=summary["input_format"],
        kind=summary["kind"],
        frames=summary["frames"],
        tracks=summary["tracks"],
        duration=summary["duration"],
    )


def user_key(user_id: int) -> str:
    return f"{PREFIX}:user:{user_id}"


def update_key(bot_id: int, update_id: int) -> str:
    return f"{PREFIX}:update:{bot_id}:{update_id}"


def front_key(instance: str) -> str:
    return f"{PREFIX}:front:{instance}"


def redis_client_settings() -> dict[str, Any]:
    """A command that meets a connection Redis closed (a restart) is retried on a fresh one, so a Redis that came
    back costs nothing; one that stays away fails within seconds, not minutes."""
    return {
        "socket_timeout": 5,
        "socket_connect_timeout": 2,
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def create_broker(redis_url: str) -> RedisStreamBroker:
    """taskiq's Redis Streams broker (one message at a time per free process, acknowledged when the result is
    saved) and its Redis result backend (each result expiring, and deleted once read)."""
    broker = RedisStreamBroker(
        redis_url,
        queue_name=STREAM,
        consumer_group_name=GROUP,
        consumer_id="0",  # a group created after a Redis restart still sees the jobs added before it
        xread_count=1,
        idle_timeout=REDELIVER_AFTER_MS,
        unacknowledged_lock_timeout=5,
        maxlen=STREAM_LENGTH,
        **redis_client_settings(),
    )
    backend: Any = RedisAsyncResultBackend(
        redis_url, result_ex_time=RESULT_TTL_S, keep_results=False, **redis_client_settings()
    )
    return broker.with_result_backend(backend)


def wall_clock(deadline: float) -> float:
    """A time.monotonic() deadline as a Unix time, which means the same on every machine (clocks kept by NTP)."""
    return time.time() + (deadline - time.monotonic())


# What the admission and turn scripts share. KEYS: admitted, work, jobs, owners, user, workers alive, worker info,
# video tickets, video slots per worker. ARGV[1] is now; ARGV[10..12] this front's id, the key prefix of the fronts'
# heartbeats and the heartbeat's lifetime (ms). It forgets the tickets past their deadline or of a front that is
# gone (a front killed mid-burst must not keep the requests Telegram delivers again out), and sums up the cluster:
# worker processes, video slots, and per lane the work and tickets admitted.
CLUSTER_STATE = """
local now = tonumber(ARGV[1])
redis.call('SET', ARGV[11] .. ARGV[10], 1, 'PX', ARGV[12])
local function forget(ticket)
  local owner = redis.call('HGET', KEYS[4], ticket)
  if owner then
    local sep = string.find(owner, '|', 1, true)
    redis.call('ZREM', string.sub(owner, sep + 1), ticket)
  end
  redis.call('ZREM', KEYS[1], ticket)
  redis.call('HDEL', KEYS[2], ticket)
  redis.call('HDEL', KEYS[3], ticket)
  redis.call('HDEL', KEYS[4], ticket)
  redis.call('HDEL', KEYS[8], ticket)
end
local tickets = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for index = 1, #tickets, 2 do
  local ticket, expires = tickets[index], tonumber(tickets[index + 1])
  local owner = redis.call('HGET', KEYS[4], ticket)
  local front = owner and string.sub(owner, 1, string.find(owner, '|', 1, true) - 1)
  if expires <= now or (front and redis.call('EXISTS', ARGV[11] .. front) == 0) then forget(ticket) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now)
local capacity, slots = 0, 0
for _, worker in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
  capacity = capacity + (tonumber(redis.call('HGET', KEYS[7], worker)) or 0)
  slots = slots + (tonumber(redis.call('HGET', KEYS[9], worker)) or 1)
end
local video_capacity = math.max(1, math.min(capacity, slots))
local photo_backlog, photo_jobs, photo_tickets, earliest = 0, 0, 0, nil
local video_backlog, videos, running = 0, 0, 0
local oldest_waiting, oldest_deadline = nil, nil
local ordered = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for index = 1, #ordered, 2 do
  local ticket, deadline = ordered[index], tonumber(ordered[index + 1])
  local work = tonumber(redis.call('HGET', KEYS[2], ticket)) or 0
  local state = redis.call('HGET', KEYS[8], ticket)
  if state then
    video_backlog = video_backlog + work
    videos = videos + 1
    if state == 'r' then running = running + 1
    elseif not oldest_waiting then oldest_waiting, oldest_deadline = ticket, deadline end
  else
    photo_backlog = photo_backlog + work
    photo_jobs = photo_jobs + (tonumber(redis.call('HGET', KEYS[3], ticket)) or 0)
    photo_tickets = photo_tickets + 1
    if not earliest then earliest = deadline end
  end
end
"""

# The admission decision, atomic across fronts (bot.admission has the rules and the lanes). ARGV beyond the shared
# ones: ticket, work, job count, deadline, reply reserve, per-user limit, queue limit, headroom, lane, video queue
# limit. Returns {0} when admitted, {1, retry_after} when busy, {2} when no worker is alive.
ADMIT_SCRIPT = (
    CLUSTER_STATE
    + """
if capacity == 0 then return {2} end
local work, count, deadline = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local reserve, headroom = tonumber(ARGV[6]), tonumber(ARGV[9])
local busy, retry
if ARGV[13] == 'videos' then
  retry = math.max(1, math.ceil(video_backlog / video_capacity))
  busy = videos >= tonumber(ARGV[14])
    or (videos > 0 and now + (video_backlog + work) * headroom / video_capacity > deadline - reserve)
else
  local photo_capacity = capacity - math.min(videos, video_capacity)
  retry = math.max(1, math.ceil(photo_backlog / math.max(1, photo_capacity)))
  if photo_capacity <= 0 then retry = math.max(1, math.ceil(video_backlog)) end
  busy = photo_jobs + count > tonumber(ARGV[8]) or photo_capacity <= 0
    or (photo_tickets > 0 and now + (photo_backlog + work) * headroom / photo_capacity > deadline - reserve)
end
if busy or redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[7]) then return {1, retry} end
redis.call('ZADD', KEYS[1], deadline, ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], work)
redis.call('HSET', KEYS[3], ARGV[2], count)
redis.call('HSET', KEYS[4], ARGV[2], ARGV[10] .. '|' .. KEYS[5])
if ARGV[13] == 'videos' then redis.call('HSET', KEYS[8], ARGV[2], 'w') end
redis.call('ZADD', KEYS[5], deadline, ARGV[2])
redis.call('EXPIREAT', KEYS[5], math.ceil(deadline) + 1)
return {0}
"""
)

# A video's turn: may the oldest waiting video take a worker process now (bot.admission.video_may_start)? ARGV
# beyond the shared ones: ticket, reply reserve, headroom. Returns 1 (it holds a process from now on), 0 (not yet)
# or -1 (the ticket is gone).
TURN_SCRIPT = (
    CLUSTER_STATE
    + """
local state = redis.call('HGET', KEYS[8], ARGV[2])
if state == 'r' then return 1 end
if not state then return -1 end
if capacity == 0 or oldest_waiting ~= ARGV[2] or running >= video_capacity then return 0 end
if earliest then
  local left = capacity - running - 1
  if left <= 0 then return 0 end
  if now + photo_backlog * tonumber(ARGV[4]) / left > earliest - tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[8], ARGV[2], 'r')
return 1
"""
)

# Claim an update for this front. KEYS: the update's key. ARGV: this front's id, the claim's lifetime, key prefix of
# the fronts' heartbeats. Returns "done" (answered already), "claimed" (ours now) or "held" (a live front has it).
CLAIM_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == 'done' then return 'done' end
if holder and holder ~= ARGV[1] and redis.call('EXISTS', ARGV[3] .. holder) == 1 then return 'held' end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 'claimed'
"""


async def announce(
    redis: Redis,
    identity: str,
    processes: int,
    curve: list[tuple[float, float]],
    video_processes: int = 1,
    video_slowdown: float = 1.0,
) -> None:
    """A worker machine's heartbeat: how many jobs it runs at once (and of them, videos), its cost curve and how
    much slower than priced it runs videos, valid for HEARTBEAT_TTL_S."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(WORKER_INFO, identity, processes)
        pipe.hset(f"{WORKER_INFO}:speed", identity, json.dumps(curve))
        pipe.hset(VIDEO_INFO, identity, video_processes)
        pipe.hset(VIDEO_SPEED, identity, video_slowdown)
        pipe.zadd(WORKERS_KEY, {identity: time.time() + HEARTBEAT_TTL_S})
        await pipe.execute()


async def withdraw(redis: Redis, identity: str) -> None:
    """A worker machine leaving on a graceful stop, rather than when its heartbeat runs out."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.zrem(WORKERS_KEY, identity)
        for info in (WORKER_INFO, f"{WORKER_INFO}:speed", VIDEO_INFO, VIDEO_SPEED):
            pipe.hdel(info, identity)
        await pipe.execute()


async def hold_jobs(redis: Redis, consumer: str) -> int:
    """Claim this worker's unacknowledged jobs afresh (their idle time starts again), so that no other worker takes
    over a job that is still running here, however long it runs. Returns how many it holds."""
    pending = await redis.xpending_range(STREAM, GROUP, min="-", max="+", count=STREAM_LENGTH, consumername=consumer)
    ids: list[StreamIdT] = [entry["message_id"] for entry in pending]
    if ids:
        await redis.xclaim(STREAM, GROUP, consumer, min_idle_time=HOLD_MIN_IDLE_MS, message_ids=ids, justid=True)
    return len(ids)


class ClusterView:
    """What a front knows of the worker machines: their processes and their speed (the slowest machine's, for
    images and videos), refreshed every heartbeat."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.speed = SpeedModel()
        self.processes = 0

    async def refresh(self) -> None:
        # Without `withscores` the reply is the members alone; the client's stubs cannot tell the two replies apart.
        alive = cast(list[bytes], await self.redis.zrangebyscore(WORKERS_KEY, time.time(), "+inf"))
        counts = await self.redis.hmget(WORKER_INFO, alive) if alive else []
        curves = (
            [json.loads(raw) for raw in await self.redis.hmget(f"{WORKER_INFO}:speed", alive) if raw] if alive else []
        )
        self.processes = sum(int(count or 0) for count in counts)
        slowdowns = [float(raw) for raw in await self.redis.hmget(VIDEO_SPEED, alive) if raw] if alive else []
        if slowdowns:
            self.speed.video_slowdown = max(slowdowns)
        if curves:
            # The slowest machine's price at each calibration size (every machine times the same sizes): admission
            # must hold for whichever worker gets the job.
            sizes = [megapixels for megapixels, _ in curves[0]]
            self.speed.calibrated([(mp, max(curve[index][1] for curve in curves)) for index, mp in enumerate(sizes)])
        metrics.WORKERS_ALIVE.set(self.processes)


@dataclass(frozen=True)
class ClusterTicket:
    """An admitted request in the cluster's ledger: its id there, its user and its lane."""

    id: str
    user_id: int
    lane: str


class QueueService:
    """The distributed job service of a front: admission from Redis, jobs through taskiq to the worker machines."""

    def __init__(
        self,
        redis_url: str,
        *,
        queue_limit: int,
        per_user_limit: int,
        reply_reserve: float = 1.5,
        video_queue_limit: int = 4,
    ) -> None:
        self.redis: Redis = Redis.from_url(redis_url, **redis_client_settings())
        self.broker = create_broker(redis_url)
        self.queue_limit = queue_limit
        self.per_user_limit = per_user_limit
        self.reply_reserve = reply_reserve
        self.video_queue_limit = video_queue_limit
        self.cluster = ClusterView(self.redis)
        self._admit = self.redis.register_script(ADMIT_SCRIPT)
        self._turn = self.redis.register_script(TURN_SCRIPT)
        self._kicker: AsyncKicker[Any, Any] = AsyncKicker(TASK_NAME, self.broker, {})
        self._started = False
        # This front's id: its admitted requests and its claims on updates are its own while its heartbeat lives.
        self.instance = uuid.uuid4().hex
        self._heartbeat: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and start this front's heartbeat; a Redis that is down now is no reason not to start (users are
        told, and it is retried)."""
        self._heartbeat = asyncio.create_task(self._beat())
        try:
            await self.broker.startup()
            await self.cluster.refresh()
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
                await self.redis.set(front_key(self.instance), 1, px=int(HEARTBEAT_TTL_S * 1000))
            await asyncio.sleep(HEARTBEAT_S)

    async def healthy(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except (RedisError, OSError):
            return False

    async def watch_cluster(self) -> None:
        """Keep the view of the workers fresh (runs until cancelled)."""
        while True:
            try:
                if not self._started:
                    await self.broker.startup()
                    self._started = True
                await self.cluster.refresh()
                metrics.QUEUE_DEPTH.set(sum(int(n) for n in await self.redis.hvals(ADMITTED_JOBS)))
            except (RedisError, OSError):
                metrics.WORKERS_ALIVE.set(0)
            await asyncio.sleep(HEARTBEAT_S / 2)

    def estimate_seconds(self, job: JobSize) -> float:
        return self.cluster.speed.estimate_seconds(job)

    def _keys(self, user_id: int) -> list[str]:
        return [
            ADMITTED,
            ADMITTED_WORK,
            ADMITTED_JOBS,
            ADMITTED_OWNERS,
            user_key(user_id),
            WORKERS_KEY,
            WORKER_INFO,
            ADMITTED_VIDEOS,
            VIDEO_INFO,
        ]

    def _front_args(self) -> list[Any]:
        """ARGV 10 to 12 of the scripts: this front and its heartbeat."""
        return [self.instance, front_key(""), int(HEARTBEAT_TTL_S * 1000)]

    @asynccontextmanager
    async def admission(
        self, user_id: int, estimates: list[float], deadline: float, lane: str = PHOTOS
    ) -> AsyncIterator[ClusterTicket]:
        ticket = ClusterTicket(uuid.uuid4().hex, user_id, lane)
        until = wall_clock(deadline)
        args = [
            time.time(),
            ticket.id,
            sum(estimates),
            len(estimates),
            until,
            self.reply_reserve,
            self.per_user_limit,
            self.queue_limit,
            ESTIMATE_HEADROOM,
            *self._front_args(),
            lane,
            self.video_queue_limit,
        ]
        try:
            decision = await self._admit(keys=self._keys(user_id), args=args)
        except (RedisError, OSError) as error:
            logger.warning("admission: Redis unreachable (%s)", type(error).__name__)
            raise UnavailableError from None
        if decision[0] == 2:
            raise UnavailableError
        if decision[0] == 1:
            raise BusyError(int(decision[1]))
        try:
            yield ticket
        finally:
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.zrem(ADMITTED, ticket.id)
                    for ledger in (ADMITTED_WORK, ADMITTED_JOBS, ADMITTED_OWNERS, ADMITTED_VIDEOS):
                        pipe.hdel(ledger, ticket.id)
                    pipe.zrem(user_key(user_id), ticket.id)
                    await pipe.execute()
            except (RedisError, OSError) as error:  # the entries expire with the deadline anyway
                logger.warning("admission: could not release (%s)", type(error).__name__)

    async def _wait_for_turn(self, ticket: ClusterTicket, stop_at: float) -> None:
        """Until the cluster lets this video take a worker process (bot.admission); DeadlineExceededError when the
        budget runs out first, UnavailableError when the ticket is gone (Redis lost it)."""
        while True:
            args = [time.time(), ticket.id, self.reply_reserve, ESTIMATE_HEADROOM, 0, 0, 0, 0, 0, *self._front_args()]
            try:
                turn = await self._turn(keys=self._keys(ticket.user_id), args=args)
            except (RedisError, OSError):
                turn = 0  # Redis restarting: the deadline says when to stop waiting
            if turn == 1:
                return
            if turn == -1:
                raise UnavailableError
            if time.monotonic() >= stop_at:
                raise DeadlineExceededError
            await asyncio.sleep(TURN_POLL_S)

    async def run(
        self,
        jobs_to_run: list[Job],
        deadline: float,
        *,
        ticket: ClusterTicket | None = None,
        progress: Progress | None = None,
    ) -> list[Result | Exception]:
        """Queue every job (a video once it has its turn), then wait for each result until the deadline; a Redis
        that fails meanwhile is retried until then. Raises DeadlineExceededError when a result is still missing at
        the deadline."""
        stop_at = deadline - self.reply_reserve
        if ticket is not None and ticket.lane == VIDEOS:
            await self._wait_for_turn(ticket, stop_at)
            if progress is not None:
                progress(0, 0)
        until = wall_clock(stop_at)
        ids = [uuid.uuid4().hex for _ in jobs_to_run]
        try:
            for job_id, job in zip(ids, jobs_to_run, strict=True):
                ttl_ms = max(1, int((stop_at - time.monotonic()) * 1000) + 1000)
                await self.redis.set(input_key(job_id), job.data, px=ttl_ms)
                kicker = self._kicker.with_task_id(job_id)
                await kicker.kiq(job_id, job.kind, job.options.filter, until, self.instance, job.strict)
        except (RedisError, OSError, SendTaskError) as error:
            logger.warning("queueing failed: Redis unreachable (%s)", type(error).__name__)
            await self._forget(ids)
            raise UnavailableError from None
        try:
            return list(
                await asyncio.gather(
                    *(
                        self._result(job_id, stop_at, progress if lane_of(job.kind) == VIDEOS else None)
                        for job_id, job in zip(ids, jobs_to_run, strict=True)
                    )
                )
            )
        finally:
            await self._forget(ids)

    async def _result(self, job_id: str, stop_at: float, progress: Progress | None = None) -> Result | Exception:
        # The task returns an outcome, which crosses as a JSON list; taskiq types the broker's backend with a free
        # type variable.
        backend = cast(AsyncResultBackend[list[Any]], self.broker.result_backend)
        next_progress = time.monotonic()
        while time.monotonic() < stop_at:
            try:
                if progress is not None and time.monotonic() >= next_progress:
                    next_progress = time.monotonic() + PROGRESS_POLL_S
                    if report := await self.redis.get(progress_key(job_id)):
                        done, total = (int(part) for part in report.split())
                        progress(done, total)
                if await backend.is_result_ready(job_id):
                    result = await backend.get_result(job_id)
                    if result.is_err:
                        return jobs.WorkerFailedError(type(result.error).__name__)
                    outcome = tuple(result.return_value)
                    if outcome[0] != "done":
                        return jobs.outcome_value(outcome)
                    data = await self.redis.getdel(output_key(job_id))
                    if data is None:
                        return jobs.WorkerFailedError("ResultMissing")
                    assert isinstance(data, bytes)  # the client does not decode replies
                    return rebuilt_result(outcome[1], data)
            except (RedisError, OSError):
                pass  # Redis restarting: the job may be lost, the deadline says when to stop hoping
            await asyncio.sleep(RESULT_POLL_S)
        raise DeadlineExceededError

    async def _forget(self, ids: list[str]) -> None:
        """No input waits in Redis for a job nobody will read the result of."""
        with suppress(RedisError, OSError):
            keys = (input_key, output_key, progress_key)
            await self.redis.delete(*(key(job_id) for job_id in ids for key in keys))


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


class DeduplicateUpdates(BaseMiddleware):
    """Answer every update once, whichever front receives it and however often Telegram delivers it.

    An update is claimed in Redis by this front's id before it is handled and marked done after. A delivery again
    of an update that is done is dropped; one whose claim belongs to a front that is gone is taken over; one still
    held by a live front waits until that front is done or gone. Without Redis no update can be claimed, and the
    user is told the bot is unavailable for now.

    The messages of an album are handled by the first one's handler (the others return at once), so they are all
    marked done together when the last handler of the album returns: a front that dies mid-album leaves every
    one of them to be delivered again.
    """

    def __init__(self, redis: Redis, instance: str, wait_limit: float) -> None:
        self.redis = redis
        self.instance = instance
        self.wait_limit = wait_limit
        self._claim = redis.register_script(CLAIM_SCRIPT)
        self._albums: dict[tuple[int, str], tuple[int, list[str]]] = {}

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        assert isinstance(event, Update)
        key = update_key(data["bot"].id, event.update_id)
        try:
            claimed = await self._claim_when_free(key)
        except (RedisError, OSError) as error:
            logger.warning("update %d: Redis unreachable (%s)", event.update_id, type(error).__name__)
            await self._tell_unavailable(event, data)
            return None
        if not claimed:
            logger.info("update %d was answered already; dropped", event.update_id)
            return None
        album = None
        if event.message is not None and event.message.media_group_id is not None:
            album = (event.message.chat.id, event.message.media_group_id)
            running, keys = self._albums.get(album, (0, []))
            self._albums[album] = (running + 1, keys)
        try:
            return await handler(event, data)
        finally:
            await self._mark_done(key, album)

    async def _mark_done(self, key: str, album: tuple[int, str] | None) -> None:
        keys = [key]
        if album is not None:
            running, waiting = self._albums.pop(album)
            if running > 1:
                self._albums[album] = (running - 1, [*waiting, key])
                return
            keys = [*waiting, key]
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for done_key in keys:
                    pipe.set(done_key, "done", ex=UPDATE_MEMORY_S)
                await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("%d update(s) not marked done (%s)", len(keys), type(error).__name__)

    async def _claim_when_free(self, key: str) -> bool:
        give_up = time.monotonic() + self.wait_limit
        while True:
            state = await self._claim(keys=[key], args=[self.instance, UPDATE_MEMORY_S, front_key("")])
            state = state.decode() if isinstance(state, bytes) else state
            if state != "held" or time.monotonic() > give_up:
                return state == "claimed"
            await asyncio.sleep(0.25)

    @staticmethod
    async def _tell_unavailable(event: Update, data: dict[str, Any]) -> None:
        texts = data.get("texts")
        if texts is None:
            return
        with suppress(Exception):
            if event.message is not None:
                await event.message.reply(texts.unavailable)
                metrics.REQUESTS.labels("unavailable").inc()
            elif event.callback_query is not None:
                await event.callback_query.answer(texts.unavailable, show_alert=True)
