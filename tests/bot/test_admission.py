"""Admission's one set of rules, run scenario by scenario against both ledgers: the embedded bot's memory and the
cluster's Redis (a real redis-server). A scenario is a row of steps, each with the answer it must get; a ledger that
drifted from the rules fails the row on that ledger alone."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import pytest
from redis.asyncio import Redis

from bot.admission import (
    BusyError,
    Capacity,
    Lane,
    Limits,
    LocalLedger,
    Ticket,
    UnavailableError,
)
from bot.cluster import keys
from bot.cluster.ledger import RedisLedger
from bot.cluster.workers import Announcement, announce
from testing.cluster import RedisServer

ADMITTED, UNAVAILABLE = "admitted", "unavailable"


def busy(retry_after: int) -> tuple[str, int]:
    return ("busy", retry_after)


class Harness(Protocol):
    ledger: Any

    async def workers(self, processes: int, video_slots: int) -> None: ...


class Clock:
    """The ledgers' time, moved on by the scenario instead of waited for."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class Run:
    """One scenario's ledger under test, its clock, and the tickets its steps named."""

    def __init__(self, harness: Harness, clock: Clock) -> None:
        self.harness, self.ledger, self.clock = harness, harness.ledger, clock
        self.tickets: dict[str, Ticket] = {}
        self.order = itertools.count()


# A step of a scenario: something that happens to the ledger, with the answer it must get.
Step = Callable[[Run], Awaitable[None]]


async def answer(attempt: Awaitable[object]) -> object:
    try:
        await attempt
    except BusyError as refused:
        return busy(refused.retry_after)
    except UnavailableError:
        return UNAVAILABLE
    return ADMITTED


def admit(
    name: str,
    user: int,
    work: float,
    seconds: float = 15.0,
    lane: Lane = Lane.PHOTOS,
    pictures: int = 1,
    expect: object = ADMITTED,
) -> Step:
    """A request: `name` names its ticket for later steps; `seconds` is its budget from now."""

    async def happen(run: Run) -> None:
        run.clock.now += 0.001  # every request arrives after the one before
        now = run.clock.now
        ticket = Ticket(f"{name}-{next(run.order)}", user, lane, work, pictures, now + seconds, now, front="front-1")
        assert await answer(run.ledger.admit(ticket)) == expect, f"admit {name}"
        run.tickets[name] = ticket

    return happen


def reprice(name: str, work: float, expect: object = ADMITTED) -> Step:
    """The request's files were read: its real price."""

    async def happen(run: Run) -> None:
        async def attempt() -> None:
            ticket = run.tickets[name]
            run.tickets[name] = await run.ledger.reprice(ticket, work, ticket.pictures)

        assert await answer(attempt()) == expect, f"reprice {name} at {work} s"

    return happen


def release(name: str) -> Step:
    async def happen(run: Run) -> None:
        await run.ledger.release(run.tickets[name])

    return happen


def turn(name: str, expect: bool) -> Step:
    """May this video take a worker process now?"""

    async def happen(run: Run) -> None:
        assert await run.ledger.take_turn(run.tickets[name]) is expect, f"turn of {name}"

    return happen


def advance(seconds: float) -> Step:
    async def happen(run: Run) -> None:
        run.clock.now += seconds

    return happen


def workers(processes: int, video_slots: int = 1) -> Step:
    """The worker processes alive change (a machine joins, or every one is gone)."""

    async def happen(run: Run) -> None:
        await run.harness.workers(processes, video_slots)

    return happen


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    processes: int = 2
    video_slots: int = 1
    queue_limit: int = 40
    per_user_limit: int = 2
    video_queue_limit: int = 4

    def limits(self) -> Limits:
        return Limits(self.queue_limit, self.per_user_limit, self.video_queue_limit, reply_reserve=0.0)


