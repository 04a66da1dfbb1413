"""``photo-anon`` as a user runs it: folders of real photos, one broken file, JSON output, model files."""

from __future__ import annotations

import importlib.metadata
import json
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from anonymizer import cli, options, pipeline
from anonymizer.cli import main
from detectors import models
from testing.images import ASTRONAUT_FACE, astronaut_bgr, composite
from testing.paths import ROOT

TIMINGS = {"decode", "detect", "filter", "encode", "total"}


def face_changed(original: np.ndarray, output_path: Path, box: tuple[int, int, int, int]) -> bool:
    x, y, w, h = box
    output = cv2.imread(str(output_path), cv2.IMREAD_UNCHANGED)
    before, after = original[y : y + h, x : x + w].astype(int), output[y : y + h, x : x + w].astype(int)
    return float(np.abs(after - before).mean()) > 30


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder as a user has it: a JPEG, a PNG with two faces in a sub-folder, an earlier output, a text file."""
    folder = tmp_path / "photos"
    (folder / "trip").mkdir(parents=True)
    cv2.imwrite(str(folder / "astronaut.jpg"), astronaut_bgr())
    group, _ = composite((900, 600), [(60, 80, 90), (480, 160, 130)])
    cv2.imwrite(str(folder / "trip" / "group.png"), group)
    cv2.imwrite(str(folder / "old.anonymized.jpg"), astronaut_bgr())
    (folder / "notes.txt").write_text("not a photo")
    return folder


def test_folder_is_anonymized_beside_the_inputs(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["anonymize", str(photos)]) == 0

    output = photos / "astronaut.anonymized.jpg"
    assert face_changed(astronaut_bgr(), output, ASTRONAUT_FACE)
    assert (photos / "trip" / "group.anonymized.png").is_file()
    assert not (photos / "old.anonymized.anonymized.jpg").exists()
    assert not list(photos.rglob("notes.anonymized*"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "1 face covered" in lines[0] and "2 faces covered" in lines[1]


def test_output_directory_keeps_the_tree_and_names(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["anonymize", str(photos), "-o", str(out)]) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.*")) == ["astronaut.jpg", "trip/group.png"]
    assert face_changed(astronaut_bgr(), out / "astronaut.jpg", ASTRONAUT_FACE)
    assert not list(photos.rglob("*.anonymized.png"))


@pytest.mark.models
def test_single_file_may_go_to_an_output_file(photos: Path, tmp_path: Path) -> None:
    target = tmp_path / "covered.jpg"
    assert (
        main(["anonymize", str(photos / "astronaut.jpg"), "-o", str(target), "--filter", "solid", "--margin", "0.3"])
        == 0
    )
    x, y, w, h = ASTRONAUT_FACE
    face = cv2.imread(str(target))[y : y + h, x : x + w]
    assert face.std(axis=(0, 1)).max() < 3  # solid: one colour, whatever JPEG does to it
    folder = tmp_path / "new-folder"
    assert main(["anonymize", str(photos / "astronaut.jpg"), "-o", str(folder)]) == 0
    assert (folder / "astronaut.jpg").is_file()


@pytest.mark.models
def test_json_lists_faces_and_timings_per_file(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["anonymize", str(photos), "--json", "--mask", "box", "--margin", "0.2"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [Path(r["input"]).name for r in records] == ["astronaut.jpg", "group.png"]
    assert [len(r["faces"]) for r in records] == [1, 2]
    face = records[0]["faces"][0]
    assert set(face) == {"number", "x", "y", "w", "h", "score", "detector", "kept"}
    assert abs(face["x"] - ASTRONAUT_FACE[0]) < 15 and abs(face["h"] - ASTRONAUT_FACE[3]) < 20
    assert all(set(r["timings"]) == TIMINGS for r in records)
    assert Path(records[1]["output"]).is_file()


def test_one_broken_file_fails_alone(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = photos / "broken.jpg"
    broken.write_bytes((photos / "astronaut.jpg").read_bytes()[:3000])
    (photos / "letter.png").write_bytes(b"%PDF-1.7\n%%EOF\n")

    assert main(["anonymize", str(photos)]) == 1

    assert (photos / "astronaut.anonymized.jpg").is_file() and (photos / "trip" / "group.anonymized.png").is_file()
    assert not (photos / "broken.anonymized.jpg").exists() and not (photos / "letter.anonymized.png").exists()
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2
    assert "broken.jpg" in errors[0] and "damaged" in errors[0]
    assert "letter.png" in errors[1] and "not an image" in errors[1]


def test_missing_input_is_an_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(tmp_path / "nowhere.jpg")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_detect_json_changes_nothing(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = sorted(photos.rglob("*"))
    assert main(["detect", str(photos / "trip" / "group.png"), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["width"], record["height"], len(record["faces"])) == (900, 600, 2)
    assert sorted(photos.rglob("*")) == before


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--detector", "nobody"], "unknown detector 'nobody'"),
        (["--detector", "scrfd[foo=1]"], "detector 'scrfd' has no setting 'foo'"),
        (["--detector", "scrfd[threshold=abc]"], "detector 'scrfd': threshold takes a number, not 'abc'"),
        (["--detector", "union:yunet,scrfd[turned=sideways]"], "turned"),
        (["--margin", "-1"], "margin"),
    ],
)
def test_bad_options_are_one_line_and_exit_2_before_any_file_is_read(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The input does not exist: had it been read first, the answer would be "no such file" and exit code 1."""
    assert main(["anonymize", str(tmp_path / "not-there.jpg"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What argparse says on stderr for a command line it refuses (exit code 2)."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "1.5", "nan", "abc"])
def test_a_threshold_outside_0_to_1_is_a_usage_error(
    photos: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = usage_error(["anonymize", str(photos), "--threshold", value], capsys)
    assert "--threshold" in err and "from 0 to 1" in err
    assert not list(photos.rglob("astronaut.anonymized.*"))


def test_help_says_what_the_threshold_means_and_lists_the_filters(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["anonymize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "A higher threshold never gives more faces" in text
    assert "score of a medium-size face: small faces need 0.6 of it" in text
    assert "{blur,noise,pixelate,solid}" in text


def test_an_unknown_filter_names_the_choices(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["anonymize", str(photos), "--filter", "sparkles"], capsys)
    assert "invalid choice: 'sparkles'" in err and "noise" in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"photo-anon {importlib.metadata.version('photo-anonymization')}"


@pytest.fixture
def untouchable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any photo anonymized from here on fails the test: the command must stop before the work."""
    monkeypatch.setattr(cli, "anonymize_media", lambda *_args: pytest.fail("a photo was anonymized"))


@pytest.mark.usefixtures("untouchable")
def test_an_output_file_for_several_inputs_is_a_usage_error(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "covered.jpg"
    assert main(["anonymize", str(photos), "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(target) in err and "several inputs" in err
    assert not target.exists()


@pytest.mark.usefixtures("untouchable")
def test_an_output_folder_that_cannot_be_written_is_found_before_any_work(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    assert main(["anonymize", str(photos), "-o", str(blocker / "out")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"cannot write into {blocker / 'out'}" in err


def test_an_output_that_would_replace_its_input_needs_overwrite(
    photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = photos / "astronaut.jpg"
    before = photo.read_bytes()
    assert main(["anonymize", str(photo), "-o", str(photo)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--overwrite" in err and str(photo) in err
    assert photo.read_bytes() == before

    assert main(["anonymize", str(photo), "-o", str(photo), "--overwrite"]) == 0
    assert photo.read_bytes() != before
    assert face_changed(astronaut_bgr(), photo, ASTRONAUT_FACE)


def single_photo(tmp_path: Path, mode: int = 0o644) -> Path:
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), astronaut_bgr())
    photo.chmod(mode)
    return photo


def test_an_output_is_never_written_through_a_symbolic_link(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The output's name is a link to another file: that file is never written, with or without --overwrite."""
    photo = single_photo(tmp_path)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    link = tmp_path / "photo.anonymized.jpg"
    link.symlink_to(victim)

    assert main(["anonymize", str(photo), "--detector", "haar"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--overwrite" in err and str(link) in err
    assert victim.read_text() == "keep me" and link.is_symlink()

    assert main(["anonymize", str(photo), "--detector", "haar", "--overwrite"]) == 0
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and face_changed(astronaut_bgr(), link, ASTRONAUT_FACE)


def test_an_existing_output_is_replaced_only_with_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = single_photo(tmp_path)
    earlier = tmp_path / "photo.anonymized.jpg"
    earlier.write_bytes(b"an earlier output")

    assert main(["anonymize", str(photo), "--detector", "haar"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "exists; --overwrite replaces it" in err
    assert earlier.read_bytes() == b"an earlier output"

    assert main(["anonymize", str(photo), "--detector", "haar", "--overwrite"]) == 0
    assert face_changed(astronaut_bgr(), earlier, ASTRONAUT_FACE)


def test_an_output_is_no_more_readable_than_its_input(tmp_path: Path) -> None:
    photo = single_photo(tmp_path, mode=0o600)
    assert main(["anonymize", str(photo), "--detector", "haar"]) == 0
    assert stat.S_IMODE((tmp_path / "photo.anonymized.jpg").stat().st_mode) == 0o600


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 60 MB file named as a photo (the limit is 50 MB) costs no memory: it is measured, never read."""
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as file:
        file.truncate(60 * 2**20)
    tracemalloc.start()
    try:
        assert main(["anonymize", str(huge), "--detector", "haar"]) == 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "The file is 60.0 MB; the limit is 50.0 MB." in capsys.readouterr().err
    assert peak < 20 * 2**20


@pytest.mark.e2e
def test_a_write_that_fails_half_way_leaves_no_half_file(tmp_path: Path) -> None:
    """The disk fills up while the output is written (a file size limit stands in for it): nothing is left."""
    photo = single_photo(tmp_path)

    def small_files_only() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, resource.RLIM_INFINITY))

    completed = subprocess.run(
        [sys.executable, "-m", "anonymizer", "anonymize", str(photo), "--detector", "haar"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=small_files_only,
    )
    assert completed.returncode == 1 and "cannot write output" in completed.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["photo.jpg"]


def test_missing_arguments_exit_with_usage_code() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["anonymize"])
    assert exit_info.value.code == 2


@pytest.fixture
def model_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty model cache, and detectors rebuilt from it (the pipeline caches them per process)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(models.ENV_VAR, str(cache))
    pipeline._detector.cache_clear()
    models.clear_cache()
    yield cache
    pipeline._detector.cache_clear()
    models.clear_cache()


@pytest.fixture
def partial_mirror(tmp_path: Path) -> Path:
    """A mirror folder with only YuNet's file (copied from the downloaded models) and a stray file."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copyfile(
        models.model_path("face_detection_yunet_2023mar.onnx"), mirror / "face_detection_yunet_2023mar.onnx"
    )
    (mirror / "README").write_text("not a model")
    return mirror


def lines_naming(text: str) -> dict[str, str]:
    """The first line of output naming each known model file, keyed by that file (a derived file's line names its
    source too, after the source's own line)."""
    named: dict[str, str] = {}
    for line in text.splitlines():
        for name in models.KNOWN_FILES:
            if name in line:
                named.setdefault(name, line)
    return named


@pytest.mark.models
def test_download_takes_what_it_can_says_why_not_per_file_and_runs_the_default_chain(
    partial_mirror: Path, model_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mirror with one file; the official sources unreachable (tests/conftest.py points them at a closed port)."""
    assert main(["models", "download", "--from", str(partial_mirror), "--or-official"]) == 0
    out, err = capsys.readouterr()
    fetched, failed = lines_naming(out), lines_naming(err)
    assert set(fetched) == {"face_detection_yunet_2023mar.onnx"}
    assert fetched["face_detection_yunet_2023mar.onnx"].startswith("downloaded and verified ")
    assert set(failed) == set(models.KNOWN_FILES) - set(fetched)
    derived = {name: known.derived_from for name, known in models.KNOWN_FILES.items() if known.derived_from}
    assert all("127.0.0.1:9" in line and "refused" in line for name, line in failed.items() if name not in derived)
    assert all(f"made from {source}, which is not there" in failed[name] for name, source in derived.items())
    assert f"the default chain {options.DEFAULT_DETECTOR} runs yunet" in out

    assert main(["models", "download", "--from", str(partial_mirror), "--or-official"]) == 0
    again = lines_naming(capsys.readouterr().out)
    assert again["face_detection_yunet_2023mar.onnx"].endswith("(already there)")

    assert main(["models", "list"]) == 0
    rows = {line.split()[-1]: line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["face_detection_yunet_2023mar.onnx"] == "verified"
    assert rows["res10_300x300_ssd_iter_140000.caffemodel"] == "missing"


def test_without_any_source_the_default_chain_still_runs_on_haar(
    model_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "download"]) == 0
    out, err = capsys.readouterr()
    assert set(lines_naming(err)) == set(models.KNOWN_FILES)
    assert "runs haar" in out
    assert not model_cache.exists() or not any(model_cache.iterdir())


def test_download_fails_when_a_file_asked_for_or_the_whole_default_chain_cannot_be_had(
    model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "download", "--from", str(tmp_path), "--only", "ssd"]) == 1
    failed = lines_naming(capsys.readouterr().err)
    assert set(failed) == {"deploy.prototxt", "res10_300x300_ssd_iter_140000.caffemodel"}

    monkeypatch.setattr(options, "DEFAULT_DETECTOR", "backup:ssd,centerface")
    assert main(["models", "download"]) == 1
    assert "no detector of the default chain backup:ssd,centerface can run" in capsys.readouterr().err
    assert main(["models", "download", "--only", "nonsense"]) == 2


def test_missing_model_is_one_line_naming_the_fix(
    model_cache: Path, photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["detect", str(photos / "astronaut.jpg"), "--detector", "ssd"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "photo-anon models download" in err[0]


def test_default_chain_still_works_without_models_falling_back_to_haar(
    model_cache: Path, photos: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    assert main(["detect", str(photos / "astronaut.jpg"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["faces"][0]["detector"] == "haar"
    assert "photo-anon models download" in caplog.text  # the warning the command line prints on stderr


@pytest.mark.e2e
def test_runs_as_a_program(photos: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "anonymizer", "anonymize", str(photos / "astronaut.jpg"), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    record = json.loads(completed.stdout)
    assert len(record["faces"]) == 1 and Path(record["output"]).is_file()


@pytest.mark.e2e
def test_output_read_only_in_part_ends_the_run_quietly(photos: Path) -> None:
    """`photo-anon anonymize FOLDER --json | head -1`: once the reader is gone, the program stops without a
    traceback."""
    process = subprocess.Popen(
        [sys.executable, "-m", "anonymizer", "anonymize", str(photos), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    json.loads(process.stdout.readline())
    process.stdout.close()
    errors = process.stderr.read()
    assert process.wait(timeout=120) == cli.EXIT_FAILED
    assert "Traceback" not in errors and "Error" not in errors, errors


@pytest.mark.slow
def test_videos_gifs_and_heic_photos_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    from testing.media import make_clip, make_gif

    folder = tmp_path / "phone"
    folder.mkdir()
    (folder / "clip.mov").write_bytes(make_clip(rotation=90))
    (folder / "party.gif").write_bytes(make_gif())
    Image.fromarray(cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2RGB)).save(folder / "photo.heic", "HEIF")
    assert main(["anonymize", str(folder), "--json"]) == 0

    records = {Path(r["input"]).name: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert Path(records["clip.mov"]["output"]).name == "clip.anonymized.mp4"
    assert Path(records["party.gif"]["output"]).name == "party.anonymized.gif"
    assert Path(records["photo.heic"]["output"]).name == "photo.anonymized.jpg"
    assert (records["clip.mov"]["kind"], records["clip.mov"]["frames"], records["clip.mov"]["tracks"]) == (
        "video",
        16,
        1,
    )
    assert records["photo.heic"]["format"] == "JPEG" and records["photo.heic"]["input_format"] == "HEIF"
    for record in records.values():
        assert Path(record["output"]).stat().st_size > 0


# --- the user's choice: faces numbered, kept and added --------------------------------------------------------

# Three heads in one row, rising to the right, so neither the detector's order nor a sort by height numbers them.
THREE_FACES, THREE_BOXES = composite((960, 400), [(40, 70, 100), (340, 55, 100), (640, 40, 100)])
# A patch of the astronaut photo with no face (the mission patch on her suit), as --add takes it.
NO_FACE = (130, 340, 80, 80)


@pytest.fixture
def three_faces(tmp_path: Path) -> Path:
    path = tmp_path / "three.png"
    cv2.imwrite(str(path), THREE_FACES)
    return path


def box_of(record: dict[str, int]) -> tuple[int, int, int, int]:
    return record["x"], record["y"], record["w"], record["h"]


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = box
    return image[y : y + h, x : x + w].astype(int)


@pytest.mark.models
def test_detect_numbers_the_faces_in_reading_order(three_faces: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(three_faces)]) == 0
    text = capsys.readouterr().out
    assert main(["detect", str(three_faces), "--json"]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]

    assert [face["number"] for face in faces] == [1, 2, 3]
    assert [face["x"] for face in faces] == sorted(face["x"] for face in faces)
    assert [abs(face["x"] - box.x) < 10 for face, box in zip(faces, THREE_BOXES, strict=True)] == [True] * 3
    listed = text.split(": ", 2)[2].split("; ")
    assert [entry.split()[:2] for entry in listed] == [[f"#{f['number']}", f"{f['x']},{f['y']}"] for f in faces]


@pytest.mark.models
def test_keep_leaves_those_faces_as_they_were(
    three_faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "kept.png"
    assert main(["anonymize", str(three_faces), "--keep", "2", "-o", str(target), "--json"]) == 0
    faces = json.loads(capsys.readouterr().out)["faces"]
    assert [(face["number"], face["kept"]) for face in faces] == [(1, False), (2, True), (3, False)]
    x, y, w, h = box_of(faces[1])
    assert np.array_equal(cv2.imread(str(target))[y : y + h, x : x + w], THREE_FACES[y : y + h, x : x + w])
    assert face_changed(THREE_FACES, target, box_of(faces[0])) and face_changed(THREE_FACES, target, box_of(faces[2]))

    assert main(["anonymize", str(three_faces), "--keep", "1", "--keep", "3"]) == 0
    assert "1 of 3 faces covered (left uncovered: 1, 3)" in capsys.readouterr().out
    output = three_faces.with_name("three.anonymized.png")
    assert not face_changed(THREE_FACES, output, box_of(faces[0])) and face_changed(
        THREE_FACES, output, box_of(faces[1])
    )


def test_add_covers_regions_besides_the_faces(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = (400, 300, 60, 60)  # the dark background beside her helmet
    argv = ["anonymize", str(photos / "astronaut.jpg")]
    assert main([*argv, "--add", ",".join(map(str, NO_FACE)), "--add", ",".join(map(str, other))]) == 0
    assert "1 face covered, and 2 added regions" in capsys.readouterr().out
    output = photos / "astronaut.anonymized.jpg"
    assert face_changed(astronaut_bgr(), output, ASTRONAUT_FACE)
    changed = [
        float(np.abs(crop(cv2.imread(str(output)), box) - crop(astronaut_bgr(), box)).mean())
        for box in (NO_FACE, other)
    ]
    assert min(changed) > 10


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keep", "two"], "argument --keep: face numbers from 1 separated by commas, such as 2,5, not 'two'"),
        (["--keep", "0"], "argument --keep: face numbers from 1"),
        (["--keep", "1,,2"], "argument --keep: face numbers from 1"),
        (["--keep", ""], "argument --keep: face numbers from 1"),
        (["--add", "10,10,50"], "argument --add: a region as X,Y,W,H in pixels (left, top, width, height)"),
        (["--add", "10,10,50,50,50"], "argument --add: a region as X,Y,W,H"),
        (["--add=-1,10,50,50"], "argument --add: a region as X,Y,W,H"),
        (["--add", "10,10,0,50"], "argument --add: a region as X,Y,W,H"),
        (["--add", "1.5,10,50,50"], "argument --add: a region as X,Y,W,H"),
    ],
)
def test_a_malformed_choice_is_a_usage_error(
    three_faces: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in usage_error(["anonymize", str(three_faces), *argv], capsys)
    assert not three_faces.with_name("three.anonymized.png").exists()


@pytest.mark.parametrize("inputs", [["a.jpg", "b.jpg"], ["folder"]])
def test_keep_for_several_inputs_is_a_usage_error_before_any_file_is_read(
    tmp_path: Path, inputs: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The inputs do not exist (the folder does): had one been read first, the answer would be exit code 1."""
    (tmp_path / "folder").mkdir()
    assert main(["anonymize", *(str(tmp_path / name) for name in inputs), "--keep", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--keep takes one photo, not several or a folder" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--keep", "9"], "There is no face 9: this picture has"),
        (
            ["--add", "900,300,61,50"],
            "The region at 900,300 of 61 x 50 px does not lie inside the 960 x 400 px picture",
        ),
    ],
)
def test_a_choice_that_does_not_fit_the_picture_is_a_usage_error(
    three_faces: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["anonymize", str(three_faces), *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and str(three_faces) in err and message in err
    assert not three_faces.with_name("three.anonymized.png").exists()


@pytest.mark.parametrize(("name", "choice"), [("party.gif", ["--keep", "1"]), ("clip.mp4", ["--add", "0,0,8,8"])])
def test_gifs_and_videos_take_no_choice(
    tmp_path: Path, name: str, choice: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from testing.media import make_clip, make_gif

    path = tmp_path / name
    path.write_bytes(make_gif() if name.endswith(".gif") else make_clip(container="mp4"))
    assert main(["anonymize", str(path), *choice]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "photos only" in err
    assert list(tmp_path.iterdir()) == [path]


def test_help_says_what_keep_and_add_do(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["anonymize", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--keep N[,N...] leave these faces uncovered, numbered as `photo-anon detect` lists them" in text
    assert "--add X,Y,W,H also cover this region (left, top, width, height in pixels of the upright photo)" in text
