"""Middlewares: request timing and logging, the user's language, the allowed-users gate, the per-user throttle of
cheap updates, and album collection."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject, Update, User

from bot.inputs import clip_of, picture_of
from bot.texts import texts_for

logger = logging.getLogger("bot.requests")

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class RequestLogMiddleware(BaseMiddleware):
    """Stamp each update with its arrival time (the deadline counts from it), log ids and timings, count updates
    in flight.

    Logs the update id, chat id, update type and duration only: never captions, texts, file names or images. Lets a
    graceful stop wait until every update received has been answered.
    """

    def __init__(self) -> None:
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        received_at = time.monotonic()
        data["received_at"] = received_at
        chat = data.get("event_chat")
        self._in_flight += 1
        self._idle.clear()
        try:
            return await handler(event, data)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
            logger.info(
                "update %d (%s) chat %s: %.3f s",
                event.update_id,
                event.event_type,
                chat.id if chat else "-",
                time.monotonic() - received_at,
            )

    async def drain(self, timeout: float) -> bool:
        """Wait until every update received so far has been handled; False if time ran out first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True


class LanguageMiddleware(BaseMiddleware):
    """Give handlers the texts in the user's language as `texts`."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        data["texts"] = texts_for(user.language_code if user else None)
        return await handler(event, data)


class AllowedUsersMiddleware(BaseMiddleware):
    """When ALLOWED_USER_IDS is set, everyone else gets one polite refusal per request and nothing is processed."""

    def __init__(self, allowed: frozenset[int]) -> None:
        self.allowed = allowed
        self._refused_albums: OrderedDict[str, None] = OrderedDict()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and user.id in self.allowed:
            return await handler(event, data)
        assert isinstance(event, Update)
        texts = data["texts"]
        if event.message is not None and self._first_of_request(event.message):
            await event.message.answer(texts.not_allowed)
        elif event.callback_query is not None:
            await event.callback_query.answer(texts.not_allowed, show_alert=True)
        return None

    def _first_of_request(self, message: Message) -> bool:
        """An album arrives as one message per picture; it is still one request and gets one refusal."""
        if message.media_group_id is None:
            return True
        if message.media_group_id in self._refused_albums:
            return False
        self._refused_albums[message.media_group_id] = None
        while len(self._refused_albums) > 1000:
            self._refused_albums.popitem(last=False)
        return True


class AlbumMiddleware(BaseMiddleware):
    """Collect the messages of one album (same media_group_id) and hand them to the handler once, in order.

    Telegram delivers an album as separate messages, usually back to back. The first one waits until no new item
    has arrived for `window` seconds; the handler then gets all of them as `album`; the other messages stop here.
    Only message metadata is held here, never image bytes.
    """

    def __init__(self, window: float) -> None:
        self.window = window
        self._albums: dict[tuple[int, str], list[Message]] = {}
        self._last_arrival: dict[tuple[int, str], float] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Message) or event.media_group_id is None:
            return await handler(event, data)
        key = (event.chat.id, event.media_group_id)
        self._last_arrival[key] = time.monotonic()
        if key in self._albums:
            self._albums[key].append(event)
            return None
        self._albums[key] = [event]
        try:
            while (quiet := time.monotonic() - self._last_arrival[key]) < self.window:
                await asyncio.sleep(self.window - quiet)
        finally:
            album = self._albums.pop(key)
            del self._last_arrival[key]
        data["album"] = sorted(album, key=lambda message: message.message_id)
        return await handler(event, data)


class RateCounter(Protocol):
    async def count(self, scope: str, user_id: int, window: int) -> int:
        """What this user did in `scope` ("updates", "editor") in this window (a minute's number), this one
        included."""


class MemoryRateCounter:
    """The embedded bot's counts: this minute's and the last, nothing older."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int, int], int] = {}

    async def count(self, scope: str, user_id: int, window: int) -> int:
        for key in [key for key in self._counts if key[2] < window - 1]:
            del self._counts[key]
        self._counts[(scope, user_id, window)] = self._counts.get((scope, user_id, window), 0) + 1
        return self._counts[(scope, user_id, window)]


class ThrottleMiddleware(BaseMiddleware):
    """Texts, commands and button presses cost a worker nothing but still cost the bot a reply each: past
    `per_minute` a minute a user hears once that the bot will answer again in a minute, and is not answered until
    then (a button's spinner is still stopped). Pictures and videos are limited by admission instead."""

    def __init__(self, counter: RateCounter, per_minute: int) -> None:
        self.counter = counter
        self.per_minute = per_minute

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user: User | None = data.get("event_from_user")
        media = event.message is not None and (picture_of(event.message) or clip_of(event.message))
        if user is None or media or (event.message is None and event.callback_query is None):
            return await handler(event, data)
        count = await self.counter.count("updates", user.id, int(time.time() // 60))
        if count <= self.per_minute:
            return await handler(event, data)
        notice = data["texts"].slow_down if count == self.per_minute + 1 else None
        if event.callback_query is not None:
            await event.callback_query.answer(notice)
        elif notice is not None:
            await event.message.answer(notice)  # type: ignore[union-attr]
        logger.info("update %d: user over %d updates a minute; not answered", event.update_id, self.per_minute)
        return None
