"""Builds the bot, its dispatcher and the web app for webhooks; shared by `python -m bot` and the tests."""

from __future__ import annotations

import logging
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseStorage
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.strategy import FSMStrategy
from aiogram.methods import GetUpdates
from aiogram.types import BotCommand, BotCommandScopeDefault
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot import metrics
from bot.distributed import DeduplicateUpdates, QueueService, redis_client_settings
from bot.handlers import create_routers
from bot.jobs import JobService
from bot.middlewares import AllowedUsersMiddleware, LanguageMiddleware, RequestLogMiddleware
from bot.originals import MemoryOriginals, RedisOriginals
from bot.retry import RetryRequests
from bot.settings import BotSettings
from bot.texts import ENGLISH, RUSSIAN
from bot.workers import ImageService, WorkerPool

logger = logging.getLogger(__name__)


class ConfigurationError(Exception):
    """The settings ask for something this installation cannot do; the message says what to change."""


def token_secrets(settings: BotSettings) -> list[str]:
    """The strings that must never appear in a log: the token, its secret half on its own, and the Redis URL (it
    carries Redis's password). The process installs their redaction as it starts (`bot.logs.configure_logging`)."""
    token = settings.bot_token.get_secret_value()
    redis = [settings.redis_url.get_secret_value()] if settings.redis_url else []
    return [token, token.partition(":")[2], *redis]


def create_bot(settings: BotSettings, retry: bool = True, pacing: BaseRequestMiddleware | None = None) -> Bot:
    """The Bot, talking to api.telegram.org or to TELEGRAM_API_URL (a self-hosted Bot API server, or a fake);
    without `retry`, each request is tried once (the start-up check has a backoff of its own). `pacing` holds
    messages back to Telegram's flood limits (every attempt, retries too, takes its own slot).

    The token's redaction from logs is the process's business: `python -m bot` installs it as it starts."""
    timeout = settings.request_timeout_seconds
    if settings.telegram_api_url:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url), timeout=timeout)
    else:
        session = AiohttpSession(timeout=timeout)
    if retry:
        session.middleware(RetryRequests())
    if pacing is not None:
        session.middleware(pacing)
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def create_storage(settings: BotSettings) -> BaseStorage:
    """Redis when REDIS_URL is set (the filter choice survives restarts), memory otherwise."""
    if settings.redis_url is None:
        return MemoryStorage()
    try:
        from aiogram.fsm.storage.redis import RedisStorage
    except ImportError as error:
        raise ConfigurationError("REDIS_URL is set but the redis package is missing: pip install redis") from error
    return RedisStorage.from_url(settings.redis_url.get_secret_value(), connection_kwargs=redis_client_settings())


def create_service(settings: BotSettings, pool: WorkerPool | None) -> ImageService | QueueService:
    """The embedded service over a local pool, or (REDIS_URL set, no pool) the queue to the worker machines."""
    if pool is not None:
        service = ImageService(
            pool,
            queue_limit=settings.queue_limit,
            per_user_limit=settings.per_user_limit,
            video_workers=settings.video_processes,
            video_queue_limit=settings.video_queue_limit,
        )
        metrics.QUEUE_DEPTH.set_function(lambda: service.queue_depth)
        metrics.WORKERS_ALIVE.set_function(lambda: len(pool.worker_pids()))
        return service
    assert settings.redis_url is not None
    return QueueService(
        settings.redis_url.get_secret_value(),
        queue_limit=settings.queue_limit,
        per_user_limit=settings.per_user_limit,
        video_queue_limit=settings.video_queue_limit,
    )


def create_dispatcher(settings: BotSettings, service: JobService, storage: BaseStorage | None = None) -> Dispatcher:
    """The dispatcher with every router and middleware; `settings` and `service` reach handlers by name.

    The filter choice is kept per user across chats (FSMStrategy.GLOBAL_USER). The FSM's middleware comes last, so
    that when its storage (Redis) is down the user still hears that the bot is unavailable.
    """
    dispatcher = Dispatcher(
        storage=storage or create_storage(settings),
        fsm_strategy=FSMStrategy.GLOBAL_USER,
        disable_fsm=True,
        settings=settings,
        service=service,
    )
    request_log = RequestLogMiddleware()
    dispatcher["request_log"] = request_log
    dispatcher.update.outer_middleware(request_log)
    dispatcher.update.outer_middleware(LanguageMiddleware())
    dispatcher["background"] = []
    dispatcher["originals"] = MemoryOriginals(settings.strict_window_seconds)
    dispatcher["healthy"] = service.healthy
    dispatcher["close_service"] = service.close
    if isinstance(service, QueueService):
        dispatcher.update.outer_middleware(
            DeduplicateUpdates(service.redis, service.instance, wait_limit=settings.deadline_seconds + 5)
        )
        dispatcher["background"] = [service.watch_cluster]
        dispatcher["originals"] = RedisOriginals(service.redis, settings.strict_window_seconds)
        dispatcher.startup.register(service.start)
    if settings.allowed_user_ids is not None:
        dispatcher.update.outer_middleware(AllowedUsersMiddleware(settings.allowed_user_ids))
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.include_routers(*create_routers(settings))
    dispatcher.startup.register(on_startup)
    dispatcher.shutdown.register(on_shutdown)
    return dispatcher


async def on_startup(bot: Bot, settings: BotSettings) -> None:
    """Publish the command menu in both languages; take updates by polling or by webhook, as configured."""
    for texts, language in ((ENGLISH, None), (RUSSIAN, "ru")):
        commands = [BotCommand(command=name, description=text) for name, text in texts.commands.items()]
        await bot.set_my_commands(commands, scope=BotCommandScopeDefault(), language_code=language)
    if settings.webhook_url:
        assert settings.webhook_secret is not None
        await bot.set_webhook(
            settings.webhook_url,
            secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=["message", "callback_query"],
        )
    else:
        await bot.delete_webhook(drop_pending_updates=False)


async def on_shutdown(bot: Bot, settings: BotSettings, request_log: RequestLogMiddleware) -> None:
    """Graceful stop: finish the requests in flight, then (polling) tell Telegram which updates were handled.

    Without the last confirmation, Telegram would deliver the updates of the last batch again after a restart.
    """
    if not await request_log.drain(timeout=settings.deadline_seconds + 5):
        logger.warning("stopping with requests still in flight")
    if not settings.webhook_url and request_log.last_update_id is not None:
        try:
            await bot(GetUpdates(offset=request_log.last_update_id + 1, limit=1, timeout=0))
        except Exception as error:  # the bot is stopping anyway; at worst an update is answered twice
            logger.warning("could not confirm the last updates: %s", type(error).__name__)


def create_webhook_app(bot: Bot, dispatcher: Dispatcher, settings: BotSettings, **data: Any) -> web.Application:
    """An aiohttp app that takes updates at WEBHOOK_PATH, checking Telegram's secret token header; /metrics and
    /health beside it."""
    assert settings.webhook_secret is not None
    app = web.Application()
    # In distributed mode Telegram hears "done" only once the update is answered, so an update whose front died is
    # delivered again (to another front behind the proxy); the claim in Redis keeps it from being answered twice.
    SimpleRequestHandler(
        dispatcher=dispatcher,
        bot=bot,
        handle_in_background=settings.redis_url is None,
        secret_token=settings.webhook_secret.get_secret_value(),
    ).register(app, path=settings.webhook_path)
    setup_application(app, dispatcher, bot=bot, **data)
    metrics.add_routes(app, dispatcher["healthy"])
    return app
