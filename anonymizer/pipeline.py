"""Bytes in, bytes out: decode safely, find faces, paint them, encode without metadata, and time each stage.

Detectors and filters are built once per process for each distinct setting (the DNN weights take a while to
load) and reused; the bot's worker processes call ``warm_up`` so the first photo does not pay for it.
Nothing here logs or stores image data: only counts and timings.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence

import cv2
import numpy as np

import detectors
import filters
from anonymizer.choices import painted, reading_order
from anonymizer.codec import DecodedImage, decode_image, encode_image, output_format
from anonymizer.options import Options, Result
from detectors import Detection, Detector
from filters import Filter

log = logging.getLogger(__name__)

_WARM_UP_IMAGE_SIDE = 64
DEFAULT_OPTIONS = Options()


# Room for every spec of a detector comparison, which runs a dozen of them photo by photo: an evicted detector
# would reload its weights on every photo.
@functools.lru_cache(maxsize=16)
def _detector(spec: str, threshold: float | None) -> Detector:
    return detectors.create(spec, threshold=threshold)


@functools.lru_cache(maxsize=16)
def _filter(name: str, mask: str, margin: float, min_margin: float) -> Filter:
    return filters.create(name, mask=mask, margin=margin, min_margin=min_margin)


def face_filter(options: Options = DEFAULT_OPTIONS) -> Filter:
    """The filter ``options`` paint with (cached per process), so tools that score the mask score what is painted."""
    return _filter(options.filter, options.mask, options.margin, options.min_margin)


def warm_up(options: Options = DEFAULT_OPTIONS, threads: int | None = None) -> None:
    """Load the detector chain and filter for ``options`` now (worker initializers call this).

    ``threads`` caps OpenCV's threads in this process: worker processes that already share the cores between
    them run faster with one thread each than with every worker spreading over all cores.
    """
    if threads is not None:
        cv2.setNumThreads(max(1, threads))
    detector = _detector(options.detector, options.threshold)
    face_filter(options)
    detector.detect(np.zeros((_WARM_UP_IMAGE_SIDE, _WARM_UP_IMAGE_SIDE, 3), np.uint8))


def _decode(data: bytes, options: Options) -> DecodedImage:
    return decode_image(data, max_bytes=options.max_bytes, max_pixels=options.max_pixels)


def find_faces(bgr: np.ndarray, options: Options = DEFAULT_OPTIONS) -> list[Detection]:
    """The faces in one upright BGR picture (a photo or a video frame), with the detector ``options`` name."""
    height, width = bgr.shape[:2]
    found = _detector(options.detector, options.threshold).detect(bgr)
    return [box for box in (d.clipped(width, height) for d in found) if box is not None]


def _find_faces(image: DecodedImage, options: Options) -> list[Detection]:
    return reading_order(find_faces(image.bgr, options))


def detect(data: bytes, options: Options = DEFAULT_OPTIONS) -> tuple[list[Detection], int, int]:
    """The faces in an image (upright, as a viewer shows it), in reading order, and that image's width and height."""
    image = _decode(data, options)
    return _find_faces(image, options), image.width, image.height


def anonymize(data: bytes, options: Options = DEFAULT_OPTIONS, *, faces: Sequence[Detection] | None = None) -> Result:
    """The same photo with every face found painted over, in the same format and size, with no metadata.

    ``options.keep`` and ``options.add`` are the user's choice (``anonymizer.choices``). ``faces`` are the photo's
    faces as an earlier run of the same photo gave them (its ``Result.detections``, in that order): then no detector
    runs, so a choice made on those faces is painted on exactly those, numbered as the user saw them, and costs no
    second detection.

    Raises ``anonymizer.errors.AnonymizerError`` subclasses for input it refuses (``ChoiceError`` for a choice that
    does not fit the photo), ``ValueError`` for unknown detector or filter names, ``detectors.ModelMissingError``
    when no detector of the chain can load.
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()

    image = _decode(data, options)
    timings["decode"] = time.perf_counter() - start

    mark = time.perf_counter()
    found = _find_faces(image, options) if faces is None else list(faces)
    timings["detect"] = time.perf_counter() - mark

    mark = time.perf_counter()
    painter = face_filter(options)
    covered = painted(found, options, image.width, image.height)
    pixels = image.pixels
    if covered or (options.outline and found):
        bgr = painter.apply(image.bgr, covered) if covered else image.bgr
        pixels = image.with_painted(filters.numbered_outlines(bgr, found) if options.outline else bgr)
    timings["filter"] = time.perf_counter() - mark

    mark = time.perf_counter()
    encoded_format = output_format(image.format)
    output = encode_image(pixels, encoded_format, lossless=image.lossless, icc_profile=image.icc_profile)
    timings["encode"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start

    log.debug(
        "anonymized %s %dx%d: %d face(s), %d kept, %d region(s) added, %s",
        image.format,
        image.width,
        image.height,
        len(found),
        len(options.keep),
        len(options.add),
        ", ".join(f"{stage} {seconds * 1000:.0f} ms" for stage, seconds in timings.items()),
    )
    return Result(
        data=output,
        format=encoded_format,
        input_format=image.format,
        width=image.width,
        height=image.height,
        detections=found,
        kept=options.keep,
        timings=timings,
    )
