"""The bot's settings, read from the environment or a `.env` file and mapped onto the pipeline's Options; how both
commands (`python -m bot`, `python -m bot.worker`) read them and fail on them."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar, get_args
from urllib.parse import urlsplit, urlunsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.asyncio.connection import ConnectKwargs, parse_url

import filters
from anonymizer.options import DEFAULT_DETECTOR, DEFAULT_FILTER, MAX_INPUT_PIXELS, STRICT_DETECTOR, Options
from bot.admission import Limits
from bot.logs import configure_logging

# The filters a user can pick with /mode: every registered one, the default first (the order of the buttons).
FILTER_CHOICES = (DEFAULT_FILTER, *(name for name in filters.available() if name != DEFAULT_FILTER))

# What @BotFather hands out: a numeric bot id, a colon, and a secret of letters, digits, "_" and "-".
TOKEN_PATTERN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{30,64}$")

# The public Bot API lets a bot download files up to 20 MB and upload up to 50 MB; a self-hosted server lifts both.
BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024
BOT_API_UPLOAD_LIMIT = 50 * 1024 * 1024
# Phones record at most this many frames a second outside slow motion: a video's frame limit follows its length.
MAX_VIDEO_FRAME_RATE = 60

# Seconds of each request's deadline kept back to send the answer (an upload of a few megabytes).
REPLY_RESERVE_S = 1.5

# Hosts an http:// WEBAPP_URL may name: a browser on the bot's own machine, never Telegram.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

MISSING_TOKEN_HINT = " (create a bot with @BotFather and put its token in .env: see .env.example)"
EXIT_CONFIGURATION = 2


class PipelineSettings(BaseSettings):
    """What a machine that runs the pipeline needs: the embedded bot and a cluster's worker machines share these."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    detector: str = Field(DEFAULT_DETECTOR, description="The face detector chain the workers run.")
    max_file_bytes: int = Field(BOT_API_DOWNLOAD_LIMIT, gt=0, description="Largest file accepted, in bytes.")
    max_pixels: int = Field(MAX_INPUT_PIXELS, gt=0, description="Largest image accepted, in pixels.")
    max_video_seconds: float = Field(60.0, gt=0, description="Longest video, GIF or video note accepted, in seconds.")
    max_video_pixels: int = Field(
        1920 * 1080, gt=0, description="Largest video frame accepted, in pixels (default: Full HD)."
    )
    video_workers: int | None = Field(
        None, gt=0, description="Worker processes that may run videos at once (default: half of WORKERS, at least 1)."
    )
    strict_detector: str = Field(
        STRICT_DETECTOR, description="The detector chain of a second look (/strict, the 'Look harder' button)."
    )
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1, gt=0, description="Worker processes (default: CPU count)."
    )
    redis_url: SecretStr | None = Field(
        None,
        description="redis://:PASSWORD@host:port/db, or rediss://...?ssl_ca_certs=/path/ca.crt for TLS: distributed "
        "mode (python -m bot is then the front only).",
    )
    redis_allow_no_password: bool = Field(
        False, description="Accept a REDIS_URL without a password on another machine (a network you trust)."
    )
    metrics_port: int | None = Field(
        None, gt=0, lt=65536, description="Serve /metrics (Prometheus) and /health on this port."
    )
    metrics_host: str = Field("127.0.0.1", description="Address the /metrics and /health server listens on.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level.upper()

    @model_validator(mode="after")
    def _redis_needs_a_password(self) -> Self:
        """Pictures and the queue pass through Redis: one another machine reaches must ask for a password."""
        if self.redis_url is None:
            return self
        try:
            connection = parse_url(self.redis_url.get_secret_value())
        except ValueError as error:
            raise ValueError(f"REDIS_URL: {error}") from None
        if not connection.get("password") and not _on_this_machine(connection) and not self.redis_allow_no_password:
            raise ValueError(
                "REDIS_URL has no password and points at another machine: add one (redis://:PASSWORD@host:6379/0, see "
                "deploy/redis.conf) or set REDIS_ALLOW_NO_PASSWORD=true"
            )
        return self

    def secrets(self) -> list[str]:
        """What must never appear in a log: the Redis URL carries Redis's password."""
        return [self.redis_url.get_secret_value()] if self.redis_url else []

    @property
    def video_processes(self) -> int:
        """How many of this machine's worker processes may hold a video at once."""
        return min(self.workers, self.video_workers or max(1, self.workers // 2))

    def options(self, filter_name: str | None = None, strict: bool = False) -> Options:
        """The pipeline options for one request with the user's chosen filter; `strict` for a second look (the
        most thorough detection). Results must fit what Telegram lets a bot upload."""
        options = Options(
            detector=self.detector,
            filter=filter_name or DEFAULT_FILTER,
            max_bytes=self.max_file_bytes,
            max_pixels=self.max_pixels,
            max_video_bytes=self.max_file_bytes,
            max_frame_pixels=self.max_video_pixels,
            max_duration=self.max_video_seconds,
            max_frames=int(self.max_video_seconds * MAX_VIDEO_FRAME_RATE),
            max_output_bytes=BOT_API_UPLOAD_LIMIT,
        )
        return replace(options.strict(), detector=self.strict_detector) if strict else options


def _on_this_machine(connection: ConnectKwargs) -> bool:
    """A Unix socket, localhost or a loopback address."""
    if "path" in connection:
        return True
    host = connection.get("host", "localhost")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BotSettings(PipelineSettings):
    """Everything the bot can be told from outside; each default is defined once, here or in Options."""

    bot_token: SecretStr = Field(description="The token @BotFather gave the bot (required).")
    default_filter: str = Field(
        DEFAULT_FILTER, description=f"Filter until a user picks one: {', '.join(FILTER_CHOICES)}."
    )
    queue_limit: int = Field(40, gt=0, description="Images waiting or being processed, all users together.")
    per_user_limit: int = Field(
        10, gt=0, description="Pictures in flight per user (each picture of an album counts; a video counts one)."
    )
    messages_per_minute: int = Field(
        30, gt=0, description="Texts, commands and button presses per user a minute; past them, one notice and silence."
    )
    deadline_seconds: float = Field(15.0, gt=0, description="From the update's arrival to the reply.")
    video_deadline_seconds: float = Field(
        300.0, gt=0, description="From a video's arrival to the video sent back (progress is shown meanwhile)."
    )
    video_queue_limit: int = Field(4, gt=0, description="Videos waiting or being processed, all users together.")
    strict_window_seconds: float = Field(
        3600.0,
        gt=0,
        description="How long the 'Look harder' button under a result works (the original's file id is kept so long).",
    )
    album_window_seconds: float = Field(0.6, gt=0, description="How long to wait for the rest of an album.")
    state_dir: Path = Field(
        default_factory=lambda: platformdirs.user_state_path("photo-anonymization"),
        description="Where the one-machine bot notes the ids of updates it answered and Telegram has not yet been "
        "told of, so a restart does not answer them twice (ids only, nothing of the users).",
    )
    request_timeout_seconds: float = Field(
        20.0, gt=0, description="A Bot API request (the long poll aside) unanswered this long is retried."
    )
    download_stall_seconds: float = Field(
        5.0, gt=0, description="A file download that receives nothing this long is broken off and tried again."
    )
    allowed_user_ids: Annotated[frozenset[int] | None, NoDecode] = Field(
        None, description="Comma-separated Telegram user ids; everyone else is refused politely."
    )
    telegram_api_url: str | None = Field(None, description="A self-hosted Bot API server instead of Telegram's.")
    webhook_url: str | None = Field(None, description="Public HTTPS URL for updates; long polling when unset.")
    webhook_secret: SecretStr | None = Field(None, description="Required with WEBHOOK_URL: Telegram's secret token.")
    webhook_path: str = Field("/webhook", description="Path the webhook server takes updates on.")
    webhook_host: str = Field("0.0.0.0", description="Address the webhook server listens on.")
    webhook_port: int = Field(8080, gt=0, lt=65536, description="Port the webhook server listens on.")
    webapp_url: str | None = Field(
        None,
        description="Public HTTPS URL of the Mini App editor (your reverse proxy to WEBAPP_PORT, or to WEBHOOK_PORT "
        "with a webhook): an Edit button under results in private chats; none when unset.",
    )
    webapp_host: str = Field("0.0.0.0", description="Address the Mini App's server listens on without a webhook.")
    webapp_port: int = Field(
        8080, gt=0, lt=65536, description="Port the Mini App's server listens on without a webhook."
    )

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

    @field_validator("allowed_user_ids", mode="before")
    @classmethod
    def _parse_user_ids(cls, value: Any) -> Any:
        """Accept "1, 2, 3" from the environment as well as a list from code."""
        if isinstance(value, str):
            items = [item for item in re.split(r"[,\s]+", value.strip("[] ")) if item]
            return frozenset(int(item) for item in items) if items else None
        return value

    @field_validator("webapp_url")
    @classmethod
    def _webapp_url_is_https(cls, url: str | None) -> str | None:
        """Telegram opens only HTTPS pages (plain HTTP is let through on this machine, to try the page in a browser);
        the path ends with "/" so that the page's own files and API resolve beneath it."""
        if url is None:
            return None
        parts = urlsplit(url)
        local = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if not parts.hostname or not (parts.scheme == "https" or local):
            raise ValueError("must be an https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must have no query or fragment: the bot adds its own")
        path = parts.path if parts.path.endswith("/") else f"{parts.path}/"
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @property
    def webapp_path(self) -> str | None:
        """Where the front serves the Mini App: the path of WEBAPP_URL, behind the operator's reverse proxy."""
        return urlsplit(self.webapp_url).path if self.webapp_url else None

    @model_validator(mode="after")
    def _webhook_is_secret(self) -> BotSettings:
        if self.webhook_url and not self.webhook_secret:
            raise ValueError("WEBHOOK_SECRET is required with WEBHOOK_URL, so nobody else can post updates")
        return self

    def options(self, filter_name: str | None = None, strict: bool = False) -> Options:
        return super().options(filter_name or self.default_filter, strict)

    def secrets(self) -> list[str]:
        """The token and its secret half on its own, besides the Redis URL."""
        token = self.bot_token.get_secret_value()
        return [token, token.partition(":")[2], *super().secrets()]

    def limits(self) -> Limits:
        """Admission's limits, the same in both deployments."""
        return Limits(self.queue_limit, self.per_user_limit, self.video_queue_limit, REPLY_RESERVE_S)


Settings = TypeVar("Settings", bound=PipelineSettings)


class StartupError(Exception):
    """A reason not to start, told in one line on stderr (exit code 2)."""


def stop_on_signals() -> asyncio.Event:
    """Set on SIGINT or SIGTERM, so a server stops gracefully."""
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    return stop


def entry_point(
    program: str,
    invocation: str,
    settings_class: type[Settings],
    argv: list[str] | None,
    run: Callable[[Settings], int],
) -> int:
    """What both commands do first: `--help` prints the usage and every setting; bad settings or a StartupError are
    one line on stderr and exit code 2; logging starts with every secret redacted, before anything can log."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        print(usage(invocation, settings_class))
        return 0
    try:
        settings = settings_class()
    except ValidationError as error:
        print(f"{program}: {describe_error(error)}", file=sys.stderr)
        return EXIT_CONFIGURATION
    configure_logging(settings.log_level, settings.secrets())
    _forget_secret_variables(settings_class)
    try:
        return run(settings)
    except StartupError as error:
        print(f"{program}: {error}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except KeyboardInterrupt:
        return 0


def _forget_secret_variables(settings_class: type[BaseSettings]) -> None:
    """The settings hold the secrets now (the token, the Redis URL, the webhook's secret); out of this process's
    environment they go, so that no process it starts inherits them: the worker processes, which decode what
    strangers send, never hold them."""
    secret = {
        name
        for name, field in settings_class.model_fields.items()
        if SecretStr in (field.annotation, *get_args(field.annotation))
    }
    for variable in [variable for variable in os.environ if variable.lower() in secret]:
        del os.environ[variable]


def usage(program: str, settings_class: type[BaseSettings]) -> str:
    """`--help`: how to start the program and every setting it reads, with its default and meaning."""
    lines = [
        f"usage: {program}",
        "",
        "Settings come from the environment or a .env file in the working directory:",
    ]
    for name, field in settings_class.model_fields.items():
        default = "required" if field.is_required() else f"default {_shown_default(field)}"
        lines.append(f"  {name.upper():<26} {field.description or ''} ({default})")
    return "\n".join(lines)


def _shown_default(field: Any) -> str:
    if field.default_factory is not None:
        return "depends on the machine"
    return "unset" if field.default is None else repr(field.default)


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
