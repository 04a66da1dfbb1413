"""Hostile and odd bytes through the whole anonymizing path: every input ends in a result or one clear refusal.

Strangers send broken, truncated, disguised and malicious files. Each must end either in a valid ``Result`` (the
output decodes, with the size of the upright input and no metadata) or in one ``AnonymizerError`` subclass whose
message can be shown as it is; never in another exception, a crash of the process, a hang or a memory blow-up.

The fuzz tests mutate real files made from the astronaut photo (JPEG baseline/progressive/grey/CMYK/multi-picture/
EXIF-rotated, PNG RGB/grey/16-bit/palette with transparency/RGBA, WebP lossy/lossless, BMP) with hypothesis,
derandomized so CI sees the same examples every run (``--hypothesis-show-statistics`` prints the outcomes).
Fixed cases cover disguised non-images, animations, malformed EXIF, decompression bombs (pixels, progressive
scans, header padding). The last tests rerun the corpus in fresh processes to bound crashes, hangs and memory.
"""

from __future__ import annotations

import functools
import io
import random
import re
import struct
import warnings
import zipfile
import zlib
from datetime import timedelta

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

import anonymizer
from anonymizer import codec, guards
from anonymizer.errors import (
    AnonymizerError,
    CorruptImageError,
    EmptyInputError,
    TooManyPixelsError,
    UnsupportedFormatError,
)
from anonymizer.options import Options
from testing.images import astronaut_bgr
from testing.isolation import run_isolated, user_facing

# Haar needs no model files and is the fastest detector; the small pixel limit keeps every accepted mutation
# cheap (a mutated header can announce a far larger picture than the seed).
FAST = Options(detector="haar", max_pixels=2_000_000)
SEED_SIDE = 128
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CHILD_TIMEOUT_S = 60
# Peak-RSS growth allowed while a fresh process anonymizes tiny hostile files, after imports and detector loading.
# A 50000 x 50000 bomb decoded would need 7.5 GB, a picture at the default 60 MP limit 180 MB per copy; the inputs
# themselves are a few KB, so 64 MB leaves room for allocator noise while catching any real decode of a bomb.
MAX_RSS_GROWTH_MB = 64
MAX_RSS_MB = 600  # the whole worker: Python, numpy, OpenCV, Pillow and the Haar cascades are ~150 MB


# --- seed files ------------------------------------------------------------------------------------------------


