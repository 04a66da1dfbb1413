"""Bytes to pixels and back: the only place in the project that decodes or encodes an image.

Decoding is defensive because the bytes come from strangers: the byte limit is checked first, then the pixel
count announced by the header (read lazily by Pillow, or by our own parser for WebP, whose Pillow reader
allocates the canvas while opening), and only then does OpenCV decode the pixels. Work that grows with
something other than the pixel count is bounded too (header entries, progressive JPEG scans), and Pillow only
reads the four formats we decode. Every refusal is one ``AnonymizerError`` with a message fit for users.
EXIF orientation is applied here so that detectors see the photo upright, as a viewer would show it.

Encoding keeps the input's format and pixel layout (grey, alpha, 16 bit) and writes no metadata: no EXIF (so no
GPS, time or camera), no XMP, no comments, no text chunks, no thumbnails, no extra MPO pictures. The ICC colour
profile is the one exception, re-embedded as it was for JPEG, PNG and WebP when it fits the output's colour space:
it says how to read the pixel values (dropping a phone's Display P3 profile visibly dulls every colour) and
describes a colour space, not the photo, its place or its author.

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
import re
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image

from anonymizer.errors import (
    CorruptImageError,
    EmptyInputError,
    InputTooLargeError,
    TooManyPixelsError,
    UnsupportedFormatError,
)
from anonymizer.options import MAX_INPUT_BYTES, MAX_INPUT_PIXELS

SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "HEIF", "AVIF")
SUPPORTED_TEXT = "supported: JPEG, PNG, WebP, BMP, HEIC, AVIF"
# Phones write JPEGs with a Multi-Picture index (depth maps, previews); Pillow calls them MPO. The first
# picture is the photo; the others are dropped on output.
_FORMAT_ALIASES = {"MPO": "JPEG"}
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "AVIF": ".avif"}
_ICC_FORMATS = ("JPEG", "PNG", "WEBP", "HEIF", "AVIF")
# Formats Pillow decodes and encodes itself; OpenCV does the others.
_PILLOW_CODEC_FORMATS = ("HEIF", "AVIF")
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
# Encoders write 1 scan (baseline) or about 10 (progressive); libjpeg goes over the whole picture for each
# scan, so a small file of repeated empty scans is a time bomb (1.8 MB of them: 14 s for a 16 MP picture; a
# 20 MB file: minutes). 200 is far above any real encoder's output and costs well under a second at 60 MP.
MAX_JPEG_SCANS = 200
_JPEG_START_OF_SCAN = b"\xff\xda"
# Pillow reads the header in a Python loop: one step per JPEG segment, per fill or stray byte between them,
# per PNG chunk before the pixel data; libwebp's demuxer keeps a record per RIFF chunk (68 MB for an 8 MB file
# of empty ones). Tens of MB of them cost tens of seconds or hundreds of MB, so they are counted first.
# Real files have a few dozen segments or chunks there and no stray bytes.
MAX_HEADER_UNITS = 10_000
MAX_STRAY_HEADER_BYTES = 65_536
_JPEG_FILL_BYTES = re.compile(rb"\xff+")
_JPEG_MARKERS_WITHOUT_LENGTH = frozenset({0x00, 0x01, *range(0xD0, 0xD8)})
_JPEG_HEADER_END = frozenset({0xDA, 0xD9})  # start of scan, end of image
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PIXEL_CHUNKS = frozenset({b"IDAT", b"IEND"})
# Pillow is only asked about the formats we decode: its other readers (dozens, rarely exercised) never see
# a stranger's bytes, and the formats people do send by mistake get a named refusal from their signature.
_PILLOW_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "HEIF", "AVIF")
_NAMED_SIGNATURES = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
HEIF_BRANDS = (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif", b"ftypavis", b"ftypmsf1", b"ftyphevc")
# Only the primary picture is read: thumbnails, depth maps and auxiliary images are never decoded (nor written).
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


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
    header, image_format = _checked_header(data, max_bytes, max_pixels)
    orientation = _orientation(header)
    icc_profile = header.info.get("icc_profile") or None

    if image_format in _PILLOW_CODEC_FORMATS:
        pixels = _pillow_pixels(header)
    else:
        pixels = _decode_pixels(data, expected_size=header.size)
    pixels = np.ascontiguousarray(_apply_orientation(pixels, orientation))
    return DecodedImage(
        pixels=pixels,
        bgr=_bgr_uint8(pixels),
        format=image_format,
        lossless=image_format == "WEBP" and _is_lossless_webp(data),
        icc_profile=icc_profile if image_format in _ICC_FORMATS and _fits(icc_profile, pixels) else None,
    )


def image_header(
    data: bytes, *, max_bytes: int = MAX_INPUT_BYTES, max_pixels: int = MAX_INPUT_PIXELS
) -> tuple[str, int, int]:
    """Format, width and height of a still image as stored, read and checked without decoding its pixels."""
    header, image_format = _checked_header(data, max_bytes, max_pixels)
    return image_format, *header.size


def _checked_header(data: bytes, max_bytes: int, max_pixels: int) -> tuple[Image.Image, str]:
    """Pillow's lazily opened header and the format name, after every check that needs no pixels."""
    if not data:
        raise EmptyInputError("The file is empty.")
    if len(data) > max_bytes:
        raise InputTooLargeError(f"The file is {_megabytes(len(data))}; the limit is {_megabytes(max_bytes)}.")
    webp_size = _webp_canvas_size(data)
    if webp_size is not None:
        _check_pixels(webp_size, max_pixels)
    _check_header_length(data)
    header = _open_header(data, max_pixels)
    _check_pixels(header.size, max_pixels)
    image_format = _FORMAT_ALIASES.get(header.format or "", header.format or "")
    if image_format not in SUPPORTED_FORMATS:
        raise UnsupportedFormatError(f"{image_format} images are not supported ({SUPPORTED_TEXT}).")
    # A HEIF's other top-level pictures (bursts, edits) are dropped like an MPO's: viewers show the primary one.
    if getattr(header, "is_animated", False) and image_format not in ("JPEG", "HEIF"):
        raise UnsupportedFormatError("Animated or multi-page images are not supported; only still photos are.")
    if image_format == "JPEG":
        _check_scans(data)
    return header, image_format