SCENARIOS = [
    Scenario(
        "a user's requests in flight are limited, other users' are not",
        (
            admit("first", user=7, work=1.0),
            admit("again", user=7, work=1.0, expect=busy(1)),
            admit("other", user=8, work=1.0),
            release("first"),
            admit("later", user=7, work=1.0),
        ),
        per_user_limit=1,
        queue_limit=10,
    ),
    Scenario(
        "the backlog counts, a worker that appears raises the capacity",
        (
            admit("six", user=1, work=6.0, seconds=10),
            # 6 s admitted plus 6 s, stretched by the headroom, do not fit 10 s on one process...
            admit("six more", user=2, work=6.0, seconds=10, expect=busy(6)),
            workers(2),
            # ...but do on two.
            admit("on two", user=2, work=6.0, seconds=10),
        ),
        processes=1,
    ),
    Scenario(
        "all workers gone: unavailable at once, and back when one returns",
        (workers(0), admit("none", user=1, work=1.0, expect=UNAVAILABLE), workers(1), admit("one", user=1, work=1.0)),
    ),
    Scenario(
        "the plan leaves room for jobs slower than the learned speed",
        (
            admit("four", user=1, work=4.0, seconds=9.5),
            # 8 s of planned work fits the 9.5 s left at the learned speed, but not 25 % slower: "busy" now beats an
            # apology at the deadline.
            admit("four more", user=2, work=4.0, seconds=9.5, expect=busy(4)),
            admit("three", user=3, work=3.0, seconds=9.5),
        ),
        processes=1,
    ),
    Scenario(
        "an idle lane takes any request, a busy one only what fits the deadline",
        (
            admit("huge", user=1, work=60.0, seconds=15),
            admit("small", user=2, work=0.5, seconds=15, expect=busy(30)),
            release("huge"),
            admit("small again", user=2, work=0.5, seconds=15),
        ),
    ),
    Scenario(
        "an album counts its pictures against the queue limit",
        (
            admit("album", user=1, work=8.0, pictures=8),
            admit("another album", user=2, work=3.0, pictures=3, expect=busy(4)),
            admit("one photo", user=2, work=1.0),
        ),
        queue_limit=9,
        per_user_limit=10,
    ),
    Scenario(
        "a user's pictures in flight are limited, an album counting each of its pictures",
        (
            admit("album", user=1, work=8.0, pictures=8),
            admit("another album", user=1, work=3.0, pictures=3, expect=busy(4)),
            admit("two photos", user=1, work=2.0, pictures=2),
            admit("one more", user=1, work=1.0, expect=busy(5)),
            admit("someone else's", user=2, work=1.0),
        ),
        per_user_limit=10,
    ),
    Scenario(
        "a request priced again once its file was read keeps its place only if it still fits",
        (
            admit("photos", user=1, work=4.0, seconds=9.5),
            admit("file", user=2, work=1.0, seconds=9.5),
            reprice("file", work=12.0, expect=busy(2)),  # (4 + 12) x 1.25 / 2 processes > 9.5 s
            reprice("file", work=3.0),
            admit("one more", user=3, work=9.0, seconds=9.5, expect=busy(4)),  # at the file's old price it fitted
        ),
    ),
    Scenario(
        "a file priced again after its download is judged as of its admission, not of the seconds since",
        (
            admit("photos", user=1, work=6.0, seconds=10),
            admit("file", user=2, work=1.0, seconds=10),
            advance(6),  # the download took a while: 6 s + (6 + 2) s x 1.25 / 2 would end past 10 s
            reprice("file", work=2.0),
            reprice("file", work=0.5),  # a lower price always stands
        ),
    ),
    Scenario(
        "a request past its deadline stops counting",
        (
            admit("stuck", user=1, work=14.0, seconds=15),
            admit("waiting", user=2, work=1.0, expect=busy(14)),
            advance(16),
            admit("after", user=2, work=1.0),
        ),
        processes=1,
    ),
    Scenario(
        "a user with a video in flight sends a photo: the video still counts after the photo's deadline",
        (
            admit("video", user=1, work=30.0, seconds=300, lane=Lane.VIDEOS),
            admit("photo", user=1, work=1.0, seconds=15),
            release("photo"),
            advance(20),
            admit("second video", user=1, work=30.0, seconds=300, lane=Lane.VIDEOS),
            admit("third video", user=1, work=30.0, seconds=300, lane=Lane.VIDEOS, expect=busy(15)),
        ),
        processes=4,
        video_slots=4,
    ),
    Scenario(
        "an admitted video takes its process out of the photos' plan",
        (
            admit("photos", user=1, work=4.0, seconds=9.5),
            # 8 s of photos on two processes fits 9.5 s with the headroom...
            admit("more photos", user=2, work=4.0, seconds=9.5),
            release("more photos"),
            admit("video", user=3, work=30.0, seconds=300, lane=Lane.VIDEOS),
            # ...but not on the one process a video leaves.
            admit("too many photos", user=2, work=4.0, seconds=9.5, expect=busy(4)),
            release("video"),
            admit("photos again", user=2, work=4.0, seconds=9.5),
        ),
    ),
    Scenario(
        "a video starts only when the admitted photos still fit on the processes left",
        (
            admit("photos", user=1, work=8.0, seconds=9),
            admit("video", user=2, work=30.0, seconds=300, lane=Lane.VIDEOS),
            # 8 s of photos fit 9 s on two processes; 10 s with the headroom is too much for one.
            turn("video", expect=False),
            release("photos"),
            admit("half the photos", user=1, work=4.0, seconds=9),
            turn("video", expect=True),
            turn("video", expect=True),  # once started, a video keeps its process
        ),
    ),
    Scenario(
        "videos take their turns in order on the video slots",
        (
            admit("first", user=1, work=30.0, seconds=300, lane=Lane.VIDEOS),
            admit("second", user=2, work=30.0, seconds=300, lane=Lane.VIDEOS),
            turn("second", expect=False),  # the first video admitted goes first
            turn("first", expect=True),
            turn("second", expect=False),  # one video slot
            release("first"),
            turn("second", expect=True),
        ),
        video_queue_limit=3,
    ),
    Scenario(
        "the video lane is refused when full or too late, photos while the only process holds a video",
        (
            admit("running", user=1, work=60.0, seconds=100, lane=Lane.VIDEOS),
            turn("running", expect=True),
            # 120 s of video, stretched by the headroom, cannot end within 100 s.
            admit("late", user=2, work=60.0, seconds=100, lane=Lane.VIDEOS, expect=busy(60)),
            admit("photo", user=3, work=0.5, expect=busy(60)),  # the only process is the video's
            admit("second", user=2, work=10.0, seconds=100, lane=Lane.VIDEOS),
            admit("third", user=3, work=10.0, seconds=100, lane=Lane.VIDEOS, expect=busy(70)),  # the lane is full
            release("running"),
            release("second"),
            admit("photo again", user=3, work=0.5),
        ),
        processes=1,
        video_queue_limit=2,
    ),
]


