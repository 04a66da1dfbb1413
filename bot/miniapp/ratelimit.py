"""How often one user may call the Mini App's API: the page is reachable from the internet, and every call costs the
bot a download from Telegram or a render. Opening the editor takes two calls and applying it one, so a person
editing photo after photo stays well within the limit; a script hammering it does not."""

from __future__ import annotations

import time
from typing import Protocol

# Calls per user in each window of WINDOW_SECONDS.
REQUESTS_PER_WINDOW = 30
WINDOW_SECONDS = 60.0


class RateLimit(Protocol):
    async def take(self, user_id: int) -> float:
        """Count one call of the user's: 0 while within the limit, else the seconds until the user may call again."""


class MemoryRateLimit:
    """The embedded bot's counts: one fixed window per user, forgotten once it is over."""

    def __init__(self, requests: int = REQUESTS_PER_WINDOW, window: float = WINDOW_SECONDS) -> None:
        self.requests = requests
        self.window = window
        self._windows: dict[int, tuple[float, int]] = {}

    async def take(self, user_id: int) -> float:
        now = time.monotonic()
        for user in [user for user, (ends, _) in self._windows.items() if ends <= now]:
            del self._windows[user]
        ends, count = self._windows.get(user_id, (now + self.window, 0))
        self._windows[user_id] = (ends, count + 1)
        return 0.0 if count < self.requests else ends - now