def output_format(input_format: str) -> str:
    """The format an image read as ``input_format`` is written back in."""
    return _OUTPUT_FORMATS.get(input_format, input_format)


def encode_image(
    pixels: np.ndarray, image_format: str, *, lossless: bool = False, icc_profile: bytes | None = None
) -> bytes:
    """Encode pixels (grey, BGR or BGRA; uint8, or uint16 for PNG) with no metadata but the ICC profile."""
    if image_format == "AVIF":
        return _encode_avif(pixels, icc_profile)
    if image_format not in _EXTENSIONS:
        raise ValueError(f"cannot encode {image_format!r}; supported: {', '.join(_EXTENSIONS)}")
    extension = _EXTENSIONS[image_format]
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


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise TooManyPixelsError(
            f"The image is {width} x {height} pixels ({width * height / 1e6:.0f} MP); "
            f"the limit is {max_pixels / 1e6:.0f} MP."
        )


def _check_scans(data: bytes) -> None:
    """Refuse a JPEG with more scans than any encoder writes (a decoding-time bomb), before libjpeg runs them.

    Counting the marker bytes over the whole file never undercounts: entropy-coded data cannot contain them
    (a 0xFF there is always followed by 0x00 or a restart number). Only metadata could add false ones.
    """
    if data.count(_JPEG_START_OF_SCAN) > MAX_JPEG_SCANS:
        raise CorruptImageError(f"The JPEG is malformed: it has more than {MAX_JPEG_SCANS} scans.")


def _check_header_length(data: bytes) -> None:
    """Refuse a JPEG, PNG or WebP whose structure is padded out to keep the header readers busy."""
    if data.startswith(b"\xff\xd8"):
        units, stray = _jpeg_header_units(data)
    elif data.startswith(_PNG_SIGNATURE):
        units, stray = _png_header_chunks(data), 0
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        units, stray = _riff_chunks(data), 0
    else:
        return
    if units > MAX_HEADER_UNITS or stray > MAX_STRAY_HEADER_BYTES:
        raise CorruptImageError("The image is malformed: its header is padded out with empty entries or junk.")


