"""A public bot's fairness: one user's cheap messages and button presses, second looks and re-renders are limited,
so that nobody can keep the bot or its workers to themselves; the limits hold across a cluster's fronts."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from bot.cluster.rates import RedisRateCounter
from bot.handlers import choose
from bot.texts import ENGLISH
from testing.cluster import RedisServer
from testing.fake_telegram import FakeTelegramServer, FakeUser
from testing.images import astronaut_bgr, jpeg
from tests.bot.helpers import StartBot, press

CHATTY = FakeUser(8001, "Chatty", "en")
QUIET = FakeUser(8002, "Quiet", "en")


async def test_a_user_sending_many_texts_hears_once_and_others_are_answered_as_usual(
    telegram: FakeTelegramServer, start_bot: StartBot
) -> None:
    await start_bot(messages_per_minute=5)
    for _ in range(12):
        telegram.send_text(CHATTY, "/help")
    telegram.send_text(QUIET, "/help")
    await telegram.wait_for(lambda call: call.chat_id == QUIET.id and call.method == "sendMessage", timeout=30)
    await asyncio.sleep(1.0)

    texts = [call.text for call in telegram.answers_in(CHATTY.id)]
    assert len(texts) == 6 and texts.count(ENGLISH.slow_down) == 1, "five answers, one notice, then silence"
    assert len(telegram.answers_in(QUIET.id)) == 1


async def test_button_presses_over_the_limit_stop_the_spinner_and_run_nothing(
    telegram: FakeTelegramServer, start_bot: StartBot
) -> None:
    await start_bot(messages_per_minute=2)
    result = (await telegram.reply_to(telegram.send_photo(CHATTY, jpeg(astronaut_bgr())))).response
    labels = [ENGLISH.choose_faces, "1 ✓", "1 ○", "1 ○"]
    answers = [await press(telegram, CHATTY, result, label, "answerCallbackQuery") for label in labels]

    assert [answer.params.get("text") for answer in answers[2:]] == [ENGLISH.slow_down, None]
    assert len(telegram.calls_of("editMessageReplyMarkup")) == 1, "a throttled press still changed the choice"


async def test_a_result_gets_one_second_look(telegram: FakeTelegramServer, start_bot: StartBot) -> None:
    await start_bot()
    result = (await telegram.reply_to(telegram.send_photo(CHATTY, jpeg(astronaut_bgr())))).response
    again = [await telegram.reply_to(telegram.send_text(CHATTY, "/strict", reply_to=result)) for _ in range(2)]

    assert again[0].method == "sendPhoto" and again[0].text == ENGLISH.strict_covered.format(count=1)
    assert again[1].text == ENGLISH.strict_again
    strict_result = again[0].response
    third = await telegram.reply_to(telegram.send_text(CHATTY, "/strict", reply_to=strict_result))
    assert third.text == ENGLISH.strict_again, "a second look's result offered a third"


async def test_a_result_is_rendered_a_limited_number_of_times(
    telegram: FakeTelegramServer, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(choose, "RENDERS_PER_RESULT", 2)
    await start_bot()
    result = (await telegram.reply_to(telegram.send_photo(CHATTY, jpeg(astronaut_bgr())))).response
    await press(telegram, CHATTY, result, ENGLISH.choose_faces, "editMessageMedia")
    await press(telegram, CHATTY, result, ENGLISH.choose_done, "editMessageMedia")

    refused = await press(telegram, CHATTY, result, ENGLISH.choose_faces, "answerCallbackQuery")

    assert refused.params["text"] == ENGLISH.choose_too_often
    assert len(telegram.calls_of("editMessageMedia")) == 2


async def test_cheap_updates_are_counted_across_fronts(redis_server: RedisServer) -> None:
    fronts = [Redis.from_url(redis_server.url()) for _ in range(2)]
    counters = [RedisRateCounter(redis) for redis in fronts]
    counts = [await counters[index % 2].count("updates", CHATTY.id, 1000) for index in range(5)]
    other_minute = await counters[0].count("updates", CHATTY.id, 1001)
    for redis in fronts:
        await redis.aclose()
    assert counts == [1, 2, 3, 4, 5] and other_minute == 1
