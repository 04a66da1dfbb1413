"""Long polling that confirms an update to Telegram only once it has been answered (distributed mode).

aiogram's polling confirms a batch of updates with the next getUpdates, as soon as their handling has started, so a
front killed mid-burst loses every update it was working on: Telegram will not deliver them again. Here the offset
never passes an update still being handled, so Telegram delivers it again to the front that restarts, and the
claim in Redis (`bot.distributed.DeduplicateUpdates`) makes sure that an update already answered is not answered
twice.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress
from functools import partial
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates

logger = logging.getLogger(__name__)

# While updates are being handled Telegram returns them again at once (they are unconfirmed), so the next poll
# waits this long instead of spinning.
BUSY_POLL_INTERVAL_S = 0.25
# Waits after a failed getUpdates, growing to the last.
RETRY_DELAYS = (1, 2, 5, 10, 30)


def _finished(running: dict[int, asyncio.Task[Any]], update_id: int, task: asyncio.Task[Any]) -> None:
    running.pop(update_id, None)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("update %d failed outside its handler: %s", update_id, type(error).__name__)


async def poll_until_answered(dispatcher: Dispatcher, bot: Bot, polling_timeout: int = 10) -> None:
    """Take updates until SIGINT or SIGTERM, each handled in a task of its own; then finish the ones in flight."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workflow: dict[str, Any] = {"dispatcher": dispatcher, "bots": [bot], **dispatcher.workflow_data}
    allowed = dispatcher.resolve_used_update_types()
    await dispatcher.emit_startup(bot=bot, **workflow)
    logger.info("polling; an update is confirmed to Telegram only once answered")
    running: dict[int, asyncio.Task[Any]] = {}
    taken_below = 0
    failures = 0
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
                delay = RETRY_DELAYS[min(failures, len(RETRY_DELAYS) - 1)]
                if failures == 0:
                    logger.warning("getUpdates failed (%s); retrying", type(error).__name__)
                failures += 1
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            failures = 0
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
            await asyncio.gather(*running.values(), return_exceptions=True)
        await dispatcher.emit_shutdown(bot=bot, **workflow)
