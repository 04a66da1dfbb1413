"""`python -m bot` as a user runs it: serves through the configured Bot API server, stops gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.settings import BotSettings
from bot.texts import ENGLISH
from tests.bot.helpers import TOKEN, jpeg
from tests.fake_telegram import FakeTelegramServer, FakeUser
from tests.images import astronaut_bgr

ROOT = Path(__file__).resolve().parents[2]
ALICE = FakeUser(1001, "Alice", "en")


async def test_the_bot_process_answers_and_finishes_its_work_on_sigterm(
    telegram: FakeTelegramServer, tmp_path: Path
) -> None:
    env = {key: value for key, value in os.environ.items() if key.lower() not in BotSettings.model_fields}
    env.update(PYTHONPATH=str(ROOT), BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.base_url, WORKERS="1")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )
    try:
        telegram.send_text(ALICE, "/start")
        (welcome,) = await telegram.wait_for(lambda call: call.method == "sendMessage", timeout=60)
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
