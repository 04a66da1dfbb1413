"""Admission's one set of rules, run scenario by scenario against both ledgers: the embedded bot's memory and the
cluster's Redis (a real redis-server). A scenario is a row of steps, each with the answer it must get; a ledger that
drifted from the rules fails the row on that ledger alone."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Callable
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


@dataclass(frozen=True)
class Admit:
    """A request: `name` names its ticket for later steps; `seconds` is its budget from now."""

    name: str
    user: int
    work: float
    seconds: float = 15.0
    lane: Lane = Lane.PHOTOS
    pictures: int = 1
    expect: object = ADMITTED


@dataclass(frozen=True)
class Release:
    name: str


@dataclass(frozen=True)
class Turn:
    """May this video take a worker process now?"""

    name: str
    expect: bool


@dataclass(frozen=True)
class Reprice:
    """The request's files were read: its real price."""

    name: str
    work: float
    expect: object = ADMITTED


@dataclass(frozen=True)
class Advance:
    seconds: float


@dataclass(frozen=True)
class Workers:
    """The worker processes alive changes (a machine joins, or every one is gone)."""

    processes: int
    video_slots: int = 1


Step = Admit | Reprice | Release | Turn | Advance | Workers


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
            Admit("first", user=7, work=1.0),
            Admit("again", user=7, work=1.0, expect=busy(1)),
            Admit("other", user=8, work=1.0),
            Release("first"),
            Admit("later", user=7, work=1.0),
        ),
        per_user_limit=1,
        queue_limit=10,
    ),
    Scenario(
        "the backlog counts, a worker that appears raises the capacity",
        (
            Admit("six", user=1, work=6.0, seconds=10),
            # 6 s admitted plus 6 s, stretched by the headroom, do not fit 10 s on one process...
            Admit("six more", user=2, work=6.0, seconds=10, expect=busy(6)),
            Workers(2),
            # ...but do on two.
            Admit("on two", user=2, work=6.0, seconds=10),
        ),
        processes=1,
    ),
    Scenario(
        "all workers gone: unavailable at once, and back when one returns",
        (Workers(0), Admit("none", user=1, work=1.0, expect=UNAVAILABLE), Workers(1), Admit("one", user=1, work=1.0)),
    ),
    Scenario(
        "the plan leaves room for jobs slower than the learned speed",
        (
            Admit("four", user=1, work=4.0, seconds=9.5),
            # 8 s of planned work fits the 9.5 s left at the learned speed, but not 25 % slower: "busy" now beats an
            # apology at the deadline.
            Admit("four more", user=2, work=4.0, seconds=9.5, expect=busy(4)),
            Admit("three", user=3, work=3.0, seconds=9.5),
        ),
        processes=1,
    ),
    Scenario(
        "an idle lane takes any request, a busy one only what fits the deadline",
        (
            Admit("huge", user=1, work=60.0, seconds=15),
            Admit("small", user=2, work=0.5, seconds=15, expect=busy(30)),
            Release("huge"),
            Admit("small again", user=2, work=0.5, seconds=15),
        ),
    ),
    Scenario(
        "an album counts its pictures against the queue limit",
        (
            Admit("album", user=1, work=8.0, pictures=8),
            Admit("another album", user=2, work=3.0, pictures=3, expect=busy(4)),
            Admit("one photo", user=2, work=1.0),
        ),
        queue_limit=9,
        per_user_limit=10,
    ),
    Scenario(
        "a user's pictures in flight are limited, an album counting each of its pictures",
        (
            Admit("album", user=1, work=8.0, pictures=8),
            Admit("another album", user=1, work=3.0, pictures=3, expect=busy(4)),
            Admit("two photos", user=1, work=2.0, pictures=2),
            Admit("one more", user=1, work=1.0, expect=busy(5)),
            Admit("someone else's", user=2, work=1.0),
        ),
        per_user_limit=10,
    ),
    Scenario(
        "a request priced again once its file was read keeps its place only if it still fits",
        (
            Admit("photos", user=1, work=4.0, seconds=9.5),
            Admit("file", user=2, work=1.0, seconds=9.5),
            Reprice("file", work=12.0, expect=busy(2)),  # (4 + 12) x 1.25 / 2 processes > 9.5 s
            Reprice("file", work=3.0),
            Admit("one more", user=3, work=9.0, seconds=9.5, expect=busy(4)),  # at the file's old price it fitted
        ),
    ),
    Scenario(
        "a request past its deadline stops counting",
        (
            Admit("stuck", user=1, work=14.0, seconds=15),
            Admit("waiting", user=2, work=1.0, expect=busy(14)),
            Advance(16),
            Admit("after", user=2, work=1.0),
        ),
        processes=1,
    ),
    Scenario(
        "a user with a video in flight sends a photo: the video still counts after the photo's deadline",
        (
            Admit("video", user=1, work=30.0, seconds=300, lane=Lane.VIDEOS),
            Admit("photo", user=1, work=1.0, seconds=15),
            Release("photo"),
            Advance(20),
            Admit("second video", user=1, work=30.0, seconds=300, lane=Lane.VIDEOS),
            Admit("third video", user=1, work=30.0, seconds=300, lane=Lane.VIDEOS, expect=busy(15)),
        ),
        processes=4,
        video_slots=4,
    ),
    Scenario(
        "an admitted video takes its process out of the photos' plan",
        (
            Admit("photos", user=1, work=4.0, seconds=9.5),
            # 8 s of photos on two processes fits 9.5 s with the headroom...
            Admit("more photos", user=2, work=4.0, seconds=9.5),
            Release("more photos"),
            Admit("video", user=3, work=30.0, seconds=300, lane=Lane.VIDEOS),
            # ...but not on the one process a video leaves.
            Admit("too many photos", user=2, work=4.0, seconds=9.5, expect=busy(4)),
            Release("video"),
            Admit("photos again", user=2, work=4.0, seconds=9.5),
        ),
    ),
    Scenario(
        "a video starts only when the admitted photos still fit on the processes left",
        (
            Admit("photos", user=1, work=8.0, seconds=9),
            Admit("video", user=2, work=30.0, seconds=300, lane=Lane.VIDEOS),
            # 8 s of photos fit 9 s on two processes; 10 s with the headroom is too much for one.
            Turn("video", expect=False),
            Release("photos"),
            Admit("half the photos", user=1, work=4.0, seconds=9),
            Turn("video", expect=True),
            Turn("video", expect=True),  # once started, a video keeps its process
        ),
    ),
    Scenario(
        "videos take their turns in order on the video slots",
        (
            Admit("first", user=1, work=30.0, seconds=300, lane=Lane.VIDEOS),
            Admit("second", user=2, work=30.0, seconds=300, lane=Lane.VIDEOS),
            Turn("second", expect=False),  # the first video admitted goes first
            Turn("first", expect=True),
            Turn("second", expect=False),  # one video slot
            Release("first"),
            Turn("second", expect=True),
        ),
        video_queue_limit=3,
    ),
    Scenario(
        "the video lane is refused when full or too late, photos while the only process holds a video",
        (
            Admit("running", user=1, work=60.0, seconds=100, lane=Lane.VIDEOS),
            Turn("running", expect=True),
            # 120 s of video, stretched by the headroom, cannot end within 100 s.
            Admit("late", user=2, work=60.0, seconds=100, lane=Lane.VIDEOS, expect=busy(60)),
            Admit("photo", user=3, work=0.5, expect=busy(60)),  # the only process is the video's
            Admit("second", user=2, work=10.0, seconds=100, lane=Lane.VIDEOS),
            Admit("third", user=3, work=10.0, seconds=100, lane=Lane.VIDEOS, expect=busy(70)),  # the lane is full
            Release("running"),
            Release("second"),
            Admit("photo again", user=3, work=0.5),
        ),
        processes=1,
        video_queue_limit=2,
    ),
]


