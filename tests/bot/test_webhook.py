"""Webhook mode: updates posted by Telegram with the secret token are handled; anyone else is turned away."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from bot.app import create_bot, create_dispatcher, create_webhook_app
from bot.embedded import EmbeddedDeployment
from bot.pool import ProcessPool
from bot.texts import ENGLISH
from testing.fake_telegram import FakeTelegramServer, FakeUser
from tests.bot.helpers import bot_settings

SECRET = "webhook-secret-for-tests"
ALICE = FakeUser(1001, "Alice", "en")


@pytest.fixture
async def webhook_url(telegram: FakeTelegramServer, worker_pool: ProcessPool) -> AsyncIterator[str]:
    settings = bot_settings(telegram, webhook_url="https://bot.example.com/hook", webhook_secret=SECRET)
    deployment = EmbeddedDeployment(settings, worker_pool)
    dispatcher = create_dispatcher(settings, deployment)
    app = create_webhook_app(create_bot(settings), dispatcher, settings, deployment)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}{settings.webhook_path}"
    await runner.cleanup()


def start_update(update_id: int) -> dict[str, object]:
    message = {
        "message_id": 1,
        "date": 0,
        "chat": {"id": ALICE.id, "type": "private"},
        "from": ALICE.as_json(),
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    return {"update_id": update_id, "message": message}


async def test_webhook_takes_updates_with_the_secret_only(telegram: FakeTelegramServer, webhook_url: str) -> None:
    (registered,) = telegram.calls_of("setWebhook")
    assert registered.params["url"] == "https://bot.example.com/hook"
    assert registered.params["secret_token"] == SECRET

    async with aiohttp.ClientSession() as http:
        refused = await http.post(webhook_url, json=start_update(1), headers={"X-Telegram-Bot-Api-Secret-Token": "x"})
        accepted = await http.post(
            webhook_url, json=start_update(2), headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )

    assert refused.status == 401
    assert accepted.status == 200
    (answer,) = await telegram.wait_for(lambda call: call.method == "sendMessage")
    assert answer.chat_id == ALICE.id and answer.text == ENGLISH.start
    assert len(telegram.calls_of("sendMessage")) == 1


async def test_the_webhook_listener_serves_no_metrics_and_no_health(webhook_url: str) -> None:
    """The webhook's listener faces the internet; how busy the bot is stays on METRICS_HOST's server."""
    async with aiohttp.ClientSession() as http:
        statuses = [(await http.get(URL(webhook_url).with_path(path))).status for path in ("/metrics", "/health")]

    assert statuses == [404, 404]
