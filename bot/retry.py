"""Requests to Telegram that survive flood limits and passing failures: retried with backoff, then given up; and the
waits of a process whose Telegram or Redis is down for a while."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.methods import GetUpdates, SendChatAction, TelegramMethod
from aiogram.methods.base import TelegramType

logger = logging.getLogger(__name__)


class RetryRequests(BaseRequestMiddleware):
    """Retry a request on 429 (after the retry_after Telegram asks for), 5xx and network errors.

    getUpdates is left to the dispatcher's own polling backoff. Chat actions ("sending photo...") are best effort:
    one attempt, and a failure is logged instead of breaking the request they decorate.
    """

    def __init__(
        self, attempts: int = 4, first_delay: float = 0.5, max_delay: float = 8.0, max_retry_after: float = 60.0
    ) -> None:
        self.attempts = attempts
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.max_retry_after = max_retry_after

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Any:
        # Named apart rather than narrowed by isinstance: `make_request` takes the method as the generic it came as.
        polling = isinstance(method, GetUpdates)
        chat_action = isinstance(method, SendChatAction)
        if polling:
            return await make_request(bot, method)
        if chat_action:
            try:
                return await make_request(bot, method)
            except TelegramAPIError as error:
                logger.info("chat action not shown: %s", type(error).__name__)
                return True
        attempt = 1
        while True:
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                if attempt >= self.attempts or error.retry_after > self.max_retry_after:
                    raise
                delay = float(error.retry_after)
            except (TelegramServerError, TelegramNetworkError):
                if attempt >= self.attempts:
                    raise
                delay = min(self.max_delay, self.first_delay * 2 ** (attempt - 1))
            attempt += 1
            logger.warning("%s failed; try %d of %d in %.1f s", method.__api_method__, attempt, self.attempts, delay)
            await asyncio.sleep(delay)


class Outage:
    """Waits between attempts at something that is down (Telegram, Redis): one warning when it goes, waits growing
    to the last of `delays` and staying there, one line when it is back."""

    def __init__(self, what: str, delays: Sequence[float], log: logging.Logger) -> None:
        self.what = what
        self.delays = delays
        self.log = log
        self.failures = 0

    async def wait(self, error: BaseException, stop: asyncio.Event | None = None, at_least: float = 0.0) -> None:
        """Before the next attempt; sooner if `stop` is set."""
        if self.failures == 0:
            self.log.warning("%s unreachable (%s); retrying until it is back", self.what, type(error).__name__)
        delay = max(at_least, self.delays[min(self.failures, len(self.delays) - 1)])
        self.failures += 1
        with suppress(TimeoutError):
            await asyncio.wait_for((stop or asyncio.Event()).wait(), delay)

    def over(self) -> None:
        if self.failures:
            self.log.info("%s reached after %d failed attempt(s)", self.what, self.failures)
        self.failures = 0
