"""Shared fixtures: the model cache every test uses, and where the labelled evaluation set lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EVAL_DIR = Path(os.environ.get("PHOTO_ANON_EVAL_DIR", ROOT.parent / "shared" / "eval"))
SHARED_MODELS = ROOT.parent / "shared" / "models"


@pytest.fixture(scope="session")
def eval_dir() -> Path:
    """The labelled photos (../shared/eval); tests that need them are skipped where they are absent."""
    if not (EVAL_DIR / "annotations.json").exists():
        pytest.skip("the labelled evaluation set is not on this machine")
    return EVAL_DIR
