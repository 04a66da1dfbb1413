"""The Mini App's per-user limit shared by every front (bot.miniapp.ratelimit): whichever front serves a call, it
counts in one Redis key per user that expires with its window."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.cluster import keys
from bot.miniapp.ratelimit import REQUESTS_PER_WINDOW, WINDOW_SECONDS


class RedisRateLimit:
    def __init__(self, redis: Redis, requests: int = REQUESTS_PER_WINDOW, window: float = WINDOW_SECONDS) -> None:
        self.redis = redis
        self.requests = requests
        self.window_ms = int(window * 1000)

    async def take(self, user_id: int) -> float:
        key = keys.editor_calls_key(user_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, nx=True, px=self.window_ms)
            pipe.incr(key)
            pipe.pttl(key)
            _, count, left_ms = await pipe.execute()
        return 0.0 if count <= self.requests else max(int(left_ms), 0) / 1000
