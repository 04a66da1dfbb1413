"""Face detectors created by name (``create("ssd,haar")``), their chains, the model store and its downloader."""

# centerface, haar, scrfd, ssd and yunet are imported for their @register side effect.
from detectors import centerface, download, haar, models, scrfd, ssd, yunet  # noqa: F401
from detectors.base import Detection, Detector
from detectors.chain import Chain
from detectors.models import ModelMissingError
from detectors.registry import available, create, register

__all__ = [
    "Chain",
    "Detection",
    "Detector",
    "ModelMissingError",
    "available",
    "create",
    "download",
    "models",
    "register",
]