def astronaut_rgb(width: int = SEED_SIDE, height: int = SEED_SIDE) -> np.ndarray:
    small = cv2.resize(astronaut_bgr(), (width, height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def pillow_bytes(image: Image.Image, image_format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def oriented_exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


@functools.cache
def seed_files() -> dict[str, tuple[bytes, tuple[int, int]]]:
    """Real files in every supported layout, each with the size a viewer shows (width, height)."""
    photo = Image.fromarray(astronaut_rgb())
    portrait = Image.fromarray(astronaut_rgb(SEED_SIDE, SEED_SIDE * 3 // 4))
    deep = np.asarray(photo.convert("L")).astype(np.uint16) * 257
    square = (SEED_SIDE, SEED_SIDE)
    return {
        "jpeg": (pillow_bytes(photo, "JPEG", quality=85), square),
        "jpeg-progressive": (pillow_bytes(photo, "JPEG", progressive=True), square),
        "jpeg-grey": (pillow_bytes(photo.convert("L"), "JPEG"), square),
        "jpeg-cmyk": (pillow_bytes(photo.convert("CMYK"), "JPEG"), square),
        "jpeg-multi-picture": (pillow_bytes(photo, "MPO", save_all=True, append_images=[photo.transpose(0)]), square),
        "jpeg-exif-rotated": (pillow_bytes(portrait, "JPEG", exif=oriented_exif(6)), (SEED_SIDE * 3 // 4, SEED_SIDE)),
        "png": (pillow_bytes(photo, "PNG"), square),
        "png-grey": (pillow_bytes(photo.convert("L"), "PNG"), square),
        "png-16-bit": (pillow_bytes(Image.fromarray(deep), "PNG"), square),
        "png-palette-transparent": (pillow_bytes(photo.convert("P"), "PNG", transparency=0), square),
        "png-rgba": (pillow_bytes(photo.convert("RGBA"), "PNG"), square),
        "webp-lossy": (pillow_bytes(photo, "WEBP", quality=80), square),
        "webp-lossless": (pillow_bytes(photo, "WEBP", lossless=True), square),
        "bmp": (pillow_bytes(photo, "BMP"), square),
    }


SEED_NAMES = sorted(seed_files())
_ENTROPY_CODED_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def chunk_spans(data: bytes) -> list[tuple[int, int]]:
    """The (start, end) of each structural unit: PNG chunks, JPEG segments and scans, RIFF chunks, BMP headers."""
    spans: list[tuple[int, int]] = []
    if data.startswith(b"\x89PNG"):
        position = 8
        while position + 12 <= len(data):
            end = position + 12 + struct.unpack(">I", data[position : position + 4])[0]
            spans.append((position, min(end, len(data))))
            position = end
    elif data.startswith(b"\xff\xd8"):
        position = 2
        while position + 4 <= len(data) and data[position] == 0xFF and data[position + 1] != 0xD9:
            end = position + 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
            if data[position + 1] == 0xDA:
                match = _ENTROPY_CODED_END.search(data, end)
                end = match.start() if match else len(data)
            spans.append((position, end))
            position = end
    elif data.startswith(b"RIFF"):
        position = 12
        while position + 8 <= len(data):
            size = struct.unpack("<I", data[position + 4 : position + 8])[0]
            end = position + 8 + size + (size & 1)
            spans.append((position, min(end, len(data))))
            position = end
    elif data.startswith(b"BM"):
        pixels_start = struct.unpack("<I", data[10:14])[0]
        spans = [(0, 14), (14, pixels_start), (pixels_start, len(data))]
    return spans


# --- the outcome every input must have -----------------------------------------------------------------------------


def assert_user_facing(message: str) -> None:
    assert user_facing(message), message


def outcome(data: bytes, options: Options = FAST, upright_size: tuple[int, int] | None = None) -> str:
    """Anonymize ``data``: the refusal's class name, or "ok" after checking the output is a sound image."""
    try:
        result = anonymizer.anonymize(data, options)
    except AnonymizerError as error:
        assert_user_facing(str(error))
        return type(error).__name__
    output = Image.open(io.BytesIO(result.data))
    output.load()
    assert (output.width, output.height) == (result.width, result.height)
    assert output.format == result.format
    assert "exif" not in output.info and not output.getexif()
    if upright_size is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about the damage the mutation did
            stored = Image.open(io.BytesIO(data)).size  # the header's size, turned or not by the EXIF orientation
        assert (result.width, result.height) in (stored, stored[::-1])
    else:
        assert (result.width, result.height) == upright_size
    return "ok"


def fuzz(data: bytes) -> str:
    """``outcome`` for a fuzzed input, counted in hypothesis's statistics."""
    result = outcome(data)
    event(result)
    return result


@pytest.mark.parametrize("name", SEED_NAMES)
def test_every_seed_is_anonymized_at_its_upright_size(name: str) -> None:
    data, upright_size = seed_files()[name]
    assert outcome(data, upright_size=upright_size) == "ok"


# --- fuzzing -------------------------------------------------------------------------------------------------------

seed_names = st.sampled_from(SEED_NAMES)
# Positions come from a hypothesis-seeded Random: spread evenly over the file, where hypothesis's own integers
# would cluster at the first bytes (and mostly just break the signature).
positions = st.randoms(use_true_random=False)
HEADER_BYTES = 64


@settings(FUZZ, max_examples=40)
@given(name=seed_names, rng=positions)
def test_truncated_files(name: str, rng: random.Random) -> None:
    data = seed_files()[name][0]
    fuzz(data[: rng.randrange(1, len(data))])


@settings(FUZZ, max_examples=40)
@given(name=seed_names, rng=positions, count=st.integers(1, 6))
def test_overwritten_header_bytes(name: str, rng: random.Random, count: int) -> None:
    data = bytearray(seed_files()[name][0])
    for _ in range(count):
        data[rng.randrange(2, HEADER_BYTES)] = rng.choice([0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)])
    fuzz(bytes(data))


@settings(FUZZ, max_examples=40)
@given(name=seed_names, rng=positions, count=st.integers(1, 4))
def test_overwritten_data_bytes(name: str, rng: random.Random, count: int) -> None:
    data = bytearray(seed_files()[name][0])
    for _ in range(count):
        position = rng.randrange(HEADER_BYTES, len(data))
        data[position : position + rng.randint(1, 8)] = rng.randbytes(rng.randint(1, 8))
    fuzz(bytes(data))


@settings(FUZZ, max_examples=30)
@given(name=seed_names, rng=positions, count=st.integers(1, 16))
def test_flipped_bits(name: str, rng: random.Random, count: int) -> None:
    data = bytearray(seed_files()[name][0])
    for _ in range(count):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    fuzz(bytes(data))


@settings(FUZZ, max_examples=30)
@given(name=seed_names, rng=positions, copies=st.integers(1, 3))
def test_duplicated_chunks(name: str, rng: random.Random, copies: int) -> None:
    data = seed_files()[name][0]
    start, end = rng.choice(chunk_spans(data))
    fuzz(data[:end] + data[start:end] * copies + data[end:])


@settings(FUZZ, max_examples=30)
@given(name=seed_names, rng=positions)
def test_removed_chunks(name: str, rng: random.Random) -> None:
    data = seed_files()[name][0]
    start, end = rng.choice(chunk_spans(data))
    fuzz(data[:start] + data[end:])


MAGIC = [
    b"",
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    b"\x89PNG\r\n\x1a\n",
    b"RIFF\x00\x10\x00\x00WEBP",
    b"BM",
]


@settings(FUZZ, max_examples=40)
@given(magic=st.sampled_from(MAGIC), junk=st.binary(max_size=2000))
def test_random_junk_with_and_without_a_signature(magic: bytes, junk: bytes) -> None:
    data = magic + junk
    result = fuzz(data)
    if not data:
        assert result == "EmptyInputError"


# --- fixed hostile cases -------------------------------------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_chunks_after_the_header(chunks: bytes) -> bytes:
    data = seed_files()["png"][0]
    header_end = 8 + 25  # signature, IHDR
    return data[:header_end] + chunks + data[header_end:]


@functools.cache
def zlib_bomb() -> bytes:
    """64 KB that inflate to 64 MB."""
    return zlib.compress(bytes(64 << 20), 9)


def png_bomb(width: int, height: int) -> bytes:
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    rows = zlib.compress(b"\x00" * 100_000, 9)  # a real stream of empty rows, so a reader would start decoding
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def jpeg_bomb(width: int, height: int) -> bytes:
    data = bytearray(pillow_bytes(Image.fromarray(astronaut_rgb(64, 64)), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def riff_webp(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WEBP" + b"".join(
        kind + struct.pack("<I", len(payload)) + payload + bytes(len(payload) & 1) for kind, payload in chunks
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_vp8x_bomb(width: int, height: int) -> bytes:
    canvas = bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    still = pillow_bytes(Image.fromarray(astronaut_rgb(64, 64)), "WEBP", quality=80)
    return riff_webp((b"VP8X", canvas)) + still[12:]


def webp_vp8_bomb(width: int, height: int) -> bytes:
    """A lossy WebP whose key frame header announces the size (14 bits each, so at most 16383 x 16383)."""
    data = bytearray(pillow_bytes(Image.fromarray(astronaut_rgb(64, 64)), "WEBP", quality=80))
    assert data[12:16] == b"VP8 " and data[23:26] == b"\x9d\x01\x2a"
    data[26:30] = struct.pack("<HH", width, height)
    return bytes(data)


def webp_vp8l_bomb(width: int, height: int, tail: bytes = bytes(8)) -> bytes:
    """A lossless WebP header (signature, 14-bit sizes) with almost no picture data after it."""
    header = b"\x2f" + ((width - 1) | ((height - 1) << 14)).to_bytes(4, "little")
    return riff_webp((b"VP8L", header + tail))


def progressive_scan_bomb(repeats: int = 2000) -> bytes:
    """A progressive JPEG whose smallest scan is repeated: each scan costs libjpeg a pass over the whole picture."""
    data = pillow_bytes(Image.fromarray(astronaut_rgb()), "JPEG", progressive=True)
    scans = [(start, end) for start, end in chunk_spans(data) if data[start + 1] == 0xDA]
    start, end = min(scans, key=lambda span: span[1] - span[0])
    return data[:-2] + data[start:end] * repeats + data[-2:]


BOMBS = {
    "png-50000x50000": lambda: png_bomb(50_000, 50_000),
    "jpeg-50000x50000": lambda: jpeg_bomb(50_000, 50_000),
    "webp-vp8x-50000x50000": lambda: webp_vp8x_bomb(50_000, 50_000),
    "webp-vp8-16383x16383": lambda: webp_vp8_bomb(16_383, 16_383),
    "webp-vp8l-16383x16383": lambda: webp_vp8l_bomb(16_383, 16_383),
    "webp-vp8l-9000x9000-header-only": lambda: webp_vp8l_bomb(9_000, 9_000, tail=b""),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_decompression_bombs_are_refused_from_the_header(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = BOMBS[name]()
    assert len(bomb) < 10_000

    def must_not_decode(*_args, **_kwargs):
        raise AssertionError("the pixels were decoded before the size was checked")

    monkeypatch.setattr(codec.cv2, "imdecode", must_not_decode)
    if "webp" in name:  # Pillow's WebP reader allocates the whole canvas while opening the file
        monkeypatch.setattr(guards.Image, "open", must_not_decode)
    with pytest.raises(TooManyPixelsError, match=r"limit is 60 MP\.$"):
        anonymizer.anonymize(bomb, Options(detector="haar"))


def test_progressive_jpeg_with_thousands_of_scans_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = progressive_scan_bomb()
    monkeypatch.setattr(codec.cv2, "imdecode", lambda *_: pytest.fail("decoded the scans"))
    with pytest.raises(CorruptImageError, match="more than 200 scans"):
        anonymizer.anonymize(bomb, FAST)


def test_real_progressive_jpeg_is_far_below_the_scan_limit() -> None:
    data = seed_files()["jpeg-progressive"][0]
    assert 1 < data.count(b"\xff\xda") < guards.MAX_JPEG_SCANS // 10


def jpeg_with_segments_before_the_frame(segment: bytes, count: int) -> bytes:
    data = seed_files()["jpeg"][0]
    return data[:2] + segment * count + data[2:]


def webp_with_empty_chunks(count: int) -> bytes:
    """The lossy seed as an extended WebP with ``count`` empty unknown chunks before its picture."""
    still = seed_files()["webp-lossy"][0]
    assert still[12:16] == b"VP8 "
    picture = still[20 : 20 + int.from_bytes(still[16:20], "little")]
    canvas = bytes(4) + (SEED_SIDE - 1).to_bytes(3, "little") + (SEED_SIDE - 1).to_bytes(3, "little")
    return riff_webp((b"VP8X", canvas), *[(b"ZZZZ", b"")] * count, (b"VP8 ", picture))


# Pillow parses JPEG and PNG headers one entry (or one stray byte) per step of a Python loop: 1 MB of them took
# it about 0.4 s, the bot's 20 MB download limit 8 s, for one request. libwebp keeps a record per chunk.
HEADER_FLOODS = {
    "jpeg-250000-empty-segments": lambda: jpeg_with_segments_before_the_frame(b"\xff\xe5\x00\x02", 250_000),
    "jpeg-1-MB-of-fill-bytes": lambda: jpeg_with_segments_before_the_frame(b"\xff", 1_000_000),
    "jpeg-1-MB-of-junk-between-segments": lambda: jpeg_with_segments_before_the_frame(b"\x00", 1_000_000),
    "webp-100000-empty-chunks": lambda: webp_with_empty_chunks(100_000),
    "png-100000-empty-chunks": lambda: png_with_chunks_after_the_header(png_chunk(b"prIv", b"") * 100_000),
}


@pytest.mark.parametrize("name", sorted(HEADER_FLOODS))
def test_header_floods_are_refused_before_pillow_parses_them(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    flood = HEADER_FLOODS[name]()
    monkeypatch.setattr(guards.Image, "open", lambda *_args, **_kwargs: pytest.fail("Pillow parsed the flood"))
    with pytest.raises(CorruptImageError, match="header is padded"):
        anonymizer.anonymize(flood, FAST)


def test_a_long_but_real_header_is_still_read() -> None:
    """Hundreds of metadata segments or chunks are odd but legitimate: the flood limits leave them alone."""
    upright = (SEED_SIDE, SEED_SIDE)
    assert outcome(jpeg_with_segments_before_the_frame(b"\xff\xe5\x00\x08pad123", 500), upright_size=upright) == "ok"
    assert outcome(png_with_chunks_after_the_header(png_chunk(b"prIv", b"") * 500), upright_size=upright) == "ok"
    assert outcome(webp_with_empty_chunks(500), upright_size=upright) == "ok"


def tiff_exif(entries: list[tuple[int, int, int, int]], next_ifd: int = 0, first_ifd: int = 8) -> bytes:
    """A little-endian TIFF/EXIF block with one IFD of (tag, type, count, value-or-offset) entries."""
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *entry) for entry in entries)
    return b"II*\x00" + struct.pack("<I", first_ifd) + ifd + struct.pack("<I", next_ifd)


SHORT, LONG, ASCII = 3, 4, 2
ORIENTATION, MAKE, EXIF_IFD, GPS_IFD = 0x0112, 0x010F, 0x8769, 0x8825
STORED, TURNED = (SEED_SIDE, SEED_SIDE * 3 // 4), (SEED_SIDE * 3 // 4, SEED_SIDE)
# A broken EXIF never refuses the photo: an orientation we cannot trust leaves it as stored, a readable one
# next to broken tags is still applied.
MALFORMED_EXIF = {
    "orientation-0": (tiff_exif([(ORIENTATION, SHORT, 1, 0)]), STORED),
    "orientation-9": (tiff_exif([(ORIENTATION, SHORT, 1, 9)]), STORED),
    "orientation-65535": (tiff_exif([(ORIENTATION, SHORT, 1, 65535)]), STORED),
    "orientation-huge-count": (tiff_exif([(ORIENTATION, SHORT, 0x4000_0000, 6)]), STORED),
    "bogus-offset": (tiff_exif([(MAKE, ASCII, 100, 0xFFFF_FF00), (ORIENTATION, SHORT, 1, 6)]), TURNED),
    "huge-count": (tiff_exif([(MAKE, ASCII, 0x7FFF_FFFF, 26), (ORIENTATION, SHORT, 1, 6)]), TURNED),
    "ifd-past-the-end": (tiff_exif([], first_ifd=0xFFFF_FFF0), STORED),
    "recursive-exif-ifd": (tiff_exif([(ORIENTATION, SHORT, 1, 6), (EXIF_IFD, LONG, 1, 8)], next_ifd=8), TURNED),
    "recursive-gps-ifd": (tiff_exif([(ORIENTATION, SHORT, 1, 6), (GPS_IFD, LONG, 1, 8)], next_ifd=8), TURNED),
    "not-tiff": (b"MM\x00*garbage", STORED),
}


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("case", sorted(MALFORMED_EXIF))
def test_malformed_exif_does_not_refuse_the_photo(case: str, image_format: str) -> None:
    exif, upright_size = MALFORMED_EXIF[case]
    stored = Image.fromarray(astronaut_rgb(*STORED))
    prefix = b"Exif\x00\x00" if image_format == "JPEG" else b""
    data = pillow_bytes(stored, image_format, exif=prefix + exif)
    assert exif[:8] in data
    assert outcome(data, upright_size=upright_size) == "ok"


def animation(image_format: str) -> bytes:
    frames = [Image.fromarray(astronaut_rgb()), Image.fromarray(astronaut_rgb()[::-1].copy())]
    return pillow_bytes(frames[0], image_format, save_all=True, append_images=frames[1:], duration=100, loop=0)


def zip_file() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", seed_files()["jpeg"][0])
    return buffer.getvalue()


def png_with_broken_chunk_name() -> bytes:
    data = bytearray(seed_files()["png"][0])
    data[8 + 25 + 4 : 8 + 25 + 8] = b"\x00\x01\xfe\xff"  # the name of the chunk after IHDR
    return bytes(data)


def dds_with_unknown_pixel_format() -> bytes:
    """A DirectDraw Surface header: Pillow's reader raises NotImplementedError for its made-up pixel format."""
    header = struct.pack("<4sIIIIIII", b"DDS ", 124, 0x1007, 64, 64, 0, 0, 0) + bytes(44)
    pixel_format = struct.pack("<II4s", 32, 4, b"ZZZZ") + bytes(40)
    return header + pixel_format + bytes(4096)


FIXED_CASES = {
    "zero-length": (lambda: b"", EmptyInputError),
    "svg": (
        lambda: b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect/></svg>',
        UnsupportedFormatError,
    ),
    "pdf": (
        lambda: b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer\n%%EOF\n",
        UnsupportedFormatError,
    ),
    "html": (lambda: b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", UnsupportedFormatError),
    "zip-holding-a-jpeg": (zip_file, UnsupportedFormatError),
    "mp4-header": (
        lambda: b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(200),
        UnsupportedFormatError,
    ),
    "heic-header": (lambda: b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), CorruptImageError),
    "animated-gif": (lambda: animation("GIF"), UnsupportedFormatError),
    "animated-webp": (lambda: animation("WEBP"), UnsupportedFormatError),
    "apng": (lambda: animation("PNG"), UnsupportedFormatError),
    "png-broken-chunk-name": (png_with_broken_chunk_name, CorruptImageError),
    "dds-unknown-pixel-format": (dds_with_unknown_pixel_format, UnsupportedFormatError),
    "tiff": (lambda: pillow_bytes(Image.fromarray(astronaut_rgb()), "TIFF"), UnsupportedFormatError),
    "png-iccp-zlib-bomb": (
        lambda: png_with_chunks_after_the_header(png_chunk(b"iCCP", b"icc\x00\x00" + zlib_bomb())),
        CorruptImageError,
    ),
    "png-ztxt-zlib-bomb": (
        lambda: png_with_chunks_after_the_header(png_chunk(b"zTXt", b"Comment\x00\x00" + zlib_bomb())),
        CorruptImageError,  # Pillow will not inflate more than 1 MB of text: refused, not silently kept
    ),
    "png-zero-width": (lambda: png_bomb(0, 100), CorruptImageError),
    "jpeg-zero-height": (lambda: jpeg_bomb(64, 0), CorruptImageError),
    "png-announcing-more-than-2-MP": (lambda: png_bomb(2000, 2000), TooManyPixelsError),
    "webp-riff-size-lies": (
        lambda: b"RIFF\xff\xff\xff\xffWEBP" + seed_files()["webp-lossy"][0][12:],
        CorruptImageError,
    ),
}


@pytest.mark.parametrize("name", sorted(FIXED_CASES))
def test_fixed_hostile_cases(name: str) -> None:
    make, expected = FIXED_CASES[name]
    assert outcome(make()) == expected.__name__


# --- process isolation: crashes, hangs and memory ----------------------------------------------------------------


def run_in_fresh_process(cases: list[tuple[str, bytes]], max_pixels: int) -> tuple[dict[str, dict], float]:
    """Anonymize the cases in a new interpreter: per-case outcome and peak-RSS growth, and the process's peak."""
    isolated = run_isolated(cases, {"detector": "haar", "max_pixels": max_pixels}, CHILD_TIMEOUT_S, call="anonymize")
    return isolated.outcomes, isolated.peak_mb


def mutated_corpus(count: int, seed: int = 5) -> list[tuple[str, bytes]]:
    """Deterministic mutations of every seed (truncations, overwrites, flips, chunk copies and removals)."""
    rng = random.Random(seed)
    corpus = []
    for index in range(count):
        name = SEED_NAMES[index % len(SEED_NAMES)]
        data = bytearray(seed_files()[name][0])
        kind = index // len(SEED_NAMES) % 4
        if kind == 0:
            data = data[: rng.randrange(len(data))]
        elif kind == 1:
            for _ in range(4):
                data[rng.randrange(min(64, len(data)))] = rng.randrange(256)
        elif kind == 2:
            for _ in range(8):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        else:
            start, end = rng.choice(chunk_spans(bytes(data)))
            data = data[:end] + data[start:end] + data[end:] if rng.random() < 0.5 else data[:start] + data[end:]
        corpus.append((f"{name}-mutation-{index}", bytes(data)))
    return corpus


@pytest.mark.slow
def test_hostile_corpus_never_kills_the_process() -> None:
    """A native crash (segfault in a decoder) would kill the process: the whole corpus runs in a fresh one."""
    cases = [(name, make()) for name, (make, _) in FIXED_CASES.items()]
    cases += [(f"seed-{name}", seed_files()[name][0]) for name in SEED_NAMES]
    cases += mutated_corpus(104)
    outcomes, _ = run_in_fresh_process(cases, FAST.max_pixels)
    assert sorted(outcomes) == sorted(name for name, _ in cases)
    for name, (_, expected) in FIXED_CASES.items():
        assert outcomes[name]["outcome"] == expected.__name__, name
    assert all(outcomes[f"seed-{name}"]["outcome"] == "ok" for name in SEED_NAMES)


@pytest.mark.slow
@pytest.mark.parametrize("name", [*sorted(BOMBS), "jpeg-scan-bomb", *sorted(HEADER_FLOODS)])
def test_bomb_in_a_fresh_process_stays_small(name: str) -> None:
    bombs = {**BOMBS, "jpeg-scan-bomb": progressive_scan_bomb, **HEADER_FLOODS}
    outcomes, peak_mb = run_in_fresh_process([(name, bombs[name]())], Options().max_pixels)
    assert outcomes[name]["outcome"] == ("TooManyPixelsError" if name in BOMBS else "CorruptImageError")
    assert outcomes[name]["growth_mb"] < MAX_RSS_GROWTH_MB
    assert peak_mb < MAX_RSS_MB


@pytest.mark.slow
def test_the_memory_measure_sees_a_picture_being_decoded() -> None:
    """The bound above means something: a tiny JPEG announcing 16 MP (accepted) does grow the process past it."""
    outcomes, _ = run_in_fresh_process([("16-MP", jpeg_bomb(4000, 4000))], Options().max_pixels)
    assert outcomes["16-MP"]["outcome"] == "ok"
    assert outcomes["16-MP"]["growth_mb"] > MAX_RSS_GROWTH_MB


@pytest.mark.slow
def test_mutated_files_in_a_fresh_process_stay_small() -> None:
    cases = mutated_corpus(26, seed=11)
    outcomes, peak_mb = run_in_fresh_process(cases, FAST.max_pixels)
    assert max(line["growth_mb"] for line in outcomes.values()) < MAX_RSS_GROWTH_MB
    assert peak_mb < MAX_RSS_MB
