"""Which photo a result came from, for a short while: the second look ("Look harder", /strict on a result) runs on
the original again without the user sending it twice, and the user's choice of faces (`bot.handlers.choose`) paints
it again without a second detection.

The bot keeps no image. It remembers, per result message, only the original's Telegram file id, what admission
needs to price it (its pixels or byte size, whether it came as a file), the boxes of the faces found and the user's
choices, and only for `ttl` seconds from the result: long enough to look at a result, no longer. In memory for
the embedded bot; in Redis, with the key expiring, when fronts share the work (a button pressed under one front's
result may reach another front: bot.cluster.originals).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from detectors import Detection
from filters import Region

# What one result may ask of the workers within its hour: a second look (a slow one), and this many renders of the
# user's choice of faces (each a job like a photo's); past them the user is asked to send the photo again.
SECOND_LOOKS_PER_RESULT = 1
RENDERS_PER_RESULT = 30


@dataclass(frozen=True)
class Original:
    """The user's picture behind a result: enough to fetch it again from Telegram, to price it, and to paint it
    again as its sender chooses: the faces found (in reading order: face n is `faces[n - 1]`), the numbers of those
    the sender shows, and the regions the sender drew. `strict` marks a second look's result (it offers no third);
    `album` lists an album's pictures with faces (their places and messages), whose chooser is a message apart;
    `second_looks` and `renders` count what was asked of it, each limited so that one result cannot keep the
    workers busy for its hour."""

    user_id: int
    file_id: str
    as_document: bool
    file_size: int | None = None
    pixels: int | None = None
    file_name: str | None = None
    strict: bool = False
    faces: tuple[Detection, ...] = ()
    shown: frozenset[int] = field(default_factory=frozenset)
    regions: tuple[Region, ...] = ()
    album: tuple[tuple[int, int], ...] = ()
    second_looks: int = 0
    renders: int = 0

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "shown": sorted(self.shown)})

    @classmethod
    def from_json(cls, raw: str | bytes) -> Original:
        document: dict[str, Any] = json.loads(raw)
        document["faces"] = tuple(Detection(**face) for face in document.get("faces", ()))
        document["shown"] = frozenset(document.get("shown", ()))
        document["regions"] = tuple(Region(**region) for region in document.get("regions", ()))
        document["album"] = tuple((position, message) for position, message in document.get("album", ()))
        return cls(**document)


class Originals(Protocol):
    async def remember(self, chat_id: int, result_message_id: int, original: Original) -> None:
        """Keep `original` for the store's time from now."""

    async def update(self, chat_id: int, result_message_id: int, original: Original) -> bool:
        """Replace what is kept, within the time it had left; False if it is gone."""

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

    async def update(self, chat_id: int, result_message_id: int, original: Original) -> bool:
        self._forget_expired()
        entry = self._entries.get((chat_id, result_message_id))
        if entry is not None:
            self._entries[(chat_id, result_message_id)] = (entry[0], original)
        return entry is not None

    async def recall(self, chat_id: int, result_message_id: int) -> Original | None:
        self._forget_expired()
        entry = self._entries.get((chat_id, result_message_id))
        return entry[1] if entry else None

    def __len__(self) -> int:
        self._forget_expired()
        return len(self._entries)
