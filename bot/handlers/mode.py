"""/mode: an inline keyboard to choose the filter; the choice is kept per user in the FSM storage."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.context import FILTER_KEY, RequestContext
from bot.settings import FILTER_CHOICES
from bot.texts import Texts


class FilterChoice(CallbackData, prefix="filter"):
    name: str


def filter_keyboard(texts: Texts, current: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for name in FILTER_CHOICES:
        mark = "✅ " if name == current else ""
        builder.button(text=mark + texts.filter_names[name], callback_data=FilterChoice(name=name))
    builder.adjust(2)
    return builder.as_markup()


def create_router() -> Router:
    router = Router(name="mode")

    @router.message(Command("mode"))
    async def choose(message: Message, request: RequestContext) -> None:
        current, texts = await request.filter_name(), request.texts
        await message.answer(
            texts.mode_prompt.format(current=texts.filter_names[current]), reply_markup=filter_keyboard(texts, current)
        )

    @router.callback_query(FilterChoice.filter(F.name.in_(FILTER_CHOICES)))
    async def chosen(query: CallbackQuery, callback_data: FilterChoice, request: RequestContext) -> None:
        texts = request.texts
        await request.state.update_data({FILTER_KEY: callback_data.name})
        label = texts.filter_names[callback_data.name]
        if isinstance(query.message, Message):
            try:
                await query.message.edit_text(
                    texts.mode_chosen.format(current=label), reply_markup=filter_keyboard(texts, callback_data.name)
                )
            except TelegramBadRequest as error:
                if "not modified" not in error.message:  # the same button pressed twice changes nothing
                    raise
        await query.answer(label)

    @router.callback_query()
    async def stale(query: CallbackQuery) -> None:
        """A button from an old keyboard: stop the spinner, change nothing."""
        await query.answer()

    return router
