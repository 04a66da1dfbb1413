"""Shared fixtures and the markers' rules: where the labelled photos live, which tests need what.

Markers (pyproject.toml lists them): ``e2e`` for everything under tests/bot/ (real worker processes, the fake
Telegram server over HTTP, Redis), ``eval`` for tests that use the ``eval_dir`` fixture, ``models`` for tests
that need the DNN weights (skipped where they are not downloaded), ``slow`` for tests of seconds or more, which
every e2e and eval test is too. Every other test is a ``unit`` test: ``pytest -m "not slow"`` runs the quick part.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from detectors import models
from testing.paths import EVAL_DIR

# No test reaches the internet: the official model sources are replaced by a closed port on this machine (the
# variable is inherited by every process the tests start). Tests that fetch serve their own files on 127.0.0.1.
os.environ["PHOTO_ANON_MODELS_UPSTREAM"] = "http://127.0.0.1:9/"

_HEAVY = ("e2e", "eval")


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    """The labelled photos (../shared/eval); tests that need them are skipped where they are absent."""
    if not (EVAL_DIR / "annotations.json").exists():
        pytest.skip("the labelled evaluation set is not on this machine")
    return EVAL_DIR


def _models_missing() -> list[str]:
    return [row.filename for row in models.status() if not row.verified]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply the marker rules of the module docstring."""
    bot_tests = Path(__file__).parent / "bot"
    missing: list[str] | None = None
    for item in items:
        if item.path.is_relative_to(bot_tests):
            item.add_marker(pytest.mark.e2e)
        if "eval_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.eval)
        if any(item.get_closest_marker(name) for name in _HEAVY):
            item.add_marker(pytest.mark.slow)
        if not any(item.get_closest_marker(name) for name in (*_HEAVY, "models", "slow")):
            item.add_marker(pytest.mark.unit)
        if item.get_closest_marker("models"):
            missing = _models_missing() if missing is None else missing
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"model weights not downloaded: {', '.join(missing)}"))
