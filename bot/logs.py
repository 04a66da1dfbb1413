"""Logging set-up that can never print the bot token, whatever library formats a URL or an exception."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable

REDACTED = "<redacted>"

_secrets: set[str] = set()

RecordFactory = Callable[..., logging.LogRecord]


def redact(text: str) -> str:
    """The text with every registered secret replaced."""
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return text


def _redacting_factory(factory: RecordFactory) -> RecordFactory:
    def make_record(*args: object, **kwargs: object) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        message = record.getMessage()
        if redact(message) != message:
            record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    make_record.redacting = True  # type: ignore[attr-defined]
    return make_record


def install_redaction(secrets: Iterable[str]) -> None:
    """Redact these secrets (the token, and the token's secret half) from every log record, on every handler.

    A record factory, not a handler filter, so records reaching any handler (pytest's caplog too) are clean;
    aiohttp's ClientResponseError, for one, puts the file URL with the token into its message.
    """
    _secrets.update(secret for secret in secrets if secret)
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "redacting", False):
        logging.setLogRecordFactory(_redacting_factory(factory))


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    """Timestamped lines on stderr, token redacted; aiogram's per-update 'Update id=... is handled' lines kept."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction(secrets)
