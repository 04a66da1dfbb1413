"""Telegram failing for a moment: flood limits are waited out, server errors retried, polling recovers."""

from __future__ import annotations

from bot.texts import ENGLISH
from testing.images import astronaut_bgr
from tests.bot.helpers import RunningBot, jpeg
from tests.fake_telegram import DOWNLOAD, FakeTelegramServer, FakeUser, Fault

ALICE = FakeUser(1001, "Alice", "en")


async def test_a_flood_limit_on_the_reply_is_waited_out(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    telegram.inject("sendPhoto", Fault("flood", retry_after=1))
    message = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))

    delivered = await telegram.wait_for(lambda call: call.method == "sendPhoto" and call.response is not None)

    refused, accepted = telegram.calls_of("sendPhoto")
    assert delivered == [accepted] and accepted.reply_to_message_id == message["message_id"]
    assert accepted.at - refused.at >= 1.0
    assert accepted.file("photo").data == refused.file("photo").data


async def test_server_errors_on_a_reply_are_retried(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    telegram.inject("sendMessage", Fault("error", status=502, description="Bad Gateway", times=2))
    telegram.send_text(ALICE, "/start")

    (answer,) = await telegram.wait_for(lambda call: call.method == "sendMessage" and call.response is not None)

    assert answer.text == ENGLISH.start
    assert len(telegram.calls_of("sendMessage")) == 3


async def test_a_failing_chat_action_does_not_cost_the_reply(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    telegram.inject("sendChatAction", Fault("error", times=None))
    message = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))

    reply = await telegram.reply_to(message)

    assert reply.method == "sendPhoto"


async def test_polling_recovers_after_get_updates_fails(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    telegram.inject("getUpdates", Fault("error", status=500, times=2))
    telegram.send_text(ALICE, "/start")

    (reply,) = await telegram.wait_for(lambda call: call.method == "sendMessage", timeout=20)

    assert reply.text == ENGLISH.start
    assert telegram.deliveries == {1: 1}, "the update was handed over once, after polling recovered"


async def test_a_download_cut_off_is_tried_again(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    telegram.inject(DOWNLOAD, Fault("truncate"))
    message = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))

    reply = await telegram.reply_to(message)

    assert reply.method == "sendPhoto"
    assert len(telegram.downloads) == 2


async def test_a_reply_that_cannot_be_delivered_becomes_a_clear_error(
    telegram: FakeTelegramServer, running_bot: RunningBot
) -> None:
    failing = telegram.inject("sendPhoto", Fault("error", status=500, times=None))
    message = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))

    reply = await telegram.wait_for(lambda call: call.method == "sendMessage" and call.response is not None)

    assert failing.hits == 4, "retried with backoff before giving up"
    assert reply[0].text == ENGLISH.failed and reply[0].reply_to_message_id == message["message_id"]


async def test_a_connection_reset_on_a_reply_is_retried(telegram: FakeTelegramServer, running_bot: RunningBot) -> None:
    telegram.inject("sendMessage", Fault("reset"))
    telegram.send_text(ALICE, "/help")

    (answer,) = await telegram.wait_for(lambda call: call.method == "sendMessage" and call.response is not None)

    assert "noise" in answer.text
    assert len(telegram.calls_of("sendMessage")) == 2
