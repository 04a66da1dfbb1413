"""Long polling that confirms only what was answered still takes every new update while one waits for minutes."""

from __future__ import annotations

import asyncio

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

from bot.polling import UPDATES_PER_CALL, poll_until_answered
from testing.fake_telegram import TOKEN, FakeTelegramServer, FakeUser

ALICE = FakeUser(1001, "Alice", "en")
BOB = FakeUser(1002, "Bob", "en")


async def test_one_update_running_for_long_does_not_hide_the_newer_ones(telegram: FakeTelegramServer) -> None:
    """A video waiting for its lane while more than a getUpdates batch of messages arrives behind it: every one of
    them is answered meanwhile, and the slow one still is when it is done, each once."""
    release = asyncio.Event()
    dispatcher = Dispatcher()

    @dispatcher.message(F.text == "slow")
    async def slow(message: Message) -> None:
        await release.wait()
        await message.reply("done at last")

    @dispatcher.message(F.text)
    async def quick(message: Message) -> None:
        await message.reply("ok")

    slow_message = telegram.send_text(ALICE, "slow")
    quick_messages = [telegram.send_text(BOB, str(index)) for index in range(UPDATES_PER_CALL + 50)]
    bot = Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(telegram.base_url)))
    stop = asyncio.Event()
    polling = asyncio.create_task(poll_until_answered(dispatcher, bot, stop, drain_seconds=5, polling_timeout=1))
    try:
        await asyncio.gather(*(telegram.reply_to(message, timeout=30) for message in quick_messages))
        assert not telegram.answers_to(slow_message)
        release.set()
        await telegram.reply_to(slow_message, timeout=10)
        await asyncio.sleep(0.5)  # a second answer would come now
    finally:
        stop.set()
        await polling
        await bot.session.close()

    counts = [len(telegram.answers_to(message)) for message in [slow_message, *quick_messages]]
    assert counts == [1] * len(counts), "an update was answered more than once"
    assert telegram.confirmed_below > telegram.update_id_of(quick_messages[-1]), "the answered were not confirmed"
