"""The worker pool the bot benchmarks drive: real worker processes with the default options, started once a module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from anonymizer.options import Options
from bot.workers import WorkerPool
from tests.bot.cluster import redis_server  # noqa: F401 (a fixture: the distributed benchmarks' Redis)

# Worker processes, as the bot's WORKERS setting: one per CPU unless the environment says otherwise.
WORKERS = int(os.environ.get("WORKERS") or os.cpu_count() or 1)


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(WORKERS, Options()).start()
    yield pool
    pool.close(wait=True)
