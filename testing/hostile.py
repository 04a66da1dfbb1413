"""Files that are small on the wire and huge once decoded, made on the fly (never committed): what a hostile sender
uses to make a bot price a picture by its bytes and then spend seconds and gigabytes on it."""

from __future__ import annotations

import struct
import zlib

# PNG colour types by channels: grey, RGB, RGB with alpha.
_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def flat_png(width: int, height: int, channels: int = 1, bit_depth: int = 8) -> bytes:
    """A valid PNG of one flat colour: tens of kilobytes for tens of megapixels (its rows compress to almost
    nothing), written row by row so that making it never holds the decoded picture."""
    row = b"\x00" + b"\x7f" * (width * channels * bit_depth // 8)
    compressor = zlib.compressobj(1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOUR_TYPES[channels], 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
