"""`python -m bot` / `photo-anon-bot`: start the worker processes, then take updates by long polling or webhook."""

from __future__ import annotations

import asyncio
import logging
import sys

from aiogram import Dispatcher
from aiohttp import web
from pydantic import ValidationError

from bot.app import (
    ConfigurationError,
    create_bot,
    create_dispatcher,
    create_service,
    create_storage,
    create_webhook_app,
    token_secrets,
)
from bot.logs import configure_logging
from bot.settings import BotSettings, describe_error
from bot.workers import WorkerPool, WorkerStartError

logger = logging.getLogger("bot")

EXIT_CONFIGURATION = 2


def fail(message: str) -> int:
    print(f"photo-anon-bot: {message}", file=sys.stderr)
    return EXIT_CONFIGURATION


def serve(settings: BotSettings, dispatcher: Dispatcher) -> None:
    """Long polling unless WEBHOOK_URL is set; both stop gracefully on SIGINT or SIGTERM."""
    bot = create_bot(settings)
    if settings.webhook_url:
        app = create_webhook_app(bot, dispatcher, settings)
        web.run_app(app, host=settings.webhook_host, port=settings.webhook_port, print=None)
    else:
        asyncio.run(dispatcher.start_polling(bot, allowed_updates=dispatcher.resolve_used_update_types()))


def main() -> int:
    """Exit code 2 with one line on stderr for bad settings; 0 after a graceful stop (Ctrl-C or SIGTERM)."""
    try:
        settings = BotSettings()
    except ValidationError as error:
        return fail(describe_error(error))
    configure_logging(settings.log_level, token_secrets(settings))
    try:
        storage = create_storage(settings)
    except ConfigurationError as error:
        return fail(str(error))
    logger.info("starting %d worker process(es)", settings.workers)
    pool = WorkerPool(settings.workers, settings.options())
    try:
        pool.start()
    except WorkerStartError as error:
        pool.close(wait=False)
        return fail(str(error))
    try:
        serve(settings, create_dispatcher(settings, create_service(settings, pool), storage))
    except KeyboardInterrupt:
        pass
    finally:
        pool.close(wait=True)
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
