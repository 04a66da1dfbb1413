"""The registry and the chain policies: names, settings, fallback, union, and Haar when the weights are missing."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

import detectors
from anonymizer.options import DEFAULT_DETECTOR
from detectors import Chain, Detection, Detector, ModelMissingError, models
from detectors.registry import unregister
from detectors.settings import Settings
from testing.images import ASTRONAUT_FACE, astronaut_bgr

FACE = Detection(*ASTRONAUT_FACE, 1.0, "truth")


class Scripted(Detector):
    """A detector that returns fixed boxes and counts its calls (registered only inside these tests)."""

    boxes: tuple[tuple[int, int, int, int, float], ...] = ()
    calls = 0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _find(self, image: np.ndarray) -> list[Detection]:
        type(self).calls += 1
        return [Detection(x, y, w, h, s, self.name) for x, y, w, h, s in self.boxes if s >= self.settings.threshold]


@pytest.fixture
def scripted() -> Iterator[dict[str, type[Scripted]]]:
    """Three throwaway detectors: one finds nothing, two find overlapping boxes (plus one apart)."""
    specs = {
        "nothing": (),
        "first": ((10, 10, 50, 50, 0.6),),
        "second": ((14, 12, 50, 50, 0.9), (200, 200, 30, 30, 0.7)),
    }
    classes = {}
    for name, boxes in specs.items():
        cls = type(f"Scripted_{name}", (Scripted,), {"boxes": boxes, "calls": 0})
        classes[name] = detectors.register(name, Settings)(cls)
    yield classes
    for name in specs:
        unregister(name)


@pytest.fixture
def empty_models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(models.ENV_VAR, str(tmp_path))
    models.clear_cache()
    yield tmp_path
    models.clear_cache()


def test_available_lists_the_detectors() -> None:
    assert {"ssd", "haar", "yunet", "centerface"} <= set(detectors.available())


def test_unknown_name_lists_what_exists() -> None:
    with pytest.raises(ValueError, match=r"unknown detector 'mtcnn'; available: .*haar.*ssd"):
        detectors.create("ssd,mtcnn")
    with pytest.raises(ValueError, match="unknown chain policy"):
        detectors.create("vote:ssd,haar")
    with pytest.raises(ValueError, match="no detector"):
        detectors.create(" , ")


def test_settings_go_to_the_members_that_take_them() -> None:
    chain = detectors.create("ssd,haar", threshold=0.8, min_neighbors=7, overlap=None)
    ssd, haar = chain.members
    assert (ssd.settings.threshold, ssd.settings.overlap) == (0.8, 0.3)
    assert (haar.settings.threshold, haar.settings.min_neighbors) == (0.8, 7)
    with pytest.raises(ValueError, match="min_neightbors"):
        detectors.create("ssd,haar", min_neightbors=7)


def test_members_take_their_own_bracketed_settings() -> None:
    """A spec string carries per-member settings, so a tuned chain is one string in a config; settings given to
    ``create`` still reach every member that takes them."""
    chain = detectors.create("union:haar[min_neighbors=7 scale_factor=1.2],HAAR", threshold=0.6)
    assert chain.policy == "union"
    assert [(m.settings.min_neighbors, m.settings.scale_factor, m.settings.threshold) for m in chain.members] == [
        (7, 1.2, 0.6),
        (5, 1.1, 0.6),
    ]
    centerface = detectors.create("centerface[threshold=0.25 input_sizes=(768,)]")
    assert (centerface.settings.threshold, list(centerface._nets)) == (0.25, [768])
    for bad, message in (
        ("haar[min_neighbors=7", "cannot read detector"),
        ("haar[min_neighbors]", "cannot read setting"),
        ("haar[color=red]", "detector 'haar' has no setting 'color'; it takes: .*min_neighbors"),
        ("scrfd[foo=1]", "detector 'scrfd' has no setting 'foo'; it takes: threshold, "),
        ("scrfd[threshold=abc]", "detector 'scrfd': threshold takes a number, not 'abc'"),
        ("scrfd[turned=1]", "detector 'scrfd': turned takes a str, not 1"),
        ("centerface[input_sizes=768]", r"input_sizes takes a tuple such as \(640, 320\), not 768"),
        ("thorough[threshold=0.3]", "preset 'thorough' takes no bracketed settings"),
    ):
        with pytest.raises(ValueError, match=message):
            detectors.create(bad)


@pytest.mark.parametrize("threshold", [-1, 1.5, "high"])
def test_a_threshold_is_a_score_from_0_to_1(threshold: object) -> None:
    with pytest.raises(ValueError, match="threshold is a score from 0 to 1"):
        detectors.create("backup:scrfd,yunet,haar", threshold=threshold)


def test_thorough_preset_unions_scrfd_and_yunet_and_finds_the_astronaut_once() -> None:
    thorough = detectors.create("thorough")
    assert "thorough" in detectors.available()
    assert [m.name for m in thorough.members] == ["scrfd", "yunet"]
    assert thorough.members[0].settings.turned == "always", "SCRFD's turned pass runs on every photo in the preset"
    found = thorough.detect(astronaut_bgr())
    assert len(found) == 1 and found[0].detector == "scrfd+yunet"
    assert found[0].iou(Detection(*ASTRONAUT_FACE, 1.0, "truth")) >= 0.5
    fallback = detectors.create("thorough,haar")
    assert [m.name for m in fallback.members] == ["union:scrfd,yunet", "haar"]


def test_single_name_gives_the_detector_itself() -> None:
    detector = detectors.create(" Haar ", min_neighbors=3)
    assert detector.name == "haar"
    assert not isinstance(detector, Chain)
    assert isinstance(detectors.create("fallback:haar"), Chain)


def test_fallback_stops_at_the_first_detector_that_finds_faces(scripted: dict[str, type[Scripted]]) -> None:
    chain = detectors.create("nothing,first,second")
    found = chain.detect(np.zeros((300, 300, 3), np.uint8))
    assert [d.detector for d in found] == ["first"]
    assert (scripted["nothing"].calls, scripted["first"].calls, scripted["second"].calls) == (1, 1, 0)


def test_fallback_with_nothing_found_runs_everything(scripted: dict[str, type[Scripted]]) -> None:
    assert detectors.create("nothing,first[threshold=0.95]").detect(np.zeros((8, 8, 3), np.uint8)) == []
    assert (scripted["nothing"].calls, scripted["first"].calls) == (1, 1)


def test_a_higher_threshold_does_not_hand_the_photo_to_the_next_detector(scripted: dict[str, type[Scripted]]) -> None:
    """ "first" finds a face at its own settings: at 0.65 its box is dropped, and "second" (which would find two)
    is not asked, so the higher threshold gives fewer boxes, not more."""
    image = np.zeros((300, 300, 3), np.uint8)
    assert [d.detector for d in detectors.create("first,second", threshold=0.5).detect(image)] == ["first"]
    assert detectors.create("first,second", threshold=0.65).detect(image) == []
    assert scripted["second"].calls == 0
    assert len(detectors.create("nothing,second", threshold=0.65).detect(image)) == 2


def test_backup_runs_only_the_first_detector_even_when_it_finds_nothing(scripted: dict[str, type[Scripted]]) -> None:
    chain = detectors.create("backup:nothing,first")
    assert [m.name for m in chain.members] == ["nothing"]
    assert chain.detect(np.zeros((300, 300, 3), np.uint8)) == []
    assert (scripted["nothing"].calls, scripted["first"].calls) == (1, 0)


def test_default_leaves_a_photo_without_faces_alone_where_a_haar_fallback_paints_it() -> None:
    """scikit-image's coins: YuNet rightly finds nothing; a Haar fallback would then cover six coins."""
    coins = cv2.cvtColor(skimage.data.coins(), cv2.COLOR_GRAY2BGR)
    assert detectors.create(DEFAULT_DETECTOR).detect(coins) == []
    assert len(detectors.create("yunet,haar").detect(coins)) >= 3


