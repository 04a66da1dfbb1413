"""A fake Telegram Bot API server over real HTTP, for end-to-end tests of the bot."""

from testing.fake_telegram.server import (
    DOWNLOAD,
    REPLY_METHODS,
    TOKEN,
    Call,
    FakeTelegramServer,
    FakeUser,
    Fault,
    StoredFile,
    UploadedFile,
)

__all__ = [
    "DOWNLOAD",
    "REPLY_METHODS",
    "TOKEN",
    "Call",
    "FakeTelegramServer",
    "FakeUser",
    "Fault",
    "StoredFile",
    "UploadedFile",
]
