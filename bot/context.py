"""What answering any request needs, handed to handlers as one value (`request`) by one middleware."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.fsm.context import FSMContext
from aiogram.types import TelegramObject, User

from bot.jobs import JobService
from bot.middlewares import Handler
from bot.originals import Originals
from bot.settings import FILTER_CHOICES, BotSettings
from bot.texts import Texts

# Where a user's chosen filter is kept in the FSM storage (/mode).
FILTER_KEY = "filter"


@dataclass(frozen=True)
class RequestContext:
    """One update's context: the bot, the job service, settings, texts in the user's language, the user's stored
    choices, the originals remembered for second looks, when the update arrived (time.monotonic(); deadlines count
    from it) and who sent it."""

    bot: Bot
    jobs: JobService
    settings: BotSettings
    texts: Texts
    state: FSMContext
    originals: Originals
    received_at: float
    user_id: int

    async def filter_name(self) -> str:
        """The user's chosen filter, or the bot's default if none (or one no longer offered) was chosen."""
        chosen = (await self.state.get_data()).get(FILTER_KEY)
        return chosen if chosen in FILTER_CHOICES else self.settings.default_filter


class RequestContextMiddleware(BaseMiddleware):
    """Builds `request` from what the dispatcher and the earlier middlewares put in the handler's data."""

    def __init__(self, jobs: JobService, originals: Originals) -> None:
        self.jobs = jobs
        self.originals = originals

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        chat = data.get("event_chat")
        user_id = user.id if user else chat.id if chat else 0
        received_at = data.get("received_at", time.monotonic())
        bot, state, texts, settings = data["bot"], data["state"], data["texts"], data["settings"]
        data["request"] = RequestContext(bot, self.jobs, settings, texts, state, self.originals, received_at, user_id)
        return await handler(event, data)
