"""Face detectors created by name (``create("ssd,haar")``), their chains and the model store."""

# centerface, haar, scrfd, ssd and yunet are imported for their @register side effect.
from detectors import centerface, haar, models, scrfd, ssd, yunet  # noqa: F401
from detectors.base import Detection, Detector
from detectors.chain import Chain
from detectors.models import ModelDownloadError, ModelMissingError
from detectors.registry import available, create, register

__all__ = [
    "Chain",
    "Detection",
    "Detector",
    "ModelDownloadError",
    "ModelMissingError",
    "available",
    "create",
    "models",
    "register",
]
