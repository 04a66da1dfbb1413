"""Long polling that confirms an update to Telegram only once it has been answered.

aiogram's polling confirms a batch of updates with the next getUpdates, as soon as their handling has started, so a
bot killed mid-burst loses every update it was working on: Telegram will not deliver them again. Here the offset
never passes an update still being handled, so Telegram delivers it again to the bot that restarts. An update
answered in the instant before the bot died, and not yet confirmed, is answered again, unless a claim makes sure it
is not (the cluster's `bot.cluster.updates.DeduplicateUpdates`).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates

from bot.retry import Outage

logger = logging.getLogger(__name__)

# While updates are being handled Telegram returns them again at once (they are unconfirmed), so the next poll
# waits this long instead of spinning.
BUSY_POLL_INTERVAL_S = 0.25
# Waits after a failed getUpdates, growing to the last.
RETRY_DELAYS = (0.5, 1, 2, 5)


def _finished(running: dict[int, asyncio.Task[Any]], update_id: int, task: asyncio.Task[Any]) -> None:
    running.pop(update_id, None)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("update %d failed outside its handler: %s", update_id, type(error).__name__)


async def poll_until_answered(
    dispatcher: Dispatcher, bot: Bot, stop: asyncio.Event, drain_seconds: float, polling_timeout: int = 10
) -> None:
    """Take updates until `stop` is set, each handled in a task of its own; then give the ones in flight
    `drain_seconds` to be answered, and confirm to Telegram every update before the first still unanswered (those
    are stopped, and delivered again when the bot is back)."""
    workflow: dict[str, Any] = {"dispatcher": dispatcher, "bots": [bot], **dispatcher.workflow_data}
    allowed = dispatcher.resolve_used_update_types()
    await dispatcher.emit_startup(bot=bot, **workflow)
    logger.info("polling; an update is confirmed to Telegram only once answered")
    running: dict[int, asyncio.Task[Any]] = {}
    taken_below = 0
    outage = Outage("Telegram's getUpdates", RETRY_DELAYS, logger)
    try:
        while not stop.is_set():
            offset = min(running) if running else taken_below or None
            request = GetUpdates(offset=offset, timeout=0 if running else polling_timeout, allowed_updates=allowed)
            fetch = asyncio.ensure_future(bot(request, request_timeout=int(polling_timeout + 30)))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not fetch.done():
                fetch.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await fetch
                break
            try:
                updates = fetch.result()
            except Exception as error:  # Telegram unreachable for a while: retry, one line per outage
                await outage.wait(error, stop)
                continue
            outage.over()
            fresh = [update for update in updates if update.update_id >= taken_below]
            for update in fresh:
                taken_below = update.update_id + 1
                task = asyncio.create_task(dispatcher.feed_update(bot, update))
                running[update.update_id] = task
                task.add_done_callback(partial(_finished, running, update.update_id))
            if running and not fresh:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), BUSY_POLL_INTERVAL_S)
    finally:
        if running:
            await asyncio.wait(list(running.values()), timeout=drain_seconds)
        unanswered = sorted(running)
        for task in list(running.values()):
            task.cancel()
        if unanswered:
            logger.warning("stopping with %d update(s) unanswered; Telegram delivers them again", len(unanswered))
        if taken_below:
            await _confirm(bot, unanswered[0] if unanswered else taken_below)
        await dispatcher.emit_shutdown(bot=bot, **workflow)


async def _confirm(bot: Bot, offset: int) -> None:
    """Tell Telegram that every update below `offset` is answered, so a restart is not given them again."""
    try:
        await bot(GetUpdates(offset=offset, limit=1, timeout=0))
    except Exception as error:  # the bot is stopping anyway; at worst an update is answered twice
        logger.warning("could not confirm the last updates: %s", type(error).__name__)
