"""Admission control: a request is admitted only if it can be answered in time, by one set of rules.

The rules (`check_admission`, `video_may_start`) are pure functions over the tickets admitted and the capacity;
the ledgers only keep the tickets: `LocalLedger` in the embedded bot's memory, `bot.cluster.ledger.RedisLedger` in
Redis, so that every front sees the whole cluster. One table of scenarios (tests/bot/test_admission.py) runs
against both.

Two lanes share the worker processes. Photos (and image files, albums, second looks) must be answered within
their budget of seconds; videos, GIFs and video notes take minutes and have a budget of their own. A video holds
one worker process from its start to its end, so it would make every photo behind it late: at most
`video_capacity` processes run videos, and while videos are admitted the photo lane plans with that many
processes fewer. A waiting video starts only when a video slot is free and the photos already admitted still fit
their deadlines on the processes left; the photos admitted meanwhile are planned without the process it will take,
so it starts within about one photo budget however many photos keep coming.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from anonymizer.options import MediaKind

# Admission plans with each estimate stretched by this much. The learned speed is a mean, so a plan filled up to the
# deadline misses it whenever the last jobs run slower than the mean; the overload benchmark
# (benchmarks/bench_bot_overload.py) shows the late apologies this headroom avoids.
ESTIMATE_HEADROOM = 1.25


class Lane(StrEnum):
    """The two lanes of work (see the module's docstring)."""

    PHOTOS = "photos"
    VIDEOS = "videos"

    @classmethod
    def of(cls, kind: MediaKind) -> Lane:
        """Images go in the photo lane; GIFs, videos and video notes in the video lane."""
        return cls.PHOTOS if kind == MediaKind.IMAGE else cls.VIDEOS


class BusyError(Exception):
    """The request is refused now, so it gets an answer at once instead of a late one."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"busy, retry after {retry_after} s")
        self.retry_after = retry_after


class UnavailableError(Exception):
    """No work can be taken at all right now (no worker alive, or the ledger's store unreachable)."""


@dataclass(frozen=True)
class Ticket:
    """One admitted request: whose, in which lane, what it costs (estimated seconds, pictures), until when (on its
    ledger's clock), and for a video whether it holds a worker process yet. `front` is the process that admitted it:
    in a cluster, its tickets stop counting when that front's heartbeat stops."""

    id: str
    user_id: int
    lane: Lane
    work: float
    pictures: int
    deadline: float
    admitted_at: float
    started: bool = False
    front: str = ""


@dataclass(frozen=True)
class Capacity:
    """The worker processes alive and how many of them may hold a video at once."""

    processes: int
    video_slots: int

    @property
    def video_capacity(self) -> int:
        return max(1, min(self.processes, self.video_slots))


@dataclass(frozen=True)
class Limits:
    """The operator's limits: pictures admitted at once, pictures in flight per user, videos at once, and the
    seconds kept back from each deadline to send the answer."""

    queue_limit: int
    per_user_limit: int
    video_queue_limit: int
    reply_reserve: float


def retry_after(backlog_seconds: float, capacity: float) -> int:
    return max(1, math.ceil(backlog_seconds / capacity))


def live(tickets: Sequence[Ticket], now: float) -> list[Ticket]:
    """The tickets that count: a request past its deadline has been answered with an apology, or is being stopped."""
    return [ticket for ticket in tickets if ticket.deadline > now]


def check_admission(tickets: Sequence[Ticket], capacity: Capacity, limits: Limits, request: Ticket, now: float) -> None:
    """Raise UnavailableError (no worker process) or BusyError (with when to try again) unless `request` fits.

    It fits when its lane has room (pictures or videos admitted), its user's pictures in flight stay within
    `per_user_limit` (an album counts each picture), and the lane's work admitted so far plus its own, spread over
    the lane's processes and stretched by the headroom, ends before its deadline less the reply reserve. An idle lane
    always takes a request: refusing it would help nobody.
    """
    if capacity.processes <= 0:
        raise UnavailableError
    tickets = live(tickets, now)
    videos = [ticket for ticket in tickets if ticket.lane == Lane.VIDEOS]
    same_lane = [ticket for ticket in tickets if ticket.lane == request.lane]
    if request.lane == Lane.PHOTOS:
        lane_capacity = capacity.processes - min(len(videos), capacity.video_capacity)
        full = sum(ticket.pictures for ticket in same_lane) + request.pictures > limits.queue_limit
    else:
        lane_capacity = capacity.video_capacity
        full = len(same_lane) >= limits.video_queue_limit
    if lane_capacity <= 0:  # every process holds a video: photos wait for them
        raise BusyError(retry_after(sum(ticket.work for ticket in videos), 1))
    backlog = sum(ticket.work for ticket in same_lane)
    finish = now + (backlog + request.work) * ESTIMATE_HEADROOM / lane_capacity
    late = bool(same_lane) and finish > request.deadline - limits.reply_reserve
    users_own = sum(ticket.pictures for ticket in tickets if ticket.user_id == request.user_id)
    if full or late or users_own + request.pictures > limits.per_user_limit:
        raise BusyError(retry_after(backlog, lane_capacity))


def check_reprice(tickets: Sequence[Ticket], capacity: Capacity, limits: Limits, repriced: Ticket) -> None:
    """Raise as `check_admission` does unless a request priced again (its files read: their real size) keeps its
    place: a lower price always does; a higher one if the request would have been admitted at it when it was. The
    check runs as of its admission, not now: the time since went on work the backlog does not count down."""
    before = next((ticket for ticket in tickets if ticket.id == repriced.id), None)
    if before is None:
        raise UnavailableError  # past its deadline, or its ledger lost it
    if repriced.work <= before.work:
        return
    others = [ticket for ticket in tickets if ticket.id != repriced.id]
    check_admission(others, capacity, limits, repriced, repriced.admitted_at)


def video_may_start(tickets: Sequence[Ticket], capacity: Capacity, limits: Limits, ticket: Ticket, now: float) -> bool:
    """Whether this video may take a worker process now: it is the oldest waiting, a video slot is free, and the
    photos admitted still fit their deadlines (the earliest, for all of their work: erring early) on the processes
    left."""
    if ticket.started or ticket.lane == Lane.PHOTOS:
        return True
    tickets = live(tickets, now)
    videos = [other for other in tickets if other.lane == Lane.VIDEOS]
    waiting = [other for other in videos if not other.started]
    if capacity.processes <= 0 or min(waiting, key=lambda other: other.admitted_at).id != ticket.id:
        return False
    running = len(videos) - len(waiting)
    if running >= capacity.video_capacity:
        return False
    photos = [other for other in tickets if other.lane == Lane.PHOTOS]
    if not photos:
        return True
    left = capacity.processes - running - 1
    if left <= 0:
        return False
    backlog = sum(other.work for other in photos)
    return now + backlog * ESTIMATE_HEADROOM / left <= min(other.deadline for other in photos) - limits.reply_reserve


class Ledger(Protocol):
    """Where the tickets are kept; the rules above decide, a ledger applies them atomically to its own store."""

    def clock(self) -> float:
        """Now, on the clock the ledger's deadlines are kept in."""

    async def admit(self, request: Ticket) -> None:
        """Record `request` if `check_admission` lets it in; else raise as it does."""

    async def reprice(self, ticket: Ticket, work: float, pictures: int) -> Ticket:
        """The ticket at the price its pictures turned out to have, if `check_reprice` lets it keep its place; else
        raise as it does (the old ticket stays until released)."""

    async def release(self, ticket: Ticket) -> None:
        """Forget an answered request."""

    async def take_turn(self, ticket: Ticket) -> bool:
        """Mark a video started if `video_may_start`; UnavailableError if the ticket is gone."""


class LocalLedger:
    """The embedded bot's ledger: the tickets of one process, used from one event loop."""

    def __init__(self, capacity: Capacity, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self.limits = limits
        self.clock = clock
        self.tickets: list[Ticket] = []

    async def admit(self, request: Ticket) -> None:
        check_admission(self.tickets, self.capacity, self.limits, request, self.clock())
        self.tickets.append(request)

    async def reprice(self, ticket: Ticket, work: float, pictures: int) -> Ticket:
        repriced = replace(ticket, work=work, pictures=pictures)
        check_reprice(live(self.tickets, self.clock()), self.capacity, self.limits, repriced)
        self.tickets = [repriced if other.id == ticket.id else other for other in self.tickets]
        return repriced

    async def release(self, ticket: Ticket) -> None:
        self.tickets = [other for other in self.tickets if other.id != ticket.id]

    async def take_turn(self, ticket: Ticket) -> bool:
        index = next((index for index, other in enumerate(self.tickets) if other.id == ticket.id), None)
        if index is None:
            raise UnavailableError
        if not video_may_start(self.tickets, self.capacity, self.limits, self.tickets[index], self.clock()):
            return False
        self.tickets[index] = replace(self.tickets[index], started=True)
        return True