def test_union_merges_overlapping_boxes(scripted: dict[str, type[Scripted]]) -> None:
    found = detectors.create("union:first,second,nothing").detect(np.zeros((300, 300, 3), np.uint8))
    assert sorted(found, key=lambda d: d.x) == [
        Detection(10, 10, 54, 52, 0.9, "first+second"),
        Detection(200, 200, 30, 30, 0.7, "second"),
    ]
    assert all(cls.calls == 1 for cls in scripted.values())


def test_union_of_real_detectors_gives_one_box_per_face() -> None:
    found = detectors.create("union:yunet,ssd,haar").detect(astronaut_bgr())
    assert len(found) == 1
    assert found[0].detector == "yunet+ssd+haar"
    assert found[0].iou(FACE) >= 0.4


def test_missing_weights_fall_back_to_haar_with_a_warning(
    empty_models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="detectors"):
        chain = detectors.create("ssd,haar")
    assert chain.name == "fallback:haar"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ssd" in warnings[0] and "photo-anon models download" in warnings[0]
    found = chain.detect(astronaut_bgr())
    assert [d.detector for d in found] == ["haar"]
    assert found[0].iou(FACE) >= 0.4


def test_missing_weights_make_the_default_a_haar_detector(
    empty_models_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="detectors"):
        chain = detectors.create(DEFAULT_DETECTOR)
    assert chain.name == "backup:haar"
    assert sum(r.levelno == logging.WARNING for r in caplog.records) == 2  # SCRFD's and YuNet's weights
    found = chain.detect(astronaut_bgr())
    assert [d.detector for d in found] == ["haar"]
    assert found[0].iou(FACE) >= 0.4


def test_missing_weights_without_haar_are_one_clear_error(empty_models_dir: Path) -> None:
    with pytest.raises(ModelMissingError, match="photo-anon models download"):
        detectors.create("yunet")
    with pytest.raises(ModelMissingError, match="photo-anon models download"):
        detectors.create("union:yunet,centerface")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("scrfd[small_share=1.5]", "detector 'scrfd': small_share is a share from 0 to 1, not 1.5"),
        ("scrfd[max_side=2.5]", "detector 'scrfd': max_side takes a whole number, not 2.5"),
        ("scrfd[max_window=640 window_overlap=640]", "window_overlap is less than max_window"),
        ("yunet[rotated_side=0]", "detector 'yunet': rotated_side is 1 or more, not 0"),
        ("haar[frontal='alt3']", "detector 'haar': frontal is one of default, alt2, not 'alt3'"),
        ("ssd[overlap=1]", "detector 'ssd': overlap is a share under 1, not 1"),
        ("centerface[input_sizes=('768',)]", r"input_sizes takes a tuple such as \(640, 320\), not \('768',\)"),
    ],
)
def test_a_setting_outside_what_it_may_be_is_refused_before_any_weight_loads(
    spec: str, message: str, empty_models_dir: Path
) -> None:
    """Each setting is checked against its field (kind, range, choices) when the spec is read, so a bad value is one
    line naming it even on a machine without the weights."""
    with pytest.raises(ValueError, match=message):
        detectors.create(spec)