class Harness(Protocol):
    ledger: Any

    async def workers(self, processes: int, video_slots: int) -> None: ...


class Clock:
    """The ledgers' time, moved on by the scenario instead of waited for."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


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


async def answer_to(ledger: Any, ticket: Ticket) -> object:
    try:
        await ledger.admit(ticket)
    except BusyError as refused:
        return busy(refused.retry_after)
    except UnavailableError:
        return UNAVAILABLE
    return ADMITTED


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
async def test_admission_scenario(scenario: Scenario, harness: Callable[..., Any]) -> None:
    clock = Clock(time.time())
    under_test = await harness(scenario, clock)
    ledger = under_test.ledger
    tickets: dict[str, Ticket] = {}
    order = itertools.count()
    for index, step in enumerate(scenario.steps):
        where = f"step {index + 1}: {step}"
        if isinstance(step, Admit):
            clock.now += 0.001  # every request arrives after the one before
            ticket = Ticket(
                id=f"{step.name}-{next(order)}",
                user_id=step.user,
                lane=step.lane,
                work=step.work,
                pictures=step.pictures,
                deadline=clock.now + step.seconds,
                admitted_at=clock.now,
                front="front-1",
            )
            assert await answer_to(ledger, ticket) == step.expect, where
            tickets[step.name] = ticket
        elif isinstance(step, Reprice):
            ticket = tickets[step.name]
            try:
                tickets[step.name] = await ledger.reprice(ticket, step.work, ticket.pictures)
                answer: object = ADMITTED
            except BusyError as refused:
                answer = busy(refused.retry_after)
            assert answer == step.expect, where
        elif isinstance(step, Release):
            await ledger.release(tickets[step.name])
        elif isinstance(step, Turn):
            assert await ledger.take_turn(tickets[step.name]) is step.expect, where
        elif isinstance(step, Advance):
            clock.now += step.seconds
        else:
            await under_test.workers(step.processes, step.video_slots)
