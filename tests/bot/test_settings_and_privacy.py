"""Settings from the environment, a clear line for a bad token, no token in logs, and a graceful stop."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import create_bot
from bot.settings import BotSettings
from bot.texts import ENGLISH
from testing.images import astronaut_bgr
from tests.bot.helpers import TOKEN, RunningBot, StartBot, jpeg
from tests.fake_telegram import DOWNLOAD, FakeTelegramServer, FakeUser, Fault

ROOT = Path(__file__).resolve().parents[2]
ALICE = FakeUser(1001, "Alice", "en")


def run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot` in an empty directory (no .env) with only these settings in the environment."""
    clean = {key: value for key, value in os.environ.items() if key.lower() not in BotSettings.model_fields}
    clean["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, "BOT_TOKEN is not set", id="missing"),
        pytest.param({"BOT_TOKEN": "not-a-token"}, "BOT_TOKEN: does not look like a token", id="malformed"),
    ],
)
def test_a_bad_token_is_one_clear_line_and_exit_code_2(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    finished = run_bot(tmp_path, **env)

    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1 and expected in finished.stderr
    assert "Traceback" not in finished.stderr and "not-a-token" not in finished.stderr


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("ALLOWED_USER_IDS", "11, 22,33")
    monkeypatch.setenv("DEFAULT_FILTER", "blur")
    monkeypatch.setenv("WORKERS", "3")

    settings = BotSettings(_env_file=None)

    assert settings.allowed_user_ids == frozenset({11, 22, 33})
    assert settings.workers == 3
    assert settings.options().filter == "blur"
    assert settings.options("solid").filter == "solid"
    assert settings.options().max_bytes == 20 * 1024 * 1024
    assert TOKEN not in repr(settings)


def test_the_token_never_reaches_a_log(caplog: pytest.LogCaptureFixture) -> None:
    create_bot(BotSettings(_env_file=None, bot_token=TOKEN))
    url = f"http://127.0.0.1/file/bot{TOKEN}/photos/file_1.jpg"

    with caplog.at_level(logging.INFO):
        logging.getLogger("aiohttp.client").error("download failed: %s", url)
        try:
            raise RuntimeError(f"404, message='Not Found', url='{url}'")
        except RuntimeError:
            logging.getLogger("bot").exception("request failed")

    assert "download failed" in caplog.text and "request failed" in caplog.text
    assert TOKEN not in caplog.text and TOKEN.partition(":")[2] not in caplog.text


async def test_a_failed_download_is_answered_and_logs_no_token(
    telegram: FakeTelegramServer, running_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    failing = telegram.inject(DOWNLOAD, Fault("error", status=500, times=None))
    with caplog.at_level(logging.DEBUG):
        message = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))
        reply = await telegram.reply_to(message)

    assert reply.text == ENGLISH.failed
    assert failing.hits == 3, "tried three times before giving up"
    assert "download failed (ClientResponseError)" in caplog.text
    assert TOKEN.partition(":")[2] not in caplog.text


async def test_graceful_stop_finishes_the_job_in_flight_and_confirms_it(
    telegram: FakeTelegramServer, start_bot: StartBot
) -> None:
    running = await start_bot()
    message = telegram.send_photo(ALICE, jpeg(astronaut_bgr()))
    await telegram.wait_for(lambda call: call.method == "getFile")

    await running.stop()

    (reply,) = telegram.answers_in(ALICE.id)
    assert reply.method == "sendPhoto" and reply.reply_to_message_id == message["message_id"]
    assert telegram.confirmed_below > max(telegram.deliveries)
