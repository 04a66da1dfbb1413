"""`python -m bot` / `photo-anon-bot`: check the token, start the worker processes (embedded) or join the queue
(distributed, REDIS_URL set), then take updates by long polling or webhook."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from contextlib import suppress

from aiogram import Bot
from aiogram.exceptions import (
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.fsm.storage.base import BaseStorage
from aiohttp import web
from pydantic import ValidationError

from bot import metrics
from bot.app import (
    ConfigurationError,
    create_bot,
    create_dispatcher,
    create_service,
    create_storage,
    create_webhook_app,
    token_secrets,
)
from bot.distributed import QueueService
from bot.flood import SharedPacing
from bot.jobs import JobService, WorkerStartError
from bot.logs import configure_logging
from bot.polling import poll_until_answered
from bot.settings import BotSettings, describe_error, usage
from bot.workers import start_pool

logger = logging.getLogger("bot")

EXIT_CONFIGURATION = 2
# Waits between attempts to reach Telegram at start, growing to the last and staying there.
CONNECT_DELAYS = (1, 2, 5, 10, 30, 60)


class BadTokenError(Exception):
    """Telegram does not know this token: revoked, or mistyped."""


def fail(message: str) -> int:
    print(f"photo-anon-bot: {message}", file=sys.stderr)
    return EXIT_CONFIGURATION


async def reach_telegram(settings: BotSettings) -> str:
    """Ask Telegram who the bot is until it answers: a server must outlive a network blip at boot, so an
    unreachable Telegram is one log line and a retry with backoff. A token Telegram rejects raises BadTokenError,
    before any worker spends seconds starting."""
    bot = create_bot(settings, retry=False)
    failures = 0
    try:
        while True:
            try:
                me = await bot.get_me()
            except (TelegramUnauthorizedError, TelegramNotFound):
                raise BadTokenError from None
            except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as error:
                delay = CONNECT_DELAYS[min(failures, len(CONNECT_DELAYS) - 1)]
                if isinstance(error, TelegramRetryAfter):
                    delay = max(delay, error.retry_after)
                level = logging.WARNING if failures == 0 else logging.DEBUG
                logger.log(level, "Telegram unreachable (%s); retrying until it answers", type(error).__name__)
                failures += 1
                await asyncio.sleep(delay)
                continue
            if failures:
                logger.info("Telegram reached after %d failed attempt(s)", failures)
            return me.username or str(me.id)
    finally:
        await bot.session.close()


async def serve(settings: BotSettings, service: JobService, storage: BaseStorage) -> None:
    """Long polling unless WEBHOOK_URL is set; both stop gracefully on SIGINT or SIGTERM."""
    pacing = SharedPacing(service.redis) if isinstance(service, QueueService) else None
    bot = create_bot(settings, pacing=pacing)
    dispatcher = create_dispatcher(settings, service, storage)
    background = [asyncio.create_task(task()) for task in dispatcher["background"]]
    metrics_runner = None
    if settings.metrics_port:
        metrics_runner = await metrics.serve(settings.metrics_host, settings.metrics_port, dispatcher["healthy"])
    try:
        if settings.webhook_url:
            await serve_webhook(bot, dispatcher, settings)
        elif settings.redis_url is not None:
            await poll_until_answered(dispatcher, bot)
        else:
            await dispatcher.start_polling(bot, allowed_updates=dispatcher.resolve_used_update_types())
    finally:
        for task in background:
            task.cancel()
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await dispatcher["close_service"]()
        await bot.session.close()


async def serve_webhook(bot: Bot, dispatcher: object, settings: BotSettings) -> None:
    app = create_webhook_app(bot, dispatcher, settings)  # type: ignore[arg-type]
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Exit code 2 with one line on stderr for bad settings or a token Telegram rejects; 0 after a graceful stop
    (Ctrl-C or SIGTERM)."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        print(usage("python -m bot   (or photo-anon-bot)", BotSettings))
        return 0
    try:
        settings = BotSettings()
    except ValidationError as error:
        return fail(describe_error(error))
    configure_logging(settings.log_level, token_secrets(settings))
    try:
        storage = create_storage(settings)
    except ConfigurationError as error:
        return fail(str(error))
    try:
        name = asyncio.run(reach_telegram(settings))
    except BadTokenError:
        return fail("Telegram rejected BOT_TOKEN (revoked or mistyped): get the current one from @BotFather")
    except KeyboardInterrupt:
        return 0
    logger.info("bot @%s", name)
    pool = None
    if settings.redis_url is None:
        try:
            pool = start_pool(settings)
        except WorkerStartError as error:
            return fail(str(error))
    else:
        logger.info("distributed mode: jobs go to the worker machines through Redis")
    try:
        with suppress(KeyboardInterrupt):
            asyncio.run(serve(settings, create_service(settings, pool), storage))
    finally:
        if pool is not None:
            # Every answer that could still be sent has been (or the drain gave up on it): a video still running
            # would only keep the stop waiting for a result nobody reads.
            pool.close(wait=False)
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
