"""Helpers for the bot's tests: settings pointing at the fake server, the running bot, the replies decoded. What the
benchmarks share with the tests (the fake server, its token, the image encoders) lives in `testing`."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from aiogram import Bot, Dispatcher
from PIL import Image

from bot.settings import BotSettings
from bot.workers import ImageService
from testing.fake_telegram import TOKEN, FakeTelegramServer

TEST_WORKERS = 2


@dataclass
class RunningBot:
    settings: BotSettings
    bot: Bot
    dispatcher: Dispatcher
    service: ImageService
    polling: asyncio.Task[None]

    async def stop(self) -> None:
        if not self.polling.done():
            await self.dispatcher.stop_polling()
        await self.polling


StartBot = Callable[..., Awaitable[RunningBot]]


def bot_settings(server: FakeTelegramServer, **overrides: Any) -> BotSettings:
    """Settings as the environment would give them, pointing at the fake server; no `.env` is read."""
    values: dict[str, Any] = {
        "bot_token": TOKEN,
        "telegram_api_url": server.base_url,
        "workers": TEST_WORKERS,
        "album_window_seconds": 0.3,
        **overrides,
    }
    return BotSettings(_env_file=None, **values)


def decode(data: bytes) -> np.ndarray:
    """Bytes the bot sent back, as BGR pixels."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None, "the bot sent something that is not an image"
    return pixels


def pil_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
