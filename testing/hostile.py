"""Hostile files made on the fly (never committed): small on the wire and huge once decoded, what a hostile sender
uses to make a bot price a picture by its bytes and then spend seconds and gigabytes on it; and GIFs and videos whose
headers lie about their size or frame rate."""

from __future__ import annotations

import functools
import io
import struct
import zlib

from PIL import Image

from testing.media import Scene, make_clip

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


_GIF_TRAILER = b";"


@functools.cache
def _flat_gif_frame(side: int) -> bytes:
    """One ``side`` x ``side`` frame of a single colour as a GIF image block (descriptor and LZW data)."""
    image = Image.new("P", (side, side), 0)
    image.putpalette([200, 100, 50] * 256)
    buffer = io.BytesIO()
    image.save(buffer, "GIF")
    data = buffer.getvalue()
    start = 13 + (3 << ((data[10] & 7) + 1))  # past the header and its global palette
    assert data[start : start + 1] == b"," and data.endswith(_GIF_TRAILER)
    return data[start:-1]


def gif_frame_bomb(frames: int = 4, side: int = 6000, offset: int = 0) -> bytes:
    """A GIF whose header and first frame say 1 x 1 pixel, followed by ``frames`` frames of ``side`` x ``side``
    placed ``offset`` pixels right and down (Pillow grows its picture to reach them).

    Each frame of one colour compresses to a few KB: four 6000 x 6000 frames (144 MP) make a file of about 110 KB.
    """
    header = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x87, 0, 0) + bytes([200, 100, 50]) * 256
    delay = b"!\xf9\x04\x00\x0a\x00\x00\x00"  # a graphic control extension: 100 ms
    block = _flat_gif_frame(side)
    placed = block[:1] + struct.pack("<HH", offset, offset) + block[5:]
    frame_blocks = [_flat_gif_frame(1)] + [placed] * frames
    return header + b"".join(delay + block for block in frame_blocks) + _GIF_TRAILER


def face_in_the_middle(frames: int, size: tuple[int, int]) -> Scene:
    """``frames`` frames with the astronaut's face standing in the middle half of them and nothing in the rest."""
    width, height = size
    face = (width // 3, height // 8, height // 2)
    return Scene(size=size, faces=[[face] if frames // 4 <= i < frames - frames // 4 else [] for i in range(frames)])


@functools.cache
def clip_at_rate(rate: int, frames: int = 60, size: tuple[int, int] = (320, 180)) -> bytes:
    """An MP4 of ``face_in_the_middle`` whose header and timestamps both say ``rate`` frames a second."""
    return make_clip(face_in_the_middle(frames, size), container="mp4", audio=None, rate=rate)
