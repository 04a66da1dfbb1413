"""Admission's ledger in Redis, shared by every front: the tickets only; `bot.admission` has the rules.

The tickets are one hash, changed only in transactions that watch it (Redis's optimistic locking): a front reads the
tickets and the worker machines alive, decides by the rules, and writes its change only if no other front changed the
hash meanwhile, else it reads again. A ticket stops counting at its deadline, or when the front that admitted it
stops its heartbeat (a front killed mid-burst must not keep out the requests Telegram delivers again); whichever
front next changes the ledger removes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, replace

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, WatchError

from bot.admission import (
    BusyError,
    Capacity,
    Lane,
    Limits,
    Ticket,
    UnavailableError,
    check_admission,
    check_reprice,
    live,
    video_may_start,
)
from bot.cluster import keys
from bot.cluster.connection import HEARTBEAT_TTL_S
from bot.cluster.workers import capacity_of, census

logger = logging.getLogger(__name__)

# A change that keeps meeting other fronts' changes gives up after this many reads; the request is then told the
# bot is busy, which only a storm of admissions far beyond any queue limit could cause. Between reads a front waits
# up to RETRY_SPREAD_S, at random.
MAX_ATTEMPTS = 50
RETRY_SPREAD_S = 0.005

# What a change of the ledger writes: tickets to set, or None for no change at all.
Change = Callable[[list[Ticket], Capacity, float], dict[str, Ticket] | None]


def encoded(ticket: Ticket) -> str:
    return json.dumps(asdict(ticket))


def decoded(raw: bytes | str) -> Ticket | None:
    """The ticket, or None for anything else planted in the ledger (it is removed with the stale ones)."""
    try:
        d = json.loads(raw)
        numbers = (float(d["work"]), int(d["pictures"]), float(d["deadline"]), float(d["admitted_at"]))
        return Ticket(str(d["id"]), int(d["user_id"]), Lane(d["lane"]), *numbers, bool(d["started"]), str(d["front"]))
    except (ValueError, TypeError, KeyError):
        return None


class RedisLedger:
    """The cluster's tickets, on the Unix clock (the same on every machine, kept by NTP)."""

    def __init__(self, redis: Redis, limits: Limits, front: str, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.limits = limits
        self.front = front
        self.clock = clock
        self._one_at_a_time = asyncio.Lock()

    async def admit(self, request: Ticket) -> None:
        def change(tickets: list[Ticket], capacity: Capacity, now: float) -> dict[str, Ticket]:
            check_admission(tickets, capacity, self.limits, request, now)
            return {request.id: request}

        await self._decide(change)

    async def reprice(self, ticket: Ticket, work: float, pictures: int) -> Ticket:
        repriced = replace(ticket, work=work, pictures=pictures)

        def change(tickets: list[Ticket], capacity: Capacity, now: float) -> dict[str, Ticket]:
            check_reprice(tickets, capacity, self.limits, repriced)
            return {repriced.id: repriced}

        await self._decide(change)
        return repriced

    async def release(self, ticket: Ticket) -> None:
        try:
            await self.redis.hdel(keys.ADMITTED, ticket.id)
        except (RedisError, OSError) as error:  # the ticket stops counting at its deadline anyway
            logger.warning("admission: could not release (%s)", type(error).__name__)

    async def take_turn(self, ticket: Ticket) -> bool:
        def change(tickets: list[Ticket], capacity: Capacity, now: float) -> dict[str, Ticket] | None:
            current = next((other for other in tickets if other.id == ticket.id), None)
            if current is None:
                raise UnavailableError  # Redis lost it (a restart): the request cannot go on
            if current.started:
                return {}
            if not video_may_start(tickets, capacity, self.limits, current, now):
                return None
            return {current.id: replace(current, started=True)}

        try:
            return await self._transact(change)
        except (RedisError, OSError):
            return False  # Redis restarting: the deadline says when to stop waiting

    async def tickets(self) -> list[Ticket]:
        """The tickets whose deadline has not passed (the queue depth the metrics show)."""
        now = self.clock()
        tickets = [decoded(raw) for raw in await self.redis.hvals(keys.ADMITTED)]
        return live([ticket for ticket in tickets if ticket is not None], now)

    async def _decide(self, change: Change) -> None:
        """A change that admits or refuses: without Redis, nothing can be admitted."""
        try:
            await self._transact(change)
        except (RedisError, OSError) as error:
            logger.warning("admission: Redis unreachable (%s)", type(error).__name__)
            raise UnavailableError from None

    async def _transact(self, change: Change) -> bool:
        """Apply `change` to the live tickets atomically; True if it wrote (or had nothing to write). This front's
        own changes go one at a time (they would only invalidate each other); another front's change meanwhile
        costs a read again, after a short random wait so that fronts do not keep colliding."""
        async with self._one_at_a_time:
            for attempt in range(MAX_ATTEMPTS):
                if attempt:
                    await asyncio.sleep(random.uniform(0, RETRY_SPREAD_S))  # noqa: S311 (spreading, not secrecy)
                if (written := await self._attempt(change)) is not None:
                    return written
        raise BusyError(1)

    async def _attempt(self, change: Change) -> bool | None:
        """One read-decide-write; None when another front changed the ledger meanwhile."""
        async with self.redis.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(keys.ADMITTED)
                now = self.clock()
                counted, stale = await self._read(pipe, now)
                capacity = capacity_of(await census(pipe))
                writes = change(counted, capacity, now)
                pipe.multi()
                if stale:
                    pipe.hdel(keys.ADMITTED, *stale)
                if writes:
                    pipe.hset(keys.ADMITTED, mapping={id_: encoded(t) for id_, t in writes.items()})
                pipe.set(keys.front_key(self.front), 1, px=int(HEARTBEAT_TTL_S * 1000))
                await pipe.execute()
            except WatchError:
                return None
            return writes is not None

    async def _read(self, pipe: Pipeline, now: float) -> tuple[list[Ticket], list[str]]:
        """The tickets that count, and the ids of those past their deadline or of a front that is gone."""
        entries = {key: decoded(raw) for key, raw in (await pipe.hgetall(keys.ADMITTED)).items()}
        tickets = [ticket for ticket in entries.values() if ticket is not None]
        fronts = sorted({ticket.front for ticket in tickets} - {self.front})
        alive = {front for front in fronts if await pipe.exists(keys.front_key(front))} | {self.front}
        counted = [ticket for ticket in live(tickets, now) if ticket.front in alive]
        stale = [key for key, ticket in entries.items() if ticket is None or ticket not in counted]
        return counted, [key.decode() if isinstance(key, bytes) else key for key in stale]
