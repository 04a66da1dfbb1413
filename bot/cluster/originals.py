"""The fronts' shared map of results to originals (bot.originals): one key per result message, expiring."""

from __future__ import annotations

import json
from dataclasses import asdict

from redis.asyncio import Redis

from bot.cluster import keys
from bot.originals import Original


class RedisOriginals:
    """Any front can recall what another remembered, for `ttl` seconds."""

    def __init__(self, redis: Redis, ttl: float) -> None:
        self.redis = redis
        self.ttl = ttl

    async def remember(self, chat_id: int, result_message_id: int, original: Original) -> None:
        value = json.dumps(asdict(original))
        await self.redis.set(keys.original_key(chat_id, result_message_id), value, px=max(1, int(self.ttl * 1000)))

    async def recall(self, chat_id: int, result_message_id: int) -> Original | None:
        raw = await self.redis.get(keys.original_key(chat_id, result_message_id))
        return Original(**json.loads(raw)) if raw else None
