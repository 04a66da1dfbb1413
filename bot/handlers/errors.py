"""The one place an unexpected failure of any handler is turned into the user's text and the metric's label."""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Router
from aiogram.types import ErrorEvent

from bot import metrics
from bot.texts import Texts, texts_for

logger = logging.getLogger(__name__)


def create_router() -> Router:
    router = Router(name="errors")

    @router.errors()
    async def unexpected(event: ErrorEvent, texts: Texts | None = None) -> None:
        """Logged with the chat's id only, counted, and still answered: nobody is left without a word."""
        update, texts = event.update, texts or texts_for(None)
        chat = update.message.chat.id if update.message else "-"
        logger.error("chat %s: request failed", chat, exc_info=event.exception)
        metrics.REQUESTS.labels("error").inc()
        with suppress(Exception):
            if update.message is not None:
                await update.message.reply(texts.failed)
            elif update.callback_query is not None:
                await update.callback_query.answer(texts.failed, show_alert=True)

    return router
