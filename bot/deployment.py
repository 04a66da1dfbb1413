"""What differs between the two deployments, one machine (`bot.embedded`) or a cluster's front (`bot.cluster`), as
one object that `python -m bot` chooses once (`bot.__main__.deployment_for`); no other module asks which one runs."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from aiogram import BaseMiddleware
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.fsm.storage.base import BaseStorage

from bot.jobs import JobService
from bot.middlewares import RateCounter
from bot.originals import Originals
from bot.polling import AnsweredUpdates


class Deployment:
    """What a deployment supplies: the job service, the storage of the users' choices, the store of originals, the
    count of each user's cheap updates and Mini App calls, middlewares for updates in and requests out, and
    background tasks."""

    jobs: JobService
    storage: BaseStorage
    originals: Originals
    rates: RateCounter
    # With a webhook, whether Telegram hears "done" only once an update is answered, so that an update whose front
    # died is delivered again; it takes a claim on each update (the cluster's) to keep that from answering twice.
    webhook_answers_first: ClassVar[bool] = False

    def answered_updates(self) -> AnsweredUpdates | None:
        """Where the ids of updates answered but not yet confirmed are kept across a restart (None: the update
        middlewares keep them)."""
        return None

    def update_middlewares(self) -> list[BaseMiddleware]:
        """Outer middlewares every update passes before the handlers (after the language is known)."""
        return []

    def pacing(self) -> BaseRequestMiddleware | None:
        """What holds outgoing messages back to Telegram's flood limits, beyond honouring its 429s."""
        return None

    def background(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """Tasks that run for as long as the bot serves."""
        return []

    async def start(self, **_: Any) -> None:
        """Called as the dispatcher starts (aiogram passes its workflow data)."""

    async def close(self) -> None:
        """Release what the deployment holds when the bot stops."""
        await self.jobs.close()