class LocalHarness:
    def __init__(self, scenario: Scenario, clock: Clock) -> None:
        self.ledger = LocalLedger(Capacity(scenario.processes, scenario.video_slots), scenario.limits(), clock)

    async def workers(self, processes: int, video_slots: int) -> None:
        self.ledger.capacity = Capacity(processes, video_slots)


class RedisHarness:
    def __init__(self, redis: Redis, scenario: Scenario, clock: Clock) -> None:
        self.redis = redis
        self.ledger = RedisLedger(redis, scenario.limits(), front="front-1", clock=clock)

    async def workers(self, processes: int, video_slots: int) -> None:
        await self.redis.delete(keys.WORKERS, keys.WORKER_INFO)
        if processes:
            await announce(self.redis, "machine-1", Announcement(processes, video_processes=video_slots))


@pytest.fixture(params=["memory", "redis"])
async def harness(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[Callable[..., Any]]:
    """A fresh ledger of the kind under test for each scenario."""
    redis = Redis.from_url(redis_server.url())
    await redis.flushall()

    async def make(scenario: Scenario, clock: Clock) -> Harness:
        memory = request.param == "memory"
        made: Harness = LocalHarness(scenario, clock) if memory else RedisHarness(redis, scenario, clock)
        await made.workers(scenario.processes, scenario.video_slots)
        return made

    yield make
    await redis.aclose()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
async def test_admission_scenario(scenario: Scenario, harness: Callable[..., Any]) -> None:
    clock = Clock(time.time())
    run = Run(await harness(scenario, clock), clock)
    for step in scenario.steps:
        await step(run)
