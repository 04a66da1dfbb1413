"""The bot under test: its real dispatcher, session and worker processes, talking HTTP to a fake Bot API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiogram.fsm.storage.memory import MemoryStorage

from anonymizer.options import Options
from bot.app import create_bot, create_dispatcher, create_service, token_secrets
from bot.logs import install_redaction
from bot.settings import BotSettings
from bot.workers import WorkerPool
from testing.cluster import redis_server  # noqa: F401 (a fixture: the distributed tests' Redis)
from testing.fake_telegram import TOKEN, FakeTelegramServer
from tests.bot.helpers import TEST_WORKERS, RunningBot, StartBot, bot_settings


@pytest.fixture(scope="session", autouse=True)
def redacted_logs() -> None:
    """The test process hosts bots as `python -m bot` does, so it redacts their token from logs as that does."""
    install_redaction(token_secrets(BotSettings(_env_file=None, bot_token=TOKEN)))


@pytest.fixture(scope="session")
def worker_pool() -> Iterator[WorkerPool]:
    """Two worker processes for the whole session: loading models once keeps the tests fast."""
    pool = WorkerPool(TEST_WORKERS, Options()).start()
    yield pool
    pool.close(wait=True)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(TOKEN) as server:
        yield server


@pytest.fixture
async def start_bot(telegram: FakeTelegramServer, worker_pool: WorkerPool) -> AsyncIterator[StartBot]:
    """Start the bot with some settings overridden; it polls the fake server until the test ends."""
    running: list[RunningBot] = []

    async def start(**overrides: Any) -> RunningBot:
        settings = bot_settings(telegram, **overrides)
        bot = create_bot(settings)
        service = create_service(settings, worker_pool)
        dispatcher = create_dispatcher(settings, service, MemoryStorage())
        polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1))
        started = RunningBot(settings, bot, dispatcher, service, polling)
        running.append(started)
        await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=10)
        return started

    yield start
    for started in running:
        await started.stop()


@pytest.fixture
async def running_bot(start_bot: StartBot) -> RunningBot:
    return await start_bot()
