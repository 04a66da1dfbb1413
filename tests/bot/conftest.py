"""The bot under test: its real dispatcher, session and worker processes, talking HTTP to a fake Bot API server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from anonymizer.options import Options
from bot.logs import install_redaction
from bot.pool import ProcessPool
from bot.settings import BotSettings
from testing.bots import run_embedded_bot
from testing.cluster import redis_server  # noqa: F401 (a fixture: the distributed tests' Redis)
from testing.fake_telegram import TOKEN, FakeTelegramServer
from tests.bot.helpers import TEST_WORKERS, RunningBot, StartBot, bot_settings


@pytest.fixture(scope="session", autouse=True)
def redacted_logs() -> None:
    """The test process hosts bots as `python -m bot` does, so it redacts their token from logs as that does."""
    install_redaction(BotSettings(_env_file=None, bot_token=TOKEN).secrets())


@pytest.fixture(scope="session")
def worker_pool() -> Iterator[ProcessPool]:
    """Two worker processes for the whole session: loading models once keeps the tests fast."""
    pool = ProcessPool(TEST_WORKERS, Options()).start()
    yield pool
    pool.close(wait=True)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegramServer]:
    async with FakeTelegramServer(TOKEN) as server:
        yield server


@pytest.fixture
async def start_bot(telegram: FakeTelegramServer, worker_pool: ProcessPool) -> AsyncIterator[StartBot]:
    """Start the embedded bot, as `python -m bot` does, with some settings overridden and the session's worker
    processes; it polls the fake server until the test ends."""
    running: list[RunningBot] = []

    async def start(**overrides: Any) -> RunningBot:
        started = run_embedded_bot(bot_settings(telegram, **overrides), worker_pool)
        running.append(started)
        await telegram.wait_for(lambda call: call.method == "deleteWebhook", timeout=10)
        return started

    yield start
    for started in running:
        await started.stop()


@pytest.fixture
async def running_bot(start_bot: StartBot) -> RunningBot:
    return await start_bot()
