"""Long polling that confirms an update to Telegram only once it has been answered.

aiogram's polling confirms a batch of updates with the next getUpdates, as soon as their handling has started, so a
bot killed mid-burst loses every update it was working on: Telegram will not deliver them again. Here the offset
never passes an update still being handled, so Telegram delivers it again to the bot that restarts.

Telegram's offset confirms a prefix only: an update answered while an earlier one still runs (a photo behind a
video) stays unconfirmed until that one is done. So that a bot killed meanwhile does not answer it again, the ids
answered beyond the offset are kept: in a small file for the embedded bot (`AnsweredUpdates`), as the claims in
Redis for the cluster's fronts (`bot.cluster.updates.DeduplicateUpdates`). What is left is the instant between an
answer and its record.

getUpdates returns at most UPDATES_PER_CALL updates from the offset. Held at a video that waits minutes for its
lane, the offset would leave a busy bot a window full of updates it has already taken, and nothing new would reach
it. So when a poll brings nothing new in a full window, the oldest update still running stops holding the offset:
it goes on and is answered, but a bot killed before that would not be given it again.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.methods import GetUpdates

from bot.retry import Outage

logger = logging.getLogger(__name__)

# While updates are being handled Telegram returns them again at once (they are unconfirmed), so the next poll
# waits this long instead of spinning.
BUSY_POLL_INTERVAL_S = 0.25
# Telegram's (and getUpdates' default) largest batch.
UPDATES_PER_CALL = 100
# Waits after a failed getUpdates, growing to the last.
RETRY_DELAYS = (0.5, 1, 2, 5)


class AnsweredUpdates:
    """The ids of updates answered but not yet confirmed to Telegram, in a file (ids only, nothing of the users):
    read at start, an id appended as its update is answered, rewritten without the ids Telegram has confirmed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.ids = {int(line) for line in path.read_text().split() if line.isdigit()}
        except FileNotFoundError:
            self.ids = set()

    def add(self, update_id: int) -> None:
        self.ids.add(update_id)
        with self.path.open("a") as log:
            log.write(f"{update_id}\n")

    def confirmed_below(self, offset: int) -> None:
        if not any(update_id < offset for update_id in self.ids):
            return
        self.ids = {update_id for update_id in self.ids if update_id >= offset}
        written = self.path.with_suffix(".new")
        written.write_text("".join(f"{update_id}\n" for update_id in sorted(self.ids)))
        written.replace(self.path)


def _finished(
    running: dict[int, asyncio.Task[Any]], answered: AnsweredUpdates | None, update_id: int, task: asyncio.Task[Any]
) -> None:
    running.pop(update_id, None)
    if answered is not None and not task.cancelled():
        answered.add(update_id)
    if not task.cancelled() and (error := task.exception()) is not None:
        logger.error("update %d failed outside its handler: %s", update_id, type(error).__name__)


async def poll_until_answered(
    dispatcher: Dispatcher,
    bot: Bot,
    stop: asyncio.Event,
    drain_seconds: float,
    polling_timeout: int = 10,
    answered: AnsweredUpdates | None = None,
) -> None:
    """Take updates until `stop` is set, each handled in a task of its own; then give the ones in flight
    `drain_seconds` to be answered, and confirm to Telegram every update before the first still unanswered (those
    are stopped, and delivered again when the bot is back). An update `answered` holds is not handled again."""
    workflow: dict[str, Any] = {"dispatcher": dispatcher, "bots": [bot], **dispatcher.workflow_data}
    allowed = dispatcher.resolve_used_update_types()
    await dispatcher.emit_startup(bot=bot, **workflow)
    logger.info("polling; an update is confirmed to Telegram only once answered")
    running: dict[int, asyncio.Task[Any]] = {}
    # The running updates the offset waits for: all of them, but for those let go to keep the window open.
    holding: set[int] = set()
    taken_below = 0
    outage = Outage("Telegram's getUpdates", RETRY_DELAYS, logger)
    try:
        while not stop.is_set():
            holding &= running.keys()
            offset = min(holding) if holding else taken_below or None
            if answered is not None and offset is not None:
                answered.confirmed_below(offset)
            request = GetUpdates(
                offset=offset,
                limit=UPDATES_PER_CALL,
                timeout=0 if running else polling_timeout,
                allowed_updates=allowed,
            )
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
                if answered is not None and update.update_id in answered.ids:
                    logger.info("update %d was answered before a restart; not again", update.update_id)
                    continue
                task = asyncio.create_task(dispatcher.feed_update(bot, update))
                running[update.update_id] = task
                holding.add(update.update_id)
                task.add_done_callback(partial(_finished, running, answered, update.update_id))
            if not fresh and len(updates) >= UPDATES_PER_CALL and holding:
                oldest = min(holding)
                holding.discard(oldest)
                logger.warning(
                    "update %d still running behind a full window; confirmed so newer ones are taken", oldest
                )
            elif running and not fresh:
                with suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), BUSY_POLL_INTERVAL_S)
    finally:
        if running:
            await asyncio.wait(list(running.values()), timeout=drain_seconds)
        unanswered = sorted(holding & running.keys())
        for task in list(running.values()):
            task.cancel()
        if unanswered:
            logger.warning("stopping with %d update(s) unanswered; Telegram delivers them again", len(unanswered))
        if taken_below:
            await _confirm(bot, unanswered[0] if unanswered else taken_below)
            if answered is not None:
                answered.confirmed_below(unanswered[0] if unanswered else taken_below)
        await dispatcher.emit_shutdown(bot=bot, **workflow)


async def _confirm(bot: Bot, offset: int) -> None:
    """Tell Telegram that every update below `offset` is answered, so a restart is not given them again."""
    try:
        await bot(GetUpdates(offset=offset, limit=1, timeout=0))
    except Exception as error:  # the bot is stopping anyway; at worst an update is answered twice
        logger.warning("could not confirm the last updates: %s", type(error).__name__)
