"""/start and /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.context import RequestContext
from bot.texts import Texts


def create_router() -> Router:
    router = Router(name="commands")

    @router.message(CommandStart())
    async def start(message: Message, texts: Texts) -> None:
        await message.answer(texts.start)

    @router.message(Command("help"))
    async def help_(message: Message, request: RequestContext) -> None:
        settings, texts = request.settings, request.texts
        chosen = await request.filter_name()
        await message.answer(
            texts.help.format(
                max_mb=settings.max_file_bytes // (1024 * 1024),
                max_s=round(settings.max_video_seconds),
                strict_minutes=round(settings.strict_window_seconds / 60),
                current=texts.filter_names[chosen],
            )
        )

    return router
