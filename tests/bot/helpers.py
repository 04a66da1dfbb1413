"""Helpers for the bot's tests: settings pointing at the fake server, the running bot, the replies decoded. What the
benchmarks share with the tests (the fake server, its token, the image encoders) lives in `testing`."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Any

import cv2
import numpy as np
from PIL import Image

from bot.settings import BotSettings
from testing.bots import RunningBot
from testing.fake_telegram import TOKEN, FakeTelegramServer
from testing.images import Box, composite

TEST_WORKERS = 2


StartBot = Callable[..., Awaitable[RunningBot]]


def bot_settings(server: FakeTelegramServer, **overrides: Any) -> BotSettings:
    """Settings as the environment would give them, pointing at the fake server; no `.env` is read."""
    return bot_settings_for(TOKEN, telegram_api_url=server.base_url, **overrides)


def bot_settings_for(token: str, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {"bot_token": token, "workers": TEST_WORKERS, "album_window_seconds": 0.3, **overrides}
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


# Small pictures, one per user, for the tests that check nobody gets another user's result.
SIZE = (320, 240)


def user_photos(count: int) -> list[tuple[np.ndarray, list[Box]]]:
    """A different small picture per user: its face elsewhere, its background another shade."""
    width, height = SIZE
    return [
        composite(SIZE, [(10 + (index * 37) % (width - 110), 10 + (index * 23) % (height - 110), 90)], 30 + 4 * index)
        for index in range(count)
    ]


def kept_well_away(boxes: list[Box], shape: tuple[int, ...]) -> np.ndarray:
    keep = np.ones(shape[:2], bool)
    for box in boxes:
        mx, my = int(box.w * 0.6), int(box.h * 0.6)
        keep[max(0, box.y - my) : box.y + box.h + my, max(0, box.x - mx) : box.x + box.w + mx] = False
    return keep


def is_own_picture(result: np.ndarray, image: np.ndarray, boxes: list[Box]) -> bool:
    """Away from its faces a result is its photo unchanged, and every user's photo differs there."""
    keep = kept_well_away(boxes, image.shape)
    return float(np.abs(result.astype(np.int16) - image.astype(np.int16)).mean(axis=2)[keep].mean()) < 4
