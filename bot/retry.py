"""Requests to Telegram that survive flood limits and passing failures: retried with backoff, then given up."""

from __future__ import annotations

import asyncio
import logging
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
