"""The embedded bot as `python -m bot` runs it, started inside a test's or benchmark's event loop on worker processes
it is given, polling a fake Bot API until stopped, with the Mini App editor's server when WEBAPP_URL is set."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiogram import Bot, Dispatcher

from bot.app import create_bot, create_dispatcher, create_editor_app, served
from bot.embedded import EmbeddedDeployment
from bot.polling import poll_until_answered
from bot.pool import ProcessPool
from bot.settings import BotSettings


@dataclass
class RunningBot:
    settings: BotSettings
    bot: Bot
    dispatcher: Dispatcher
    deployment: EmbeddedDeployment
    polling: asyncio.Task[None]
    stopping: asyncio.Event

    async def stop(self) -> None:
        self.stopping.set()
        await self.polling
        await self.deployment.close()
        await self.bot.session.close()


def run_embedded_bot(settings: BotSettings, pool: ProcessPool) -> RunningBot:
    """Start polling now; `stop()` ends it as SIGTERM would (the updates in flight are answered first)."""
    bot = create_bot(settings)
    deployment = EmbeddedDeployment(settings, pool)
    dispatcher = create_dispatcher(settings, deployment)
    stop = asyncio.Event()

    async def serve() -> None:
        editor = create_editor_app(bot, dispatcher, settings, deployment)
        async with served(editor, settings.webapp_host, settings.webapp_port):
            await poll_until_answered(
                dispatcher, bot, stop, drain_seconds=settings.deadline_seconds + 5, polling_timeout=1
            )

    return RunningBot(settings, bot, dispatcher, deployment, asyncio.create_task(serve()), stop)
