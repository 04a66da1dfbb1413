"""The worker pool the bot benchmarks drive (real worker processes with the default options, started once a module),
and the benchmarks' own time ceiling."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from anonymizer.options import Options
from bot.pool import ProcessPool
from testing.cluster import redis_server  # noqa: F401 (a fixture: the distributed benchmarks' Redis)

# Worker processes, as the bot's WORKERS setting: one per CPU unless the environment says otherwise.
WORKERS = int(os.environ.get("WORKERS") or os.cpu_count() or 1)
# The full runs measure long work (a minute of 1080p video in a fresh process, storms of hundreds of updates); the
# tests' ceiling (pyproject.toml) is for tests that hang, not for these.
BENCHMARK_TIMEOUT_S = 3600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(BENCHMARK_TIMEOUT_S))


@pytest.fixture(scope="module")
def pool() -> Iterator[ProcessPool]:
    pool = ProcessPool(WORKERS, Options()).start()
    yield pool
    pool.close(wait=True)
