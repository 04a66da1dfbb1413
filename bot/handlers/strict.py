"""A second, more thorough look at a photo where the user saw a face left uncovered: the "Look harder" button under
a result, or /strict sent as a reply to their photo (or to the bot's answer to it).

The photo is not sent again and the bot kept none: Telegram still holds it, so the original's file id is all that
is needed. A reply to the user's own photo carries it; a result (button or reply) finds it in the short-lived map
of results to originals (bot.originals). The second look runs with the most thorough detection there is
(`Options.strict()`, or STRICT_DETECTOR), priced higher than a first look, in the photo lane and its budget.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.handlers.images import SecondLook, answered, serve_pictures
from bot.handlers.inputs import Picture, clip_of, picture_of, picture_refusal
from bot.originals import Original, Originals
from bot.settings import BotSettings
from bot.texts import Texts

logger = logging.getLogger(__name__)


def picture_of_original(anchor: Message, original: Original) -> Picture:
    """The remembered original as a picture of a request, answered as a reply to `anchor`."""
    return Picture(anchor, original.file_id, original.file_size, original.pixels, original.as_document, None)


async def original_for_command(
    message: Message, bot: Bot, originals: Originals, texts: Texts
) -> tuple[Picture | None, str | None]:
    """The picture /strict asks about, or the text explaining why there is none."""
    replied = message.reply_to_message
    user_id = message.from_user.id if message.from_user else message.chat.id
    if replied is None:
        return None, texts.strict_how
    if replied.from_user is not None and replied.from_user.id == bot.id:
        original = await originals.recall(message.chat.id, replied.message_id)
        if original is None:
            return None, texts.strict_how
        if original.user_id != user_id:
            return None, texts.strict_not_yours
        return picture_of_original(message, original), None
    if replied.from_user is None or replied.from_user.id != user_id:
        return None, texts.strict_not_yours
    picture = picture_of(replied)
    if picture is None:
        return None, texts.strict_photos_only if clip_of(replied) else texts.strict_how
    return Picture(message, picture.file_id, picture.file_size, picture.pixels, picture.as_document, None), None


def create_router() -> Router:
    router = Router(name="strict")

    @router.message(Command("strict"))
    async def strict_command(
        message: Message, bot: Bot, originals: Originals, texts: Texts, settings: BotSettings, **context: Any
    ) -> None:
        picture, reason = await original_for_command(message, bot, originals, texts)
        if picture is not None:
            reason = picture_refusal(picture, settings, texts)
        if picture is None or reason is not None:
            await message.reply(reason or texts.strict_how)
            return
        work = serve_pictures(
            message,
            [(1, picture)],
            [],
            album=False,
            strict=True,
            bot=bot,
            originals=originals,
            texts=texts,
            settings=settings,
            **_context(context),
        )
        await answered(message, texts, work)

    @router.callback_query(SecondLook.filter())
    async def look_harder(
        query: CallbackQuery, bot: Bot, originals: Originals, texts: Texts, settings: BotSettings, **context: Any
    ) -> None:
        result = query.message
        original = None
        if isinstance(result, Message):
            original = await originals.recall(result.chat.id, result.message_id)
        if original is None or not isinstance(result, Message):
            await query.answer(texts.strict_expired, show_alert=True)
            return
        if original.user_id != query.from_user.id:
            await query.answer(texts.strict_not_yours, show_alert=True)
            return
        await query.answer(texts.strict_started)
        with contextlib.suppress(TelegramBadRequest):  # one press is enough: the button goes
            await result.edit_reply_markup(reply_markup=None)
        work = serve_pictures(
            result,
            [(1, picture_of_original(result, original))],
            [],
            album=False,
            strict=True,
            user_id=query.from_user.id,
            bot=bot,
            originals=originals,
            texts=texts,
            settings=settings,
            **_context(context),
        )
        await answered(result, texts, work)

    return router


def _context(data: dict[str, Any]) -> dict[str, Any]:
    return {name: data[name] for name in ("service", "state", "received_at")}
