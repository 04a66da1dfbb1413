"""``photo-anon`` as a user runs it: folders of real photos, one broken file, JSON output, model files."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
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
    assert set(face) == {"x", "y", "w", "h", "score", "detector"}
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