def _jpeg_header_units(data: bytes) -> tuple[int, int]:
    """Segments and stray bytes (fill bytes, junk) before the first scan, counted up to just past the limits."""
    position, segments, stray = 2, 0, 0
    while segments <= MAX_HEADER_UNITS and stray <= MAX_STRAY_HEADER_BYTES:
        marker_start = data.find(b"\xff", position)
        if marker_start < 0:
            break
        fill_end = _JPEG_FILL_BYTES.match(data, marker_start).end()
        stray += (marker_start - position) + (fill_end - marker_start - 1)
        if fill_end >= len(data) or data[fill_end] in _JPEG_HEADER_END:
            break
        segments += 1
        position = fill_end + 1
        if data[fill_end] not in _JPEG_MARKERS_WITHOUT_LENGTH:
            position += int.from_bytes(data[position : position + 2], "big")
    return segments, stray


def _png_header_chunks(data: bytes) -> int:
    """Chunks before the first pixel data chunk, counted up to just past the limit."""
    position, chunks = len(_PNG_SIGNATURE), 0
    while chunks <= MAX_HEADER_UNITS and position + 8 <= len(data):
        if data[position + 4 : position + 8] in _PNG_PIXEL_CHUNKS:
            break
        chunks += 1
        position += 12 + int.from_bytes(data[position : position + 4], "big")
    return chunks


def _riff_chunks(data: bytes) -> int:
    """Chunks in a WebP file, counted up to just past the limit."""
    position, chunks = 12, 0
    while chunks <= MAX_HEADER_UNITS and position + 8 <= len(data):
        size = int.from_bytes(data[position + 4 : position + 8], "little")
        position += 8 + size + (size & 1)
        chunks += 1
    return chunks


def _open_header(data: bytes, max_pixels: int) -> Image.Image:
    """Pillow's lazy open: reads the header (size, format, EXIF, ICC) without decoding pixels.

    Pillow's format readers raise whatever a malformed header makes them raise (OSError, ValueError with
    messages naming Pillow's internals, NotImplementedError from readers of other formats), so every failure
    becomes one plain user-facing error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bomb and corrupt-EXIF warnings: we decide and raise ourselves
            return Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except Image.DecompressionBombError:
        raise TooManyPixelsError(f"The image has too many pixels; the limit is {max_pixels / 1e6:.0f} MP.") from None
    except Exception:  # UnidentifiedImageError, and whatever else a reader raises on a malformed header
        raise _unidentified(data) from None


def _unidentified(data: bytes) -> Exception:
    """Tell a broken photo in a supported format from a file that is not a supported image at all."""
    if data[4:12] in HEIF_BRANDS:
        return CorruptImageError("The HEIC/AVIF image is damaged and cannot be read.")
    for signature, image_format in _NAMED_SIGNATURES.items():
        if data.startswith(signature):
            return UnsupportedFormatError(f"{image_format} images are not supported ({SUPPORTED_TEXT}).")
    signatures = (b"\xff\xd8\xff", _PNG_SIGNATURE, b"BM")
    if data.startswith(signatures) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return CorruptImageError("The image is damaged and cannot be read.")
    return UnsupportedFormatError(f"This file is not an image ({SUPPORTED_TEXT}).")


def _webp_canvas_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP header, or None when the bytes are not WebP (or too short to say).

    Each layout is read as soon as its size field is complete: libwebp allocates the canvas from the header
    alone, so even a file cut right after it must be measured here.
    """
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


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


def _fits(icc_profile: bytes | None, pixels: np.ndarray) -> bool:
    """Whether the profile's colour space is the decoded pixels' one.

    OpenCV hands CMYK JPEGs over as BGR and grey-with-alpha PNGs as BGRA: their CMYK or grey profile would make
    viewers misread the output's colours, so it is dropped.
    """
    if not icc_profile or len(icc_profile) < 20:
        return False
    colour_space = icc_profile[16:20]
    return colour_space == (b"GRAY" if pixels.ndim == 2 else b"RGB ")


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
