"""The bot's routers, in the order they are tried: commands, the second look and the choice of faces (before /mode's
catch-all for stale buttons), the filter choice, pictures, videos, then everything else; and what any handler's
failure comes to."""

from __future__ import annotations

from aiogram import Router

from bot.handlers import choose, commands, errors, fallback, images, mode, strict, videos
from bot.settings import BotSettings


def create_routers(settings: BotSettings) -> list[Router]:
    """Fresh routers for one dispatcher (a router can belong to one dispatcher only)."""
    return [
        commands.create_router(),
        strict.create_router(),
        choose.create_router(),
        mode.create_router(),
        images.create_router(settings),
        videos.create_router(),
        fallback.create_router(),
        errors.create_router(),
    ]
