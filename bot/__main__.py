"""`python -m bot` / `photo-anon-bot`: check the token, choose the deployment (this machine's worker processes, or a
cluster's front when REDIS_URL is set), then take updates by long polling or webhook."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)

from bot import metrics
from bot.app import create_bot, create_dispatcher, create_editor_app, create_webhook_app, served
from bot.cluster.deployment import ClusterDeployment
from bot.deployment import Deployment
from bot.embedded import EmbeddedDeployment
from bot.polling import poll_until_answered
from bot.pool import start_pool
from bot.retry import Outage
from bot.settings import BotSettings, StartupError, entry_point, stop_on_signals

logger = logging.getLogger("bot")

# Waits between attempts to reach Telegram at start, growing to the last and staying there.
CONNECT_DELAYS = (1, 2, 5, 10, 30, 60)


class BadTokenError(Exception):
    """Telegram does not know this token: revoked, or mistyped."""


async def reach_telegram(settings: BotSettings) -> str:
    """Ask Telegram who the bot is until it answers: a server must outlive a network blip at boot, so an
    unreachable Telegram is one log line and a retry with backoff. A token Telegram rejects raises BadTokenError,
    before any worker spends seconds starting."""
    bot = create_bot(settings, retry=False)
    outage = Outage("Telegram", CONNECT_DELAYS, logger)
    try:
        while True:
            try:
                me = await bot.get_me()
            except (TelegramUnauthorizedError, TelegramNotFound):
                raise BadTokenError from None
            except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as error:
                await outage.wait(error, at_least=getattr(error, "retry_after", 0))
                continue
            outage.over()
            return me.username or str(me.id)
    finally:
        await bot.session.close()


@asynccontextmanager
async def deployment_for(settings: BotSettings) -> AsyncIterator[Deployment]:
    """The one place the deployment is chosen: a cluster's front when REDIS_URL is set, else this machine with its
    own worker processes (started, loaded and timed first; StartupError if they cannot start)."""
    deployment: Deployment
    if settings.redis_url is not None:
        logger.info("distributed mode: jobs go to the worker machines through Redis")
        deployment = ClusterDeployment(settings)
    else:
        deployment = EmbeddedDeployment(settings, await asyncio.to_thread(start_pool, settings), owns_pool=True)
    try:
        yield deployment
    finally:
        await deployment.close()


async def serve(settings: BotSettings) -> None:
    """Long polling unless WEBHOOK_URL is set, with the Mini App editor's web server when WEBAPP_URL is set (on the
    webhook's server, with a webhook); both stop gracefully on SIGINT or SIGTERM."""
    stop = stop_on_signals()
    async with deployment_for(settings) as deployment:
        bot = create_bot(settings, pacing=deployment.pacing())
        dispatcher = create_dispatcher(settings, deployment)
        background = [asyncio.create_task(task()) for task in deployment.background()]
        metrics_runner = None
        if settings.metrics_port:
            metrics_runner = await metrics.serve(settings.metrics_host, settings.metrics_port, deployment.jobs.healthy)
        try:
            if settings.webhook_url:
                async with served(
                    create_webhook_app(bot, dispatcher, settings, deployment),
                    settings.webhook_host,
                    settings.webhook_port,
                ):
                    await stop.wait()
            else:
                editor = create_editor_app(bot, dispatcher, settings, deployment)
                async with served(editor, settings.webapp_host, settings.webapp_port):
                    drain = settings.deadline_seconds + 5
                    await poll_until_answered(dispatcher, bot, stop, drain, answered=deployment.answered_updates())
        finally:
            for task in background:
                task.cancel()
            if metrics_runner is not None:
                await metrics_runner.cleanup()
            await bot.session.close()


def main(argv: list[str] | None = None) -> int:
    """Exit code 2 with one line on stderr for bad settings or a token Telegram rejects; 0 after a graceful stop
    (Ctrl-C or SIGTERM)."""
    return entry_point("photo-anon-bot", "python -m bot   (or photo-anon-bot)", BotSettings, argv, run)


def run(settings: BotSettings) -> int:
    try:
        name = asyncio.run(reach_telegram(settings))
    except BadTokenError:
        raise StartupError(
            "Telegram rejected BOT_TOKEN (revoked or mistyped): get the current one from @BotFather"
        ) from None
    logger.info("bot @%s", name)
    with suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
