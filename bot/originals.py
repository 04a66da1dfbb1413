"""Which photo a result came from, for a short while: the second look ("Look harder", /strict on a result) runs on
the original again without the user sending it twice.

The bot keeps no image. It remembers, per result message, only the original's Telegram file id and what admission
needs to price it (its pixels or byte size, whether it came as a file), and only for `ttl` seconds: long enough to
look at a result, no longer. In memory for the embedded bot; in Redis, with the key expiring, when fronts share
the work (a button pressed under one front's result may reach another front: bot.cluster.originals).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Original:
    """The user's picture behind a result: enough to fetch it again from Telegram and to price it."""

    user_id: int
    file_id: str
    as_document: bool
    file_size: int | None = None
    pixels: int | None = None


class Originals(Protocol):
    async def remember(self, chat_id: int, result_message_id: int, original: Original) -> None: ...

    async def recall(self, chat_id: int, result_message_id: int) -> Original | None: ...


class MemoryOriginals:
    """The embedded bot's map; entries past their time are dropped whenever it is used."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[int, int], tuple[float, Original]] = {}

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for key in [key for key, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]

    async def remember(self, chat_id: int, result_message_id: int, original: Original) -> None:
        self._forget_expired()
        self._entries[(chat_id, result_message_id)] = (time.monotonic() + self.ttl, original)

    async def recall(self, chat_id: int, result_message_id: int) -> Original | None:
        self._forget_expired()
        entry = self._entries.get((chat_id, result_message_id))
        return entry[1] if entry else None

    def __len__(self) -> int:
        self._forget_expired()
        return len(self._entries)
