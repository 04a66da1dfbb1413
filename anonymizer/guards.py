"""The checks that make decoding a stranger's bytes safe, all done before a single pixel is decoded.

The byte limit is checked first, then the pixel count announced by the header (read lazily by Pillow, or by our own
parser for WebP, whose Pillow reader allocates the canvas while opening). Work that grows with something other than
the pixel count is bounded too: header entries and the bytes between them, progressive JPEG scans. Pillow is only
asked about the formats the codec decodes. Every refusal is one ``AnonymizerError`` with a message fit for users.
``anonymizer.codec`` decodes what passes.
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
import warnings
from collections.abc import Iterator

import pillow_heif
from PIL import Image

from anonymizer.errors import (
    CorruptImageError,
    EmptyInputError,
    TooManyPixelsError,
    UnsupportedFormatError,
    too_large,
    too_many_pixels,
)
from anonymizer.formats import GIF_SIGNATURES, STILL_FORMATS, SUPPORTED_TEXT, is_heif

# Phones write JPEGs with a Multi-Picture index (depth maps, previews); Pillow calls them MPO. The first
# picture is the photo; the others are dropped on output.
_FORMAT_ALIASES = {"MPO": "JPEG"}
# Encoders write 1 scan (baseline) or about 10 (progressive); libjpeg goes over the whole picture for each
# scan, so a small file of repeated empty scans is a time bomb that costs seconds to minutes per request.
# The limit is far above any real encoder's output and still cheap to decode at the largest picture allowed.
MAX_JPEG_SCANS = 200
_JPEG_START_OF_SCAN = b"\xff\xda"
# Pillow reads the header in a Python loop: one step per JPEG segment, per fill or stray byte between them,
# per PNG chunk before the pixel data; libwebp's demuxer keeps a record per RIFF chunk, several times the chunk's
# own size. A file padded out with them costs seconds or hundreds of MB, so they are counted first. Real files have
# a few dozen segments or chunks there and no stray bytes.
MAX_HEADER_UNITS = 10_000
MAX_STRAY_HEADER_BYTES = 65_536
_JPEG_FILL_BYTES = re.compile(rb"\xff+")
_JPEG_MARKERS_WITHOUT_LENGTH = frozenset({0x00, 0x01, *range(0xD0, 0xD8)})
_JPEG_HEADER_END = frozenset({0xDA, 0xD9})  # start of scan, end of image
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_PIXEL_CHUNKS = frozenset({b"IDAT", b"IEND"})
# Pillow is only asked about the formats we decode (STILL_FORMATS): its other readers (dozens, rarely exercised)
# never see a stranger's bytes, and the formats people do send by mistake get a named refusal from their signature.
_NAMED_SIGNATURES = {**dict.fromkeys(GIF_SIGNATURES, "GIF"), b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}
# Only the primary picture is read: thumbnails, depth maps and auxiliary images are never decoded (nor written).
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


def checked_header(data: bytes, max_bytes: int, max_pixels: int) -> tuple[Image.Image, str]:
    """Pillow's lazily opened header and the format name, after every check that needs no pixels."""
    if not data:
        raise EmptyInputError("The file is empty.")
    if len(data) > max_bytes:
        raise too_large("file", len(data), max_bytes)
    webp_size = _webp_canvas_size(data)
    if webp_size is not None:
        _check_pixels(webp_size, max_pixels)
    _check_header_length(data)
    header = _open_header(data, max_pixels)
    _check_pixels(header.size, max_pixels)
    image_format = _FORMAT_ALIASES.get(header.format or "", header.format or "")
    if image_format not in STILL_FORMATS:
        raise UnsupportedFormatError(f"{image_format} images are not supported ({SUPPORTED_TEXT}).")
    # A HEIF's other top-level pictures (bursts, edits) are dropped like an MPO's: viewers show the primary one.
    if getattr(header, "is_animated", False) and image_format not in ("JPEG", "HEIF"):
        raise UnsupportedFormatError("Animated or multi-page images are not supported; only still photos are.")
    if image_format == "JPEG":
        _check_scans(data)
    return header, image_format


@contextlib.contextmanager
def pillow_pixel_limit(max_pixels: int) -> Iterator[None]:
    """Pillow's own decompression-bomb limit set to ours while it reads a stranger's bytes, and made an error.

    Our checks run first; this one also catches what Pillow finds only as it goes (a GIF frame larger than its
    screen grows the picture). Its default (89 MP, an error only past twice that) is never the one in force.
    """
    default = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # corrupt-EXIF and other warnings: we decide and raise ourselves
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = default


PILLOW_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise too_many_pixels("image", width, height, max_pixels)


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
        fill = _JPEG_FILL_BYTES.match(data, marker_start)
        assert fill is not None  # data[marker_start] is 0xFF
        fill_end = fill.end()
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
        with pillow_pixel_limit(max_pixels):
            return Image.open(io.BytesIO(data), formats=STILL_FORMATS)
    except PILLOW_BOMB_ERRORS:
        raise TooManyPixelsError(f"The image has too many pixels; the limit is {max_pixels / 1e6:.3g} MP.") from None
    except Exception:  # UnidentifiedImageError, and whatever else a reader raises on a malformed header
        raise _unidentified(data) from None


def _unidentified(data: bytes) -> Exception:
    """Tell a broken photo in a supported format from a file that is not a supported image at all."""
    if is_heif(data):
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
