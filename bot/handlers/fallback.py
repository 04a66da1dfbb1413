"""Everything that is not a command or a picture: one reply saying what is accepted."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import Message

from bot.texts import Texts


def create_router() -> Router:
    router = Router(name="fallback")

    @router.message()
    async def unsupported(message: Message, texts: Texts) -> None:
        await message.reply(texts.unsupported)

    return router
