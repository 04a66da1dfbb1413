"""The bot's settings, read from the environment or a `.env` file and mapped onto the pipeline's Options."""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from anonymizer.options import DEFAULT_DETECTOR, DEFAULT_FILTER, MAX_INPUT_PIXELS, Options

# The filters a user can pick with /mode; the pipeline defines how each one paints.
FILTER_CHOICES = ("noise", "blur", "pixelate", "solid")

# What @BotFather hands out: a numeric bot id, a colon, and a secret of letters, digits, "_" and "-".
TOKEN_PATTERN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{30,64}$")

# The public Bot API lets a bot download files up to 20 MB; a self-hosted server lifts that.
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024

MISSING_TOKEN_HINT = " (create a bot with @BotFather and put its token in .env: see .env.example)"


class BotSettings(BaseSettings):
    """Everything the bot can be told from outside; each default is defined once, here or in Options."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr
    default_filter: str = DEFAULT_FILTER
    detector: str = DEFAULT_DETECTOR
    max_file_bytes: int = Field(BOT_API_DOWNLOAD_LIMIT, gt=0)
    max_pixels: int = Field(MAX_INPUT_PIXELS, gt=0)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, gt=0)
    queue_limit: int = Field(40, gt=0, description="Images waiting or being processed, all users together.")
    per_user_limit: int = Field(2, gt=0, description="Requests (a photo, a file or an album) in flight per user.")
    deadline_seconds: float = Field(15.0, gt=0, description="From the update's arrival to the reply.")
    album_window_seconds: float = Field(0.6, gt=0, description="How long to wait for the rest of an album.")
    request_timeout_seconds: float = Field(
        20.0, gt=0, description="A Bot API request (the long poll aside) unanswered this long is retried."
    )
    download_stall_seconds: float = Field(
        5.0, gt=0, description="A file download that receives nothing this long is broken off and tried again."
    )
    allowed_user_ids: Annotated[frozenset[int] | None, NoDecode] = None
    telegram_api_url: str | None = None
    redis_url: SecretStr | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_path: str = "/webhook"
    webhook_host: str = "0.0.0.0"
    webhook_port: int = Field(8080, gt=0, lt=65536)
    log_level: str = "INFO"

    @field_validator("bot_token")
    @classmethod
    def _token_looks_real(cls, token: SecretStr) -> SecretStr:
        if not TOKEN_PATTERN.match(token.get_secret_value()):
            raise ValueError("does not look like a token from @BotFather (<digits>:<secret>)")
        return token

    @field_validator("default_filter")
    @classmethod
    def _known_filter(cls, name: str) -> str:
        if name not in FILTER_CHOICES:
            raise ValueError(f"must be one of {', '.join(FILTER_CHOICES)}")
        return name

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level.upper()

    @field_validator("allowed_user_ids", mode="before")
    @classmethod
    def _parse_user_ids(cls, value: Any) -> Any:
        """Accept "1, 2, 3" from the environment as well as a list from code."""
        if isinstance(value, str):
            items = [item for item in re.split(r"[,\s]+", value.strip("[] ")) if item]
            return frozenset(int(item) for item in items) if items else None
        return value

    @model_validator(mode="after")
    def _webhook_is_secret(self) -> BotSettings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("WEBHOOK_SECRET is required with WEBHOOK_URL, so nobody else can post updates")
        return self

    def options(self, filter_name: str | None = None) -> Options:
        """The pipeline options for one request with the user's chosen filter."""
        return Options(
            detector=self.detector,
            filter=filter_name or self.default_filter,
            max_bytes=self.max_file_bytes,
            max_pixels=self.max_pixels,
        )


def describe_error(error: Exception) -> str:
    """One line for stderr out of a settings ValidationError: which variable, what is wrong; never its value."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    parts = []
    for item in errors(include_input=False, include_url=False):
        name = "_".join(str(part) for part in item["loc"]).upper()
        reason = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            parts.append(f"{name} is not set" + (MISSING_TOKEN_HINT if name == "BOT_TOKEN" else ""))
        else:
            parts.append(f"{name}: {reason}" if name else reason)
    return "; ".join(parts)
