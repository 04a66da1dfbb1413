"""The fronts' shared map of results to originals and the users' choices (bot.originals): one key per result
message, expiring an hour after the result whatever is chosen meanwhile."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.cluster import keys
from bot.originals import Original


class RedisOriginals:
    """Any front can recall what another remembered, for `ttl` seconds."""

    def __init__(self, redis: Redis, ttl: float) -> None:
        self.redis = redis
        self.ttl = ttl

    async def remember(self, chat_id: int, result_message_id: int, original: Original) -> None:
        key = keys.original_key(chat_id, result_message_id)
        await self.redis.set(key, original.to_json(), px=max(1, int(self.ttl * 1000)))

    async def update(self, chat_id: int, result_message_id: int, original: Original) -> bool:
        key = keys.original_key(chat_id, result_message_id)
        return bool(await self.redis.set(key, original.to_json(), xx=True, keepttl=True))

    async def recall(self, chat_id: int, result_message_id: int) -> Original | None:
        raw = await self.redis.get(keys.original_key(chat_id, result_message_id))
        return Original.from_json(raw) if raw else None
