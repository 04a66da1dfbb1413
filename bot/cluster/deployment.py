"""A cluster's front: jobs through Redis to the worker machines, the users' choices and originals in Redis, every
update claimed there so that it is answered once, and messages paced across fronts."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.fsm.storage.redis import RedisStorage

from bot.cluster.connection import client_settings
from bot.cluster.front import ClusterJobs
from bot.cluster.originals import RedisOriginals
from bot.cluster.pacing import SharedPacing
from bot.cluster.rates import RedisRateCounter
from bot.cluster.updates import DeduplicateUpdates
from bot.deployment import Deployment
from bot.settings import BotSettings


class ClusterDeployment(Deployment):
    """Any number of fronts and worker machines meeting in one Redis (REDIS_URL)."""

    webhook_answers_first = True

    def __init__(self, settings: BotSettings) -> None:
        assert settings.redis_url is not None
        redis_url = settings.redis_url.get_secret_value()
        self.settings = settings
        self.jobs: ClusterJobs = ClusterJobs(redis_url, settings.limits())
        self.storage = RedisStorage.from_url(redis_url, connection_kwargs=client_settings())
        self.originals = RedisOriginals(self.jobs.redis, settings.strict_window_seconds)
        self.rates = RedisRateCounter(self.jobs.redis)

    def update_middlewares(self) -> list[BaseMiddleware]:
        wait_limit = self.settings.deadline_seconds + 5
        return [DeduplicateUpdates(self.jobs.redis, self.jobs.instance, wait_limit=wait_limit)]

    def pacing(self) -> BaseRequestMiddleware:
        return SharedPacing(self.jobs.redis)

    def background(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        return [self.jobs.watch_cluster]

    async def start(self, **_: Any) -> None:
        await self.jobs.start()

    async def close(self) -> None:
        await self.jobs.close()
        await self.storage.close()
