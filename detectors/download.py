"""Fetching the detectors' weight files into the model store: from their official sources or from a mirror.

Every file is tried, whatever happened to the ones before it, and each comes back with its own outcome: a machine
that reaches only some hosts (or a mirror that holds only some files) still gets what can be had, and the caller
decides what the rest means. A derived file (SCRFD's INT8 weights) is made here from its verified source instead of
fetched, and checked against its own pinned sha256 like any other. A file is written to a temporary name beside its
target and renamed into place only once its sha256 matched, so a failed or interrupted download never leaves anything
a detector could load.
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

from tqdm import tqdm

from detectors import int8
from detectors.models import KNOWN_FILES, ModelFile, is_verified, known_file, models_dir

# Stands in for every official host: each official file is then fetched as this prefix (an http(s) URL or a
# directory) followed by the file name of its official URL. Tests point it at 127.0.0.1 so they never reach the
# internet; a site without internet access can point it at a copy of the upstream files.
UPSTREAM_ENV_VAR = "PHOTO_ANON_MODELS_UPSTREAM"
# Per network operation (connecting, each read): a host that does not answer costs this once per file.
TIMEOUT_SECONDS = 30.0
_CHUNK = 1 << 16

DOWNLOADED, PRESENT, FAILED = "downloaded", "present", "failed"


class ModelDownloadError(RuntimeError):
    """Fetching one weight file failed or produced the wrong bytes; nothing of it was left in the store."""


@dataclass(frozen=True)
class Fetched:
    """What ``download`` did for one file: ``state`` is DOWNLOADED (fetched now and verified), PRESENT (already
    there and verified) or FAILED (``error`` says why); ``origin`` is where the bytes came from."""

    filename: str
    detector: str
    path: Path
    state: str
    origin: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.state != FAILED


def download(
    filenames: Iterable[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    progress: bool = True,
    or_official: bool = False,
) -> list[Fetched]:
    """Fetch the given known files (all by default) into ``models_dir()``, verified, and say how each went.

    ``source`` None means the official pinned URLs; otherwise a local directory or an http(s) URL prefix of a
    mirror holding the same file names. A file the mirror lacks fails, unless ``or_official``: then it comes from
    its official source (a partial mirror, such as one made before a detector was added). Files already present
    and verified are not fetched again; a corrupt or partial one is replaced. Unknown names raise ValueError before
    anything is fetched.
    """
    chosen = [known_file(name) for name in (KNOWN_FILES if filenames is None else filenames)]
    target_dir = models_dir()
    outcomes = []
    for known in chosen:
        target = target_dir / known.filename
        if target.is_file() and is_verified(target, known.sha256):
            outcomes.append(Fetched(known.filename, known.detector, target, PRESENT, str(target)))
            continue
        try:
            target_dir.mkdir(parents=True, exist_ok=True)
            if known.derived_from:
                opened = _derived(known)
            else:
                use_official = source is None or (or_official and not _mirror_has(source, known.filename))
                opened = _open_source(known, None if use_official else source)
            origin = _store(known, target, *opened, progress)
        except ModelDownloadError as error:
            outcomes.append(Fetched(known.filename, known.detector, target, FAILED, error=str(error)))
        except OSError as error:
            message = f"cannot write into {target_dir}: {error.strerror or error}"
            outcomes.append(Fetched(known.filename, known.detector, target, FAILED, error=message))
        else:
            outcomes.append(Fetched(known.filename, known.detector, target, DOWNLOADED, origin))
    return outcomes


def official_location(known: ModelFile) -> str:
    """The official URL of a file, or its stand-in under ``$PHOTO_ANON_MODELS_UPSTREAM`` when that is set."""
    upstream = os.environ.get(UPSTREAM_ENV_VAR)
    if not upstream:
        return known.url
    return _under(upstream, known.url.rsplit("/", 1)[-1])


def _under(prefix: str | os.PathLike[str], name: str) -> str:
    """``name`` in a directory or under an http(s) URL prefix."""
    if str(prefix).startswith(("http://", "https://")):
        return f"{str(prefix).rstrip('/')}/{name}"
    return str(Path(prefix).expanduser() / name)


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _open_source(known: ModelFile, source: str | os.PathLike[str] | None) -> tuple[BinaryIO, int | None, str]:
    """A readable stream of the file's bytes, its expected length if known, and where it comes from."""
    location = official_location(known) if source is None else _under(source, known.filename)
    stream, length = _open_url(location) if _is_url(location) else _open_path(Path(location))
    if source is None and known.member:
        return _member_of_archive(known, stream, location)
    return stream, length, location


