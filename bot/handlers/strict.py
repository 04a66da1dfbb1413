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
from dataclasses import replace

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.context import RequestContext
from bot.handlers.buttons import SecondLook
from bot.handlers.common import picture_refusal
from bot.handlers.images import serve_pictures
from bot.inputs import Picture, clip_of, picture_of
from bot.originals import SECOND_LOOKS_PER_RESULT, Original

logger = logging.getLogger(__name__)


def picture_of_original(anchor: Message, original: Original) -> Picture:
    """The remembered original as a picture of a request, answered as a reply to `anchor`."""
    return Picture(anchor, original.file_id, original.file_size, original.pixels, original.as_document, None)


async def second_look_allowed(request: RequestContext, chat_id: int, result_id: int, original: Original) -> bool:
    """Whether this result may have its (one) second look, counting it if so: a slow job that one user could
    otherwise ask for again and again for the hour the result is remembered."""
    if original.second_looks >= SECOND_LOOKS_PER_RESULT:
        return False
    await request.originals.update(chat_id, result_id, replace(original, second_looks=original.second_looks + 1))
    return True


async def original_for_command(message: Message, request: RequestContext) -> tuple[Picture | None, str | None]:
    """The picture /strict asks about, or the text explaining why there is none."""
    replied, texts = message.reply_to_message, request.texts
    if replied is None:
        return None, texts.strict_how
    if replied.from_user is not None and replied.from_user.id == request.bot.id:
        original = await request.originals.recall(message.chat.id, replied.message_id)
        if original is None:
            return None, texts.strict_how
        if original.user_id != request.user_id:
            return None, texts.strict_not_yours
        if not await second_look_allowed(request, message.chat.id, replied.message_id, original):
            return None, texts.strict_again
        return picture_of_original(message, original), None
    if replied.from_user is None or replied.from_user.id != request.user_id:
        return None, texts.strict_not_yours
    picture = picture_of(replied)
    if picture is None:
        return None, texts.strict_photos_only if clip_of(replied) else texts.strict_how
    return Picture(message, picture.file_id, picture.file_size, picture.pixels, picture.as_document, None), None


def create_router() -> Router:
    router = Router(name="strict")

    @router.message(Command("strict"))
    async def strict_command(message: Message, request: RequestContext) -> None:
        picture, reason = await original_for_command(message, request)
        if picture is not None:
            reason = picture_refusal(picture, request.settings, request.texts)
        if picture is None or reason is not None:
            await message.reply(reason or request.texts.strict_how)
            return
        await serve_pictures(message, [(1, picture)], [], request, strict=True)

    @router.callback_query(SecondLook.filter())
    async def look_harder(query: CallbackQuery, request: RequestContext) -> None:
        result, texts = query.message, request.texts
        original = None
        if isinstance(result, Message):
            original = await request.originals.recall(result.chat.id, result.message_id)
        if original is None or not isinstance(result, Message):
            await query.answer(texts.strict_expired, show_alert=True)
            return
        if original.user_id != request.user_id:
            await query.answer(texts.strict_not_yours, show_alert=True)
            return
        if not await second_look_allowed(request, result.chat.id, result.message_id, original):
            await query.answer(texts.strict_again, show_alert=True)
            return
        await query.answer(texts.strict_started)
        with contextlib.suppress(TelegramBadRequest):  # one press is enough: the button goes
            await result.edit_reply_markup(reply_markup=None)
        await serve_pictures(result, [(1, picture_of_original(result, original))], [], request, strict=True)

    return router
