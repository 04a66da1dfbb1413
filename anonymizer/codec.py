"""Bytes to pixels and back: the only place in the project that decodes or encodes an image.

The bytes come from strangers: ``anonymizer.guards`` checks everything that can be checked without decoding
(sizes, pixel counts, header padding, scan bombs) before OpenCV or Pillow decodes a pixel here; every refusal is
one ``AnonymizerError`` with a message fit for users. EXIF orientation is applied here so that detectors see the
photo upright, as a viewer would show it.

Encoding keeps the input's format and pixel layout (grey, alpha, 16 bit) and writes no metadata: no EXIF (so no
GPS, time or camera), no XMP, no comments, no text chunks, no thumbnails, no extra MPO pictures. The colour
profile is the one exception, and only its colour data: ``anonymizer.colour`` writes a fresh profile from the
input's numbers (or turns the pixels to sRGB and writes none), so no text of the input's profile comes out.

HEIC/HEIF (what an iPhone sends as a file) and AVIF are decoded by Pillow, with pillow-heif's libheif for HEIF:
OpenCV reads neither. libheif turns the pixels as the file's transformations say; AVIF's turn and mirror reach
us as an EXIF orientation, applied like a JPEG's. AVIF is written back as AVIF; HEIF comes back as JPEG, because
the only HEIF encoder at hand (x265) takes seconds per megapixel, far over a photo's time budget, and every
viewer shows a JPEG (``output_format`` says which format an input comes back in).

Animated images (APNG, animated WebP and AVIF) are refused rather than reduced to their first frame: a still made
from an animation would silently lose the rest; GIFs, animated or not, go through ``anonymizer.animation``,
frame by frame. TIFF is refused because OpenCV applies its orientation tag in some decoding paths and not in
others.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from anonymizer import colour
from anonymizer.errors import (
    CorruptImageError,
    UnsupportedFormatError,
)
from anonymizer.formats import suffix_of
from anonymizer.guards import checked_header
from anonymizer.options import MAX_INPUT_BYTES, MAX_INPUT_PIXELS

_ICC_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF")
# Formats Pillow decodes and encodes itself; OpenCV does the others.
_PILLOW_CODEC_FORMATS = ("HEIF", "AVIF")
_OPENCV_ENCODED = ("JPEG", "PNG", "WEBP", "BMP")
# The format each input comes back in when it is not its own (see the module docstring).
_OUTPUT_FORMATS = {"HEIF": "JPEG"}
JPEG_QUALITY = 95
WEBP_LOSSY_QUALITY = 90
AVIF_QUALITY = 85
# libavif's aom encoder at its default speed (6) takes several seconds for a phone photo; 8 a fraction of that
# for a file a few per cent larger.
AVIF_SPEED = 8
_WEBP_LOSSLESS_QUALITY = 101  # OpenCV switches libwebp to lossless above 100
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True, slots=True, eq=False)
class DecodedImage:
    """A decoded photo, upright.

    ``pixels`` keeps the file's own layout (H x W grey, H x W x 3 BGR or H x W x 4 BGRA; uint8 or uint16) so the
    output can keep it; ``bgr`` is the same picture as H x W x 3 BGR uint8, what detectors and filters take
    (the very same array when the file already is 8-bit colour without alpha).
    """

    pixels: np.ndarray
    bgr: np.ndarray
    format: str
    lossless: bool = False
    icc_profile: bytes | None = None

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def with_painted(self, painted_bgr: np.ndarray) -> np.ndarray:
        """The native pixels with the painted BGR copied in wherever painting changed something.

        Pixels the filter did not touch stay exactly the file's (including alpha and 16-bit precision).
        """
        if painted_bgr.shape != self.bgr.shape or painted_bgr.dtype != np.uint8:
            raise ValueError(f"painted image {painted_bgr.shape} {painted_bgr.dtype} does not match {self.bgr.shape}")
        if self.pixels is self.bgr:
            return painted_bgr
        changed = np.any(painted_bgr != self.bgr, axis=2)
        native = _to_native_layout(painted_bgr, self.pixels)
        if self.pixels.ndim == 3:
            changed = changed[:, :, None]
        return np.where(changed, native, self.pixels)


def decode_image(data: bytes, *, max_bytes: int = MAX_INPUT_BYTES, max_pixels: int = MAX_INPUT_PIXELS) -> DecodedImage:
    """Decode untrusted image bytes, refusing anything too big, unsupported or broken with a clear error."""
    header, image_format = checked_header(data, max_bytes, max_pixels)
    orientation = _orientation(header)
    icc_profile = header.info.get("icc_profile") or None

    if image_format in _PILLOW_CODEC_FORMATS:
        pixels = _pillow_pixels(header)
    else:
        pixels = _decode_pixels(data, expected_size=header.size)
    pixels = np.ascontiguousarray(_apply_orientation(pixels, orientation))
    pixels, icc_profile = colour.cleaned(icc_profile if image_format in _ICC_FORMATS else None, pixels)
    return DecodedImage(
        pixels=pixels,
        bgr=_bgr_uint8(pixels),
        format=image_format,
        lossless=image_format == "WEBP" and _is_lossless_webp(data),
        icc_profile=icc_profile,
    )


def image_header(
    data: bytes, *, max_bytes: int = MAX_INPUT_BYTES, max_pixels: int = MAX_INPUT_PIXELS
) -> tuple[str, int, int]:
    """Format, width and height of a still image as stored, read and checked without decoding its pixels."""
    header, image_format = checked_header(data, max_bytes, max_pixels)
    return image_format, *header.size


def output_format(input_format: str) -> str:
    """The format an image read as ``input_format`` is written back in."""
    return _OUTPUT_FORMATS.get(input_format, input_format)


def encode_image(
    pixels: np.ndarray, image_format: str, *, lossless: bool = False, icc_profile: bytes | None = None
) -> bytes:
    """Encode pixels (grey, BGR or BGRA; uint8, or uint16 for PNG) with no metadata but the ICC profile."""
    if image_format == "AVIF":
        return _encode_avif(pixels, icc_profile)
    if image_format not in _OPENCV_ENCODED:
        raise ValueError(f"cannot encode {image_format!r}; supported: {', '.join((*_OPENCV_ENCODED, 'AVIF'))}")
    extension = suffix_of(image_format)
    params: list[int] = []
    if image_format == "JPEG":
        pixels = _drop_alpha(_to_uint8(pixels))
        params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    elif image_format == "WEBP":
        pixels = _to_uint8(pixels)
        params = [cv2.IMWRITE_WEBP_QUALITY, _WEBP_LOSSLESS_QUALITY if lossless else WEBP_LOSSY_QUALITY]
    elif image_format == "BMP":
        pixels = _to_uint8(pixels)
    if icc_profile and image_format in _ICC_FORMATS:
        icc = np.frombuffer(icc_profile, np.uint8)
        ok, buffer = cv2.imencodeWithMetadata(extension, pixels, [cv2.IMAGE_METADATA_ICCP], [icc], params)
    else:
        ok, buffer = cv2.imencode(extension, pixels, params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {pixels.shape} {pixels.dtype} image as {image_format}")
    return buffer.tobytes()


def _encode_avif(pixels: np.ndarray, icc_profile: bytes | None) -> bytes:
    """AVIF through Pillow (libavif), from a fresh image that carries no EXIF or XMP to write."""
    image = _to_uint8(pixels)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    buffer = io.BytesIO()
    params = {"icc_profile": icc_profile} if icc_profile else {}
    Image.fromarray(rgb).save(buffer, "AVIF", quality=AVIF_QUALITY, speed=AVIF_SPEED, **params)
    return buffer.getvalue()


def _is_lossless_webp(data: bytes) -> bool:
    """A WebP whose picture is VP8L (lossless) rather than VP8 (lossy) is re-encoded lossless."""
    return b"VP8L" in data[12:4096] and b"VP8 " not in data[12:4096]


def _orientation(header: Image.Image) -> int:
    """The EXIF Orientation tag (1..8), 1 when absent or unreadable.

    Read from the header's EXIF block, not via ``getexif()`` on PNG, which would decode the whole image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on corrupt EXIF; we fall back to upright
            raw = header.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = int(exif.get(_EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block must not refuse an otherwise good photo
        return 1
    return value if 1 <= value <= 8 else 1


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Turn the stored pixels the way the EXIF Orientation tag says a viewer shows them."""
    transposed = pixels.swapaxes(0, 1)
    return {
        1: pixels,
        2: pixels[:, ::-1],
        3: pixels[::-1, ::-1],
        4: pixels[::-1],
        5: transposed,
        6: transposed[:, ::-1],
        7: transposed[::-1, ::-1],
        8: transposed[::-1],
    }[orientation]


def _pillow_pixels(header: Image.Image) -> np.ndarray:
    """A HEIF or AVIF picture as BGR or BGRA uint8 (8 bits a sample: libheif is asked for that)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            has_alpha = "A" in header.getbands() or "transparency" in header.info
            image = header.convert("RGBA" if has_alpha else "RGB")
    except Exception:  # whatever libheif or libavif report on broken pixel data
        raise CorruptImageError("The image is damaged or truncated and cannot be decoded.") from None
    if image.size != header.size:
        raise CorruptImageError("The image is damaged: its header and its pixels disagree on its size.")
    rgb = np.asarray(image)
    return cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if has_alpha else cv2.COLOR_RGB2BGR)


def _decode_pixels(data: bytes, expected_size: tuple[int, int]) -> np.ndarray:
    try:
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        pixels = None
    if pixels is None:
        raise CorruptImageError("The image is damaged or truncated and cannot be decoded.")
    if (pixels.shape[1], pixels.shape[0]) != expected_size:
        raise CorruptImageError("The image is damaged: its header and its pixels disagree on its size.")
    if pixels.dtype not in (np.uint8, np.uint16):
        raise UnsupportedFormatError(f"{pixels.dtype} samples are not supported; only 8 and 16-bit images are.")
    return pixels


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    return (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels


def _drop_alpha(pixels: np.ndarray) -> np.ndarray:
    return pixels[:, :, :3] if pixels.ndim == 3 and pixels.shape[2] == 4 else pixels


def _bgr_uint8(pixels: np.ndarray) -> np.ndarray:
    """The detector's view: 3-channel BGR uint8.

    Alpha is ignored rather than composited: the colour values under transparent pixels are still in the file,
    so a face hidden there must be found and covered too.
    """
    image = _to_uint8(pixels)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return image


def _to_native_layout(bgr: np.ndarray, like: np.ndarray) -> np.ndarray:
    """BGR uint8 converted to the channels and depth of ``like`` (alpha taken from ``like``)."""
    if like.ndim == 2:
        converted = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    elif like.shape[2] == 4:
        converted = np.dstack([bgr, _to_uint8(like[:, :, 3])])
    else:
        converted = bgr
    if like.dtype == np.uint16:
        converted = converted.astype(np.uint16) * 257
        if like.ndim == 3 and like.shape[2] == 4:
            converted[:, :, 3] = like[:, :, 3]
    return converted
