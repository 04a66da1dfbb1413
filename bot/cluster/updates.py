"""Every update answered once, whichever front receives it and however often Telegram delivers it."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot import metrics
from bot.cluster import keys
from bot.cluster.scripts import Script
from bot.middlewares import Handler

logger = logging.getLogger(__name__)

# A handled update is remembered this long, so a delivery again is not answered twice.
UPDATE_MEMORY_S = 24 * 3600


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
        self._claim = Script(redis, "claim")
        self._albums: dict[tuple[int, str], tuple[int, list[str]]] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        key = keys.update_key(data["bot"].id, event.update_id)
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
            running, waiting = self._albums.get(album, (0, []))
            self._albums[album] = (running + 1, waiting)
        try:
            answer = await handler(event, data)
        except asyncio.CancelledError:
            # The bot is stopping with this update unanswered: its claim lapses with this front's heartbeat, so the
            # delivery again is answered (a "done" mark now would make it answered never).
            self._forget(album)
            raise
        except Exception:
            await self._mark_done(key, album)
            raise
        await self._mark_done(key, album)
        return answer

    def _forget(self, album: tuple[int, str] | None) -> None:
        if album is not None and (entry := self._albums.pop(album, None)) is not None and entry[0] > 1:
            self._albums[album] = (entry[0] - 1, entry[1])

    async def _mark_done(self, key: str, album: tuple[int, str] | None) -> None:
        done_keys = [key]
        if album is not None:
            running, waiting = self._albums.pop(album)
            if running > 1:
                self._albums[album] = (running - 1, [*waiting, key])
                return
            done_keys = [*waiting, key]
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for done_key in done_keys:
                    pipe.set(done_key, "done", ex=UPDATE_MEMORY_S)
                await pipe.execute()
        except (RedisError, OSError) as error:
            logger.warning("%d update(s) not marked done (%s)", len(done_keys), type(error).__name__)

    async def _claim_when_free(self, key: str) -> bool:
        give_up = time.monotonic() + self.wait_limit
        while True:
            claim = await self._claim([key], front=self.instance, ttl=UPDATE_MEMORY_S, heartbeats=keys.front_key(""))
            state = claim["state"]
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
