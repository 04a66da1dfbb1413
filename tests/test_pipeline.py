"""The whole pipeline on real photos: faces covered, everything else the input's, no metadata out."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

import anonymizer
import filters
from anonymizer import Options, anonymize, detect, pipeline
from anonymizer.errors import AnonymizerError
from detectors import Detection
from testing.images import ASTRONAUT_FACE, astronaut_bgr
from testing.metadata import assert_no_metadata, exif_with_gps, pillow_bytes

FACE = Detection(*ASTRONAUT_FACE, score=1.0, detector="truth")


def encoded(image_bgr: np.ndarray, extension: str) -> bytes:
    return cv2.imencode(extension, image_bgr)[1].tobytes()


def decoded(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def painted_area(result: anonymizer.Result, options: Options) -> np.ndarray:
    """Where the filter for ``options`` may have changed pixels, for the detections the pipeline reported."""
    return anonymizer.face_filter(options).mask((result.height, result.width), result.detections) > 0


def the_face(image: np.ndarray) -> np.ndarray:
    x, y, w, h = ASTRONAUT_FACE
    return image[y : y + h, x : x + w].astype(int)


def test_astronaut_jpeg_face_is_found_and_covered() -> None:
    original = astronaut_bgr()
    result = anonymize(encoded(original, ".jpg"))

    assert (result.format, result.width, result.height) == ("JPEG", 512, 512)
    assert len(result.detections) == 1
    assert result.detections[0].iou(FACE) > 0.6
    output = decoded(result.data)
    assert np.abs(the_face(output) - the_face(original)).mean() > 30
    assert Image.open(io.BytesIO(result.data)).format == "JPEG"


def test_outside_the_mask_png_pixels_are_exactly_the_inputs() -> None:
    original = astronaut_bgr()
    options = Options()
    result = anonymize(encoded(original, ".png"), options)

    outside = ~painted_area(result, options)
    assert result.detections and outside.mean() > 0.8
    assert np.array_equal(decoded(result.data)[outside], original[outside])


def test_outside_the_mask_jpeg_pixels_differ_only_by_re_encoding() -> None:
    original = decoded(encoded(astronaut_bgr(), ".jpg"))
    result = anonymize(encoded(original, ".jpg"))
    outside = ~painted_area(result, Options())
    assert np.abs(decoded(result.data)[outside].astype(int) - original[outside].astype(int)).mean() < 2


def test_photo_without_faces_comes_back_unchanged() -> None:
    no_face = np.ascontiguousarray(astronaut_bgr()[260:, :])  # the suit, flag and shuttle, below the face
    result = anonymize(encoded(no_face, ".png"))
    assert result.detections == []
    assert np.array_equal(decoded(result.data), no_face)


def test_timings_are_each_stage_and_their_total() -> None:
    """What --json reports: every stage took some time, one after the other, within the total."""
    timings = anonymize(encoded(astronaut_bgr(), ".jpg")).timings
    stages = ("decode", "detect", "filter", "encode")
    assert set(timings) == {*stages, "total"}
    assert all(timings[stage] > 0 for stage in stages)
    assert sum(timings[stage] for stage in stages) <= timings["total"]


@pytest.mark.models
@pytest.mark.parametrize("name", ["solid", "noise"])
def test_the_filter_option_chooses_how_the_face_is_covered(name: str) -> None:
    result = anonymize(encoded(astronaut_bgr(), ".png"), Options(filter=name, margin=0.3))
    spread = the_face(decoded(result.data)).std(axis=(0, 1)).max()
    assert spread < 2 if name == "solid" else spread > 15


def test_box_mask_paints_the_corners_the_ellipse_leaves() -> None:
    original = astronaut_bgr()
    for mask, changed in (("box", True), ("ellipse", False)):
        result = anonymize(encoded(original, ".png"), Options(mask=mask, margin=0.3))
        face = result.detections[0]
        # 10 % inside the top-left corner of the grown region (1.6 x the face): deep in the box, off the ellipse
        top, left = round(face.y - 0.3 * face.h + 0.16 * face.h), round(face.x - 0.3 * face.w + 0.16 * face.w)
        corner = (slice(top, top + 3), slice(left, left + 3))
        assert np.array_equal(decoded(result.data)[corner], original[corner]) is not changed, mask


def test_metadata_never_comes_out() -> None:
    rgb = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2RGB)
    data = pillow_bytes(Image.fromarray(rgb), "JPEG", exif=exif_with_gps().tobytes(), comment=b"secret comment")
    assert_no_metadata(anonymize(data).data)


def test_sideways_phone_photo_is_turned_upright_before_detection() -> None:
    stored = cv2.rotate(cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2RGB)[:, :400], cv2.ROTATE_90_COUNTERCLOCKWISE)
    data = pillow_bytes(Image.fromarray(stored), "JPEG", quality=95, exif=exif_with_gps(6).tobytes())

    result = anonymize(data)

    assert (result.width, result.height) == (400, 512)
    assert len(result.detections) == 1 and result.detections[0].iou(FACE) > 0.6
    assert Image.open(io.BytesIO(result.data)).size == (400, 512)
    assert_no_metadata(result.data)


def test_alpha_survives_byte_for_byte() -> None:
    alpha = np.tile(np.arange(512, dtype=np.uint16) // 2, (512, 1)).astype(np.uint8)
    original = np.dstack([astronaut_bgr(), alpha])
    options = Options()
    result = anonymize(encoded(original, ".png"), options)

    output = decoded(result.data)
    assert result.detections and output.shape == (512, 512, 4)
    assert np.array_equal(output[:, :, 3], alpha)
    outside = ~painted_area(result, options)
    assert np.array_equal(output[outside], original[outside])
    assert np.abs(the_face(output[:, :, :3]) - the_face(original[:, :, :3])).mean() > 30


def test_grayscale_and_16_bit_photos_keep_their_layout() -> None:
    gray = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    gray_result = anonymize(encoded(gray, ".png"))
    assert gray_result.detections and decoded(gray_result.data).ndim == 2

    deep = astronaut_bgr().astype(np.uint16) * 257
    deep_result = anonymize(encoded(deep, ".png"))
    output = decoded(deep_result.data)
    assert output.dtype == np.uint16 and deep_result.detections
    outside = ~painted_area(deep_result, Options())
    assert np.array_equal(output[outside], deep[outside])


def test_detect_reports_faces_and_size_without_painting() -> None:
    faces, width, height = detect(encoded(astronaut_bgr()[:, :400], ".webp"))
    assert (width, height) == (400, 512)
    assert len(faces) == 1 and faces[0].iou(FACE) > 0.6


def test_bad_input_is_one_clear_error() -> None:
    with pytest.raises(AnonymizerError, match="not an image"):
        anonymize(b"hello, this is not a photo")


def test_unknown_filter_is_refused_even_without_faces() -> None:
    with pytest.raises(ValueError, match="unknown filter"):
        anonymize(encoded(np.full((64, 64, 3), 90, np.uint8), ".png"), Options(filter="sparkles"))


def test_detector_is_created_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    created: list[str] = []
    real_create = pipeline.detectors.create

    def counting_create(spec: str, **settings):
        created.append(spec)
        return real_create(spec, **settings)

    monkeypatch.setattr(pipeline.detectors, "create", counting_create)
    pipeline._detector.cache_clear()
    options = Options(detector="haar")
    anonymizer.warm_up(options)
    anonymize(encoded(astronaut_bgr(), ".jpg"), options)
    detect(encoded(astronaut_bgr(), ".jpg"), options)
    assert created == ["haar"]
    pipeline._detector.cache_clear()


def test_the_filters_defaults_are_what_the_pipeline_paints() -> None:
    """One default for the mask, its margin and its pixel floor: the filters', taken by the options as they are."""
    faces = [FACE, Detection(40, 300, 20, 30, score=1.0, detector="truth")]
    pipeline_mask = anonymizer.face_filter(Options(filter="solid")).mask((512, 512), faces)
    assert np.array_equal(filters.create("solid").mask((512, 512), faces), pipeline_mask)
    assert np.array_equal(filters.mask((512, 512), faces), pipeline_mask)
