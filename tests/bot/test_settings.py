"""Settings from the environment, and a clear line for a bad token or a Redis without a password (leaks are
tests/bot/test_privacy.py's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import BotSettings, PipelineSettings
from testing.fake_telegram import TOKEN
from testing.paths import ROOT


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


@pytest.mark.parametrize("module", ["bot", "bot.worker"])
def test_a_redis_on_another_machine_without_a_password_is_refused_at_start(tmp_path: Path, module: str) -> None:
    """The front and the worker machines alike: one line, exit 2, before anything connects."""
    env = {key: value for key, value in os.environ.items() if key.lower() not in BotSettings.model_fields}
    env.update(PYTHONPATH=str(ROOT), BOT_TOKEN=TOKEN, REDIS_URL="redis://10.0.0.5:6379/0")
    finished = subprocess.run(
        [sys.executable, "-m", module], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )

    assert finished.returncode == 2
    assert finished.stderr.count("\n") == 1 and "REDIS_URL has no password" in finished.stderr
    assert "REDIS_ALLOW_NO_PASSWORD=true" in finished.stderr and "10.0.0.5" not in finished.stderr


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        pytest.param("redis://:a-long-random-password@10.0.0.5:6379/0", False, id="password"),
        pytest.param("rediss://user@redis.example.com:6380/0?password=a-long-random-password", False, id="query"),
        pytest.param("redis://127.0.0.1:6379/0", False, id="loopback"),
        pytest.param("redis://localhost/0", False, id="localhost"),
        pytest.param("unix:///run/redis/redis.sock", False, id="socket"),
        pytest.param("redis://10.0.0.5:6379/0", True, id="allowed"),
    ],
)
def test_a_redis_is_accepted_with_a_password_on_this_machine_or_when_allowed(url: str, allowed: bool) -> None:
    settings = PipelineSettings(_env_file=None, redis_url=url, redis_allow_no_password=allowed)

    assert settings.redis_url is not None and settings.redis_url.get_secret_value() == url


@pytest.mark.parametrize(
    ("url", "page"),
    [
        ("https://bot.example.com/editor", "https://bot.example.com/editor/"),
        ("https://bot.example.com", "https://bot.example.com/"),
        ("http://127.0.0.1:8080/editor/", "http://127.0.0.1:8080/editor/"),
    ],
)
def test_the_editor_is_served_under_the_path_of_its_address(url: str, page: str) -> None:
    settings = BotSettings(_env_file=None, bot_token=TOKEN, webapp_url=url)

    assert settings.webapp_url == page
    assert page.endswith(str(settings.webapp_path)) and str(settings.webapp_path).endswith("/")


@pytest.mark.parametrize(
    "url",
    ["http://bot.example.com/editor/", "https://bot.example.com/editor/?chat=1", "bot.example.com/editor/"],
    ids=["plain-http", "query", "no-scheme"],
)
def test_an_editor_address_telegram_would_not_open_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="webapp_url"):
        BotSettings(_env_file=None, bot_token=TOKEN, webapp_url=url)
