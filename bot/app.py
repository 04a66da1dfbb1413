"""Builds the bot, its dispatcher and its web server (the webhook's, or the Mini App editor's own under long
polling) over a deployment; shared by `python -m bot` and the tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.strategy import FSMStrategy
from aiogram.types import BotCommand, BotCommandScopeDefault
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.context import RequestContextMiddleware
from bot.deployment import Deployment
from bot.handlers import create_routers
from bot.middlewares import AllowedUsersMiddleware, LanguageMiddleware, RequestLogMiddleware, ThrottleMiddleware
from bot.miniapp.server import Editor
from bot.retry import RetryRequests
from bot.settings import BotSettings
from bot.texts import ENGLISH, RUSSIAN

logger = logging.getLogger(__name__)


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


def create_dispatcher(settings: BotSettings, deployment: Deployment) -> Dispatcher:
    """The dispatcher with every router and middleware; handlers get `request` (bot.context.RequestContext).

    The filter choice is kept per user across chats (FSMStrategy.GLOBAL_USER). Strangers are turned away before
    the deployment's middlewares write anything for them; the FSM's middleware comes last, so that when its storage
    (Redis) is down the user still hears that the bot is unavailable.
    """
    dispatcher = Dispatcher(
        storage=deployment.storage, fsm_strategy=FSMStrategy.GLOBAL_USER, disable_fsm=True, settings=settings
    )
    request_log = RequestLogMiddleware()
    dispatcher["request_log"] = request_log
    dispatcher.update.outer_middleware(request_log)
    dispatcher.update.outer_middleware(LanguageMiddleware())
    if settings.allowed_user_ids is not None:
        dispatcher.update.outer_middleware(AllowedUsersMiddleware(settings.allowed_user_ids))
    dispatcher.update.outer_middleware(ThrottleMiddleware(deployment.rates, settings.messages_per_minute))
    for middleware in deployment.update_middlewares():
        dispatcher.update.outer_middleware(middleware)
    dispatcher.update.outer_middleware(dispatcher.fsm)
    dispatcher.update.outer_middleware(RequestContextMiddleware(deployment.jobs, deployment.originals))
    dispatcher.include_routers(*create_routers(settings))
    dispatcher.startup.register(deployment.start)
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


async def on_shutdown(settings: BotSettings, request_log: RequestLogMiddleware) -> None:
    """Graceful stop: finish the requests in flight (those a webhook handed over)."""
    if not await request_log.drain(timeout=settings.deadline_seconds + 5):
        logger.warning("stopping with requests still in flight")


def create_webhook_app(
    bot: Bot, dispatcher: Dispatcher, settings: BotSettings, deployment: Deployment, **data: Any
) -> web.Application:
    """An aiohttp app that takes updates at WEBHOOK_PATH, checking Telegram's secret token header, and the Mini App
    editor when WEBAPP_URL is set (/metrics and /health are on METRICS_HOST's server)."""
    assert settings.webhook_secret is not None
    app = web.Application()
    SimpleRequestHandler(
        dispatcher=dispatcher,
        bot=bot,
        handle_in_background=not deployment.webhook_answers_first,
        secret_token=settings.webhook_secret.get_secret_value(),
    ).register(app, path=settings.webhook_path)
    setup_application(app, dispatcher, bot=bot, **data)
    if settings.webapp_url:
        Editor(bot, dispatcher, settings, deployment).add_routes(app)
    return app


def create_editor_app(
    bot: Bot, dispatcher: Dispatcher, settings: BotSettings, deployment: Deployment
) -> web.Application | None:
    """The Mini App editor's own web server, for a bot that long-polls (a webhook's server carries the editor);
    None when WEBAPP_URL is unset."""
    if not settings.webapp_url:
        return None
    app = web.Application()
    Editor(bot, dispatcher, settings, deployment).add_routes(app)
    return app


@asynccontextmanager
async def served(app: web.Application | None, host: str, port: int) -> AsyncIterator[None]:
    """`app` listening on host:port while the block runs; nothing when there is no app."""
    if app is None:
        yield
        return
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        logger.info("web server on %s:%d", host, port)
        yield
    finally:
        await runner.cleanup()
