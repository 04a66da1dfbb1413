"""HEIC (what an iPhone sends as a file) and AVIF photos: upright, faces covered, no metadata; AVIF comes back as
AVIF and HEIC as JPEG, and the result says so."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pillow_heif  # noqa: F401  (registers the HEIF format with Pillow, as the codec does)
import pytest
from PIL import Image

from anonymizer import anonymize, anonymize_media, probe
from anonymizer.errors import CorruptImageError
from testing.images import ASTRONAUT_FACE, astronaut_bgr
from testing.metadata import SECRETS, stored_sideways


@pytest.mark.parametrize(("stored", "written"), [("HEIF", "JPEG"), ("AVIF", "AVIF")])
def test_phone_photo_comes_back_upright_covered_and_without_metadata(stored: str, written: str) -> None:
    data = stored_sideways(stored)
    assert probe(data).format == stored
    result = anonymize_media(data)
    assert (result.input_format, result.format, result.kind) == (stored, written, "image")
    output = Image.open(io.BytesIO(result.data))
    assert output.format == written and output.size == (512, 512)
    assert not output.getexif() and "xmp" not in output.info
    for secret in SECRETS:
        assert secret not in result.data
    pixels = cv2.cvtColor(np.asarray(output.convert("RGB")), cv2.COLOR_RGB2BGR)
    x, y, w, h = ASTRONAUT_FACE
    face_change = np.abs(pixels[y : y + h, x : x + w].astype(int) - astronaut_bgr()[y : y + h, x : x + w]).mean()
    rest_change = np.abs(pixels[400:].astype(int) - astronaut_bgr()[400:]).mean()
    assert face_change > 30, "the face must be covered, where it is in the upright photo"
    assert rest_change < 8, "the rest is the upright photo (not turned)"


def test_anonymize_reads_heic_too() -> None:
    result = anonymize(stored_sideways("HEIF"))
    assert result.format == "JPEG" and len(result.detections) == 1


@pytest.mark.parametrize("image_format", ["HEIF", "AVIF"])
def test_a_truncated_file_is_damaged(image_format: str) -> None:
    data = stored_sideways(image_format)
    with pytest.raises(CorruptImageError, match="damaged"):
        anonymize(data[: len(data) // 2])
