"""Pacing of the messages a bot sends, shared by every front through Redis: Telegram allows a bot about 30 messages a
second in all and about one a second per chat, and answers 429 past that. Pacing keeps a burst within the limits;
a 429 that still comes is honoured by `bot.retry.RetryRequests` (it waits the retry_after Telegram asks for)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import EditMessageText, SendChatAction, SendMediaGroup, TelegramMethod
from aiogram.methods.base import TelegramType
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.cluster import keys
from bot.cluster.scripts import Script

logger = logging.getLogger(__name__)

MESSAGES_PER_SECOND = 30.0
CHAT_INTERVAL_S = 1.0
# The longest a reply is held back; past it, it goes and Telegram's 429 (if any) decides.
MAX_WAIT_S = 5.0


def messages_in(method: TelegramMethod[Any]) -> int:
    """How many messages a request sends: 0 for what Telegram does not count (chat actions, reads)."""
    if isinstance(method, SendChatAction):
        return 0
    if isinstance(method, SendMediaGroup):
        return len(method.media)
    if isinstance(method, EditMessageText) or method.__api_method__.startswith("send"):
        return 1
    return 0


class SharedPacing(BaseRequestMiddleware):
    """Hold each outgoing message until its slot: one shared schedule per bot and per chat for all fronts."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._reserve = Script(redis, "pace")

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Any:
        count = messages_in(method)
        chat_id = getattr(method, "chat_id", None)
        if count and chat_id is not None:
            await asyncio.sleep(await self._wait(bot.id, chat_id, count))
        return await make_request(bot, method)

    async def _wait(self, bot_id: int, chat_id: int | str, count: int) -> float:
        try:
            reservation = await self._reserve(
                [keys.pace_key(bot_id), keys.pace_key(bot_id, chat_id)],
                now=time.time(),
                bot_spacing=count / MESSAGES_PER_SECOND,
                chat_spacing=CHAT_INTERVAL_S,
                ttl_ms=int((MAX_WAIT_S + 2) * 1000),
                max_wait=MAX_WAIT_S,
            )
            wait = float(reservation["wait"])
        except (RedisError, OSError) as error:  # pacing is a courtesy: without Redis, 429s still are honoured
            logger.info("pacing skipped: Redis unreachable (%s)", type(error).__name__)
            return 0.0
        return wait
