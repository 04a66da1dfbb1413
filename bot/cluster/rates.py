"""The per-user counts of cheap updates (bot.middlewares.ThrottleMiddleware) and Mini App calls
(bot.miniapp.server), shared by every front."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.cluster import keys

# A minute's count is kept a little past its minute, then dropped by Redis.
WINDOW_TTL_S = 120


class RedisRateCounter:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def count(self, scope: str, user_id: int, window: int) -> int:
        """0 while Redis is unreachable: the throttle is a courtesy, and the user hears of the outage anyway."""
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(keys.rate_key(scope, user_id, window))
                pipe.expire(keys.rate_key(scope, user_id, window), WINDOW_TTL_S)
                count, _ = await pipe.execute()
        except (RedisError, OSError):
            return 0
        return int(count)
