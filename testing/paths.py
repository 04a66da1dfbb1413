"""Where the project's checkout and the shared folders beside it are."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The labelled evaluation photos (never copied into the repository).
EVAL_DIR = Path(os.environ.get("PHOTO_ANON_EVAL_DIR", ROOT.parent / "shared" / "eval"))
# The offline mirror of the model weights that `make` downloads from where it exists.
SHARED_MODELS = ROOT.parent / "shared" / "models"
