"""`python -m bot` as a user runs it: serves through the configured Bot API server, stops gracefully on SIGTERM,
loses nothing when killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest

from bot.settings import BotSettings
from bot.texts import ENGLISH
from testing.cluster import Process, free_port
from testing.fake_telegram import TOKEN, FakeTelegramServer, FakeUser
from testing.images import astronaut_bgr, composite, jpeg
from testing.paths import ROOT

ALICE = FakeUser(1001, "Alice", "en")


def environments_below(pid: int) -> list[bytes]:
    """The environment of every process `pid` started (its worker processes), as /proc shows it."""
    return [Path(f"/proc/{child.pid}/environ").read_bytes() for child in psutil.Process(pid).children(recursive=True)]


async def test_the_bot_process_answers_finishes_its_work_on_sigterm_and_keeps_the_token_from_its_workers(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    """The token given in the environment (as systemd's EnvironmentFile or a container gives it) stays in the bot's
    own process: the worker processes, which decode whatever strangers send, are started without it."""
    env = bot_environment(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.base_url, WORKERS="1")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        telegram.send_text(ALICE, "/start")
        (welcome,) = await telegram.wait_for(lambda call: call.method == "sendMessage", timeout=60)
        workers_environments = environments_below(process.pid)
        photo = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))
        await telegram.wait_for(lambda call: call.method == "getFile", timeout=30)

        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0
    assert welcome.text == ENGLISH.start
    reply = await telegram.reply_to(photo, timeout=1)
    assert reply.method == "sendPhoto"
    log = stderr.decode()
    assert "update 1 (message) chat 1001" in log
    assert TOKEN.partition(":")[2] not in log
    assert workers_environments, "the bot started no worker process"
    assert not any(TOKEN.partition(":")[2].encode() in environment for environment in workers_environments), (
        "a worker process holds the token"
    )


def bot_environment(directory: Path, **settings: str) -> dict[str, str]:
    """The environment without the bot's settings, plus `settings`; the bot's state in this test's `directory`."""
    env = {key: value for key, value in os.environ.items() if key.lower() not in BotSettings.model_fields}
    env.update(PYTHONPATH=str(ROOT), STATE_DIR=str(directory / "state"), **settings)
    return env


async def command(directory: Path, *arguments: str) -> tuple[int | None, str, str]:
    """A command run to its end with no settings in its environment: its exit code, output and errors."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *arguments,
        cwd=directory,
        env=bot_environment(directory),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, stdout.decode(), stderr.decode()


async def test_help_prints_usage_and_the_settings_instead_of_a_missing_token_error(tmp_path: Path) -> None:
    returncode, text, stderr = await command(tmp_path, "bot", "--help")

    assert returncode == 0
    assert text.startswith("usage:")
    assert all(name in text for name in ("BOT_TOKEN", "REDIS_URL", "REDIS_ALLOW_NO_PASSWORD", "WEBHOOK_URL", "WORKERS"))
    assert not stderr


async def test_a_token_telegram_rejects_is_one_clear_line_and_exit_2_before_any_worker_starts(
    tmp_path: Path,
) -> None:
    async with FakeTelegramServer("987654321:AAAnotherTokenThatTelegramKnows_0123456") as telegram:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,
            env=bot_environment(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.base_url, WORKERS="1"),
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)

    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "BOT_TOKEN" in lines[0] and "rejected" in lines[0]
    assert TOKEN.partition(":")[2] not in stderr.decode()


async def test_telegram_unreachable_at_start_is_one_line_and_the_bot_waits_for_it(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "bot.log"
    with open(log, "wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            cwd=tmp_path,
            env=bot_environment(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=f"http://127.0.0.1:{port}", WORKERS="1"),
            stderr=output,
        )
    try:
        async with asyncio.timeout(60):
            while "unreachable" not in log.read_text():
                await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # long enough for a second attempt, which must not add a line
        assert process.returncode is None, "the bot gave up while Telegram was unreachable"
        async with FakeTelegramServer(TOKEN, port=port) as telegram:
            telegram.send_text(ALICE, "/start")
            (welcome,) = await telegram.wait_for(lambda call: call.method == "sendMessage", timeout=60)
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert welcome.text == ENGLISH.start
    text = log.read_text()
    assert text.count("unreachable") == 1
    assert "Traceback" not in text and "Unclosed" not in text


async def test_a_worker_machine_explains_itself_and_refuses_to_start_without_redis(tmp_path: Path) -> None:
    helped, usage_text, _ = await command(tmp_path, "bot.worker", "--help")
    refused, _, stderr = await command(tmp_path, "bot.worker")

    assert helped == 0 and "REDIS_URL" in usage_text and "BOT_TOKEN" not in usage_text
    assert refused == 2
    assert stderr.strip().splitlines() == ["photo-anon-worker: REDIS_URL is not set (the queue the fronts put jobs on)"]


@pytest.mark.timeout(240)  # two starts of the bot, each loading and timing its worker
async def test_the_bot_killed_mid_burst_and_started_again_answers_every_photo_once(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    """Six photos in flight when the bot is SIGKILLed: Telegram never heard they were answered, so it delivers them
    again and the bot started again answers each, once. Killed before any answer left: an answer sent before the
    kill, and not yet confirmed, would be sent again (bot.polling). The budget is long enough for all six to be
    admitted on one worker however slow the machine, so that none is answered "busy" at once."""
    users = [FakeUser(7000 + index, f"User{index}", "en") for index in range(6)]
    photos = [
        jpeg(composite((1600, 1200), [(100 + 40 * index, 150, 300)], background=40 + 5 * index)[0], quality=90)
        for index in range(6)
    ]
    messages = [telegram.send_photo(user, photo) for user, photo in zip(users, photos, strict=True)]
    env = bot_environment(
        tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.base_url, WORKERS="1", DEADLINE_SECONDS="90"
    )
    first = Process("bot", tmp_path / "first.log", env, tmp_path).start()
    try:
        await telegram.wait_for(lambda call: call.method == "getFile", timeout=90, count=len(messages))
    finally:
        first.kill()
    answered_before_the_kill = sum(bool(telegram.answers_to(message)) for message in messages)

    second = Process("bot", tmp_path / "second.log", env, tmp_path).start()
    try:
        await asyncio.gather(*(telegram.reply_to(message, timeout=90) for message in messages))
        await asyncio.sleep(1.0)  # a second answer would come now
    finally:
        await asyncio.to_thread(second.stop)

    assert answered_before_the_kill == 0, "an answer left before the kill: the test did not kill mid-burst"
    assert min(telegram.deliveries.values()) >= 2, "Telegram did not deliver the photos again"
    counts = [len(telegram.answers_to(message)) for message in messages]
    assert counts == [1] * len(messages), f"answers per photo: {counts}"
    assert [telegram.answers_to(message)[0].method for message in messages] == ["sendPhoto"] * len(messages)


@pytest.mark.timeout(240)
async def test_an_update_answered_behind_one_still_running_is_not_answered_again_after_a_kill(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    """Telegram's offset confirms a prefix: a text answered while a big photo before it still runs stays unconfirmed.
    Killed then, the bot is given both again when it starts; it answers the photo, and the text not a second time."""
    big = jpeg(composite((4000, 3000), [(400, 300, 600)], background=60)[0], quality=90)
    photo = telegram.send_photo(ALICE, big)
    command = telegram.send_text(ALICE, "hello")
    env = bot_environment(tmp_path, BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.base_url, WORKERS="1")
    first = Process("bot", tmp_path / "first.log", env, tmp_path).start()
    try:
        await telegram.reply_to(command, timeout=90)
        await asyncio.sleep(0.5)  # past the instant between the answer and its record, which no bot can close
    finally:
        first.kill()
    assert not telegram.answers_to(photo), "the photo was answered before the kill: nothing was still running"

    second = Process("bot", tmp_path / "second.log", env, tmp_path).start()
    try:
        await telegram.reply_to(photo, timeout=90)
        await asyncio.sleep(1.0)  # a second answer to the text would come now
    finally:
        await asyncio.to_thread(second.stop)

    assert telegram.deliveries[telegram.update_id_of(command)] >= 2, "Telegram did not give the text again"
    assert len(telegram.answers_to(command)) == 1, "the text was answered again after the restart"
