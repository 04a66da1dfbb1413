"""The bot's routers, in the order they are tried: commands, the filter choice, pictures, then everything else."""

from __future__ import annotations

from aiogram import Router

from bot.handlers import commands, fallback, images, mode
from bot.settings import BotSettings


def create_routers(settings: BotSettings) -> list[Router]:
    """Fresh routers for one dispatcher (a router can belong to one dispatcher only)."""
    return [commands.create_router(), mode.create_router(), images.create_router(settings), fallback.create_router()]
