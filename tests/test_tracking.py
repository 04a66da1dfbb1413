"""The tracker on scripted detections: a face the detector misses for a moment stays covered, and the stream holds
a bounded number of frames."""

from __future__ import annotations

import numpy as np
import pytest

from anonymizer.tracking import FrameCoverer, Reach, Tracker
from detectors import Detection

SIZE = (120, 200)  # height, width


def face_at(frame: int) -> Detection:
    """A face moving right by 4 px a frame."""
    return Detection(10 + 4 * frame, 30, 40, 48, 0.9, "script")


class ScriptedDetector:
    """Finds the moving face on every frame except the ones it is told to miss; records what it was shown."""

    def __init__(self, misses: set[int]) -> None:
        self.misses, self.seen = misses, []

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        index = int(frame[0, 0, 0]) + 256 * int(frame[0, 1, 0])  # each test frame's number, in its first pixels
        self.seen.append(index)
        return [] if index in self.misses else [face_at(index)]


class BoxPainter:
    """Paints each region's box black, exactly: what was covered is plain to see."""

    def apply(self, image: np.ndarray, regions) -> np.ndarray:
        out = image.copy()
        for box in regions:
            out[box.y : box.y + box.h, box.x : box.x + box.w] = 0
        return out


def numbered_frame(index: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    frame = np.full((*size, 3), 200, np.uint8)
    frame[0, 0], frame[0, 1] = index % 256, index // 256
    return frame


def frames_apart(max_gap: float, hold: float, frames: int = 1) -> Tracker:
    """A tracker whose gap and hold are counted in frames: the tests give frame ``i`` the time ``i``."""
    return Tracker(Reach(max_gap, hold, frames))


def run(frames: int, detector: ScriptedDetector, detect_every: int, tracker: Tracker) -> tuple[list, int]:
    coverer = FrameCoverer(detector, BoxPainter(), detect_every, tracker)
    out, most_held = [], 0
    for index in range(frames):
        out.extend(coverer.push(numbered_frame(index), index, index))
        most_held = max(most_held, len(coverer.pending))
    out.extend(coverer.finish())
    return out, most_held


def covered(frame: np.ndarray, face: Detection) -> float:
    region = frame[face.y : face.y + face.h, face.x : face.x + face.w]
    return float((region == 0).all(axis=2).mean())


@pytest.mark.parametrize("detect_every", [1, 3])
def test_a_face_missed_between_two_detections_stays_covered(detect_every: int) -> None:
    misses = {6, 7, 8, 9}  # keyframes 6 and 9 find nothing
    out, _ = run(20, ScriptedDetector(misses), detect_every, frames_apart(max_gap=10, hold=2))
    assert [payload for _, payload in out] == list(range(20))
    for frame, index in out:
        assert covered(frame, face_at(index)) > 0.95, f"frame {index} slipped"


def test_without_a_bridge_the_miss_shows() -> None:
    """The same misses with no gap allowed and no hold: the test above would catch a broken tracker."""
    out, _ = run(20, ScriptedDetector({6, 7, 8, 9}), 1, frames_apart(max_gap=0, hold=0, frames=0))
    assert covered(out[7][0], face_at(7)) == 0


def test_a_face_is_covered_just_before_it_is_first_found() -> None:
    out, _ = run(12, ScriptedDetector({0, 1, 2, 3, 4, 5}), 1, frames_apart(max_gap=4, hold=3))
    assert covered(out[4][0], face_at(4)) > 0.8 and covered(out[5][0], face_at(5)) > 0.95
    assert covered(out[1][0], face_at(1)) == 0  # well before: nothing is painted


def test_a_face_lost_for_good_is_held_on_for_a_few_frames_then_released() -> None:
    out, _ = run(20, ScriptedDetector(set(range(10, 20))), 3, frames_apart(max_gap=4, hold=2))
    assert covered(out[10][0], face_at(10)) > 0.95 and covered(out[11][0], face_at(11)) > 0.95
    assert covered(out[14][0], face_at(14)) == 0


def test_the_stream_holds_a_bounded_number_of_frames() -> None:
    detector = ScriptedDetector(set())
    out, most_held = run(200, detector, 3, frames_apart(max_gap=10, hold=4))
    assert len(out) == 200
    assert most_held <= 10 + 3 + 1
    assert detector.seen[-1] == 199, "the last frame is searched so the tail is not guessed"
    assert len(detector.seen) == len(range(0, 200, 3)) + 1


WIDE = (120, 1300)  # room for the face's 300 frames of travel
FRAME_BYTES = WIDE[0] * WIDE[1] * 3


@pytest.mark.parametrize(("max_frames", "max_bytes"), [(8, 2**40), (1000, 5 * FRAME_BYTES)], ids=["count", "bytes"])
def test_frames_a_microsecond_apart_are_held_within_the_bounds_and_all_covered(max_frames: int, max_bytes: int) -> None:
    """The times a clip claiming a million frames a second gives: a third of a second of lookahead is every frame of
    it. The bounds hold; searches come closer together instead, so every frame is still covered."""
    detector = ScriptedDetector(set())
    coverer = FrameCoverer(detector, BoxPainter(), 0.1, Tracker(), max_held_frames=max_frames, max_held_bytes=max_bytes)
    out, most_held, most_bytes = [], 0, 0
    for index in range(300):
        out.extend(coverer.push(numbered_frame(index, WIDE), index * 1e-6, index))
        most_held, most_bytes = max(most_held, len(coverer.pending)), max(most_bytes, coverer.held_bytes)
    out.extend(coverer.finish())
    assert [payload for _, payload in out] == list(range(300))
    assert most_held <= max_frames and most_bytes <= max_bytes
    for frame, index in out:
        assert covered(frame, face_at(index)) > 0.95, f"frame {index} slipped"
    assert len(detector.seen) < 300 / 3, "searches come only as often as the bound needs"


def test_a_slow_animation_holds_a_face_over_one_missed_frame() -> None:
    """Frames half a second apart (a slide-show GIF): a face missed on one frame is held on from the frame before,
    though that lies farther back in time than a video's face is held."""
    detector = ScriptedDetector({4})
    coverer = FrameCoverer(detector, BoxPainter(), 0.1, Tracker())
    out = []
    for index in range(8):
        out.extend(coverer.push(numbered_frame(index), index * 0.5, index))
    out.extend(coverer.finish())
    assert covered(out[4][0], face_at(4)) > 0.95