def _open_url(url: str) -> tuple[BinaryIO, int | None]:
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS)  # noqa: S310 (http or https: see _is_url)
    except urllib.error.HTTPError as error:
        raise ModelDownloadError(f"cannot download {url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError) as error:
        raise ModelDownloadError(f"cannot download {url}: {getattr(error, 'reason', error)}") from error
    length = response.headers.get("Content-Length")
    return response, int(length) if length and length.isdigit() else None


def _open_path(path: Path) -> tuple[BinaryIO, int]:
    try:
        return path.open("rb"), path.stat().st_size
    except OSError as error:
        raise ModelDownloadError(f"cannot read {path}: {error.strerror or error}") from error


def _member_of_archive(known: ModelFile, stream: BinaryIO, location: str) -> tuple[BinaryIO, int, str]:
    """The file's bytes read out of its official .tar.gz, whose own checksum is verified first; nothing is written
    to disk but a temporary copy of the archive."""
    with stream, tempfile.TemporaryFile() as archive:
        digest = hashlib.sha256()
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
            archive.write(chunk)
        if digest.hexdigest() != known.archive_sha256:
            raise ModelDownloadError(f"{location} gave an archive with the wrong sha256")
        archive.seek(0)
        try:
            with tarfile.open(fileobj=archive, mode="r:gz") as bundle:
                member = bundle.extractfile(known.member)
                if member is None:
                    raise KeyError(known.member)
                data = member.read()
        except (tarfile.TarError, KeyError, OSError) as error:
            raise ModelDownloadError(f"{location} has no readable {known.member}: {error}") from error
    return io.BytesIO(data), len(data), f"{location} ({known.member})"


def _store(known: ModelFile, target: Path, stream: BinaryIO, length: int | None, origin: str, progress: bool) -> str:
    """Write one file's bytes into ``target`` through a verified temporary file; return where they came from."""
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{known.filename}.", suffix=".part", dir=target.parent)
    except OSError:
        stream.close()
        raise
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
            raise ModelDownloadError(f"{origin} stopped after {received} of {length} bytes")
        if digest.hexdigest() != known.sha256:
            raise ModelDownloadError(f"{origin} gave a file with the wrong sha256 (corrupt or incomplete)")
        os.replace(temp, target)
    except ModelDownloadError:
        raise
    except Exception as error:
        raise ModelDownloadError(f"download of {origin} failed: {error!r}") from error
    finally:
        temp.unlink(missing_ok=True)
    return origin


def _derived(known: ModelFile) -> tuple[BinaryIO, int | None, str]:
    """A derived file's bytes, made from its verified source, and what they came from."""
    source = models_dir() / known.derived_from
    if not is_verified(source, known_file(known.derived_from).sha256):
        raise ModelDownloadError(f"it is made from {known.derived_from}, which is not there")
    try:
        derived = int8.derive(source)
    except Exception as error:
        raise ModelDownloadError(f"deriving it from {known.derived_from} failed: {error}") from error
    if hashlib.sha256(derived).hexdigest() != known.sha256:
        raise ModelDownloadError(
            f"deriving it from {known.derived_from} gave other bytes than the pinned ones (another onnxruntime "
            "than the one pinned in constraints.txt?)"
        )
    return io.BytesIO(derived), len(derived), f"{source}, quantized to INT8"


def _mirror_has(source: str | os.PathLike[str], filename: str) -> bool:
    """Whether a mirror directory, or an http(s) mirror answering a HEAD request, holds ``filename``."""
    location = _under(source, filename)
    if not _is_url(location):
        return Path(location).is_file()
    request = urllib.request.Request(location, method="HEAD")  # noqa: S310 (http or https: see _is_url)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS):  # noqa: S310
            return True
    except (urllib.error.URLError, OSError):
        return False
