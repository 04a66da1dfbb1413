"""The Lua scripts of `scripts/`, each called with named arguments (one JSON object) and returning named results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

SCRIPTS = Path(__file__).with_name("scripts")


class Script:
    """One script of `scripts/`, registered on a client; its header says its keys, arguments and results."""

    def __init__(self, redis: Redis, name: str) -> None:
        self._script = redis.register_script((SCRIPTS / f"{name}.lua").read_text())

    async def __call__(self, keys: list[str], **arguments: Any) -> dict[str, Any]:
        reply = await self._script(keys=keys, args=[json.dumps(arguments)])
        result: dict[str, Any] = json.loads(reply)
        return result
