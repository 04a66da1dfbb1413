"""Decoding untrusted bytes safely and encoding without metadata, on the astronaut photo in real file formats."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin

from anonymizer import codec
from anonymizer.codec import decode_image, encode_image
from anonymizer.errors import (
    CorruptImageError,
    EmptyInputError,
    InputTooLargeError,
    TooManyPixelsError,
    UnsupportedFormatError,
)
from testing import colour as colour_profiles
from testing.colour import HIDDEN, colour_grid, lab
from testing.images import astronaut_bgr
from testing.metadata import XMP, assert_no_metadata, exif_with_gps, pillow_bytes


def astronaut_rgb() -> np.ndarray:
    return cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2RGB)


# --- formats -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_format", "params", "exact"),
    [
        ("JPEG", {"quality": 90}, False),
        ("PNG", {}, True),
        ("WEBP", {"quality": 80}, False),
        ("WEBP", {"lossless": True}, True),
        ("BMP", {}, True),
    ],
)
def test_each_format_round_trips_size_format_and_pixels(image_format: str, params: dict, exact: bool) -> None:
    original = Image.fromarray(astronaut_rgb()[:, :400])
    data = pillow_bytes(original, image_format, **params)
    decoded = decode_image(data)
    assert (decoded.format, decoded.width, decoded.height) == (image_format, 400, 512)

    again = decode_image(encode_image(decoded.pixels, decoded.format, lossless=decoded.lossless))
    assert (again.format, again.width, again.height) == (image_format, 400, 512)
    difference = np.abs(again.bgr.astype(int) - decoded.bgr.astype(int)).mean()
    assert difference == 0 if exact else difference < 2.5


def test_lossless_webp_is_recognised_and_lossy_is_not() -> None:
    original = Image.fromarray(astronaut_rgb())
    assert decode_image(pillow_bytes(original, "WEBP", lossless=True)).lossless
    assert not decode_image(pillow_bytes(original, "WEBP", quality=80)).lossless


# --- EXIF orientation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_and_dropped(orientation: int) -> None:
    stored = Image.fromarray(astronaut_rgb()[:, :320])  # not square, so a wrong turn changes the shape
    data = pillow_bytes(stored, "JPEG", quality=95, exif=exif_with_gps(orientation).tobytes())
    upright = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))

    decoded = decode_image(data)

    assert decoded.bgr.shape == upright.shape
    assert np.abs(decoded.bgr[:, :, ::-1].astype(int) - upright.astype(int)).mean() < 1.5
    output = encode_image(decoded.pixels, decoded.format)
    assert_no_metadata(output)
    reopened = Image.open(io.BytesIO(output))
    assert reopened.size == (upright.shape[1], upright.shape[0])


@pytest.mark.parametrize(("image_format", "params"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_orientation_is_also_read_from_png_and_webp_exif(image_format: str, params: dict) -> None:
    stored = Image.fromarray(astronaut_rgb()[:, :320])
    data = pillow_bytes(stored, image_format, exif=exif_with_gps(6).tobytes(), **params)
    decoded = decode_image(data)
    expected = cv2.rotate(astronaut_bgr()[:, :320], cv2.ROTATE_90_CLOCKWISE)
    assert np.array_equal(decoded.bgr, expected)


def test_broken_exif_block_does_not_refuse_the_photo() -> None:
    data = pillow_bytes(Image.fromarray(astronaut_rgb()), "JPEG", exif=b"Exif\x00\x00MM\x00*garbage")
    assert decode_image(data).width == 512


# --- metadata --------------------------------------------------------------------------------------------------


def test_jpeg_exif_gps_xmp_and_comment_are_removed() -> None:
    data = pillow_bytes(
        Image.fromarray(astronaut_rgb()),
        "JPEG",
        exif=exif_with_gps().tobytes(),
        xmp=XMP,
        comment=b"secret comment",
    )
    source = Image.open(io.BytesIO(data))
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo) and "xmp" in source.info and "comment" in source.info

    decoded = decode_image(data)
    assert_no_metadata(encode_image(decoded.pixels, decoded.format))


def test_png_text_chunks_and_exif_are_removed() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "secret text chunk")
    info.add_text("Comment", "secret comment", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    data = pillow_bytes(Image.fromarray(astronaut_rgb()), "PNG", pnginfo=info, exif=exif_with_gps().tobytes())
    assert b"tEXt" in data and b"zTXt" in data and b"iTXt" in data

    decoded = decode_image(data)
    assert_no_metadata(encode_image(decoded.pixels, decoded.format))


def test_webp_exif_and_xmp_are_removed() -> None:
    data = pillow_bytes(Image.fromarray(astronaut_rgb()), "WEBP", exif=exif_with_gps().tobytes(), xmp=XMP)
    assert b"EXIF" in data and b"XMP " in data
    decoded = decode_image(data)
    output = encode_image(decoded.pixels, decoded.format, lossless=decoded.lossless)
    assert_no_metadata(output)
    assert b"EXIF" not in output and b"XMP " not in output


PROFILES = {"sRGB": colour_profiles.srgb, "Display P3": colour_profiles.display_p3}


def profile_of(data: bytes) -> bytes | None:
    return Image.open(io.BytesIO(data)).info.get("icc_profile")


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_colour_profile_comes_out_with_its_colours_and_nothing_else(name: str, image_format: str) -> None:
    """The photo's profile hides text in its description, copyright, a private tag and its padding. What comes out
    is a profile littleCMS reads every colour of the same from, with none of that text, and the pixels as they were.
    """
    profile = PROFILES[name]()
    data = pillow_bytes(Image.fromarray(astronaut_rgb()), image_format, icc_profile=profile, quality=95)
    assert profile_of(data) == profile

    decoded = decode_image(data)
    output = encode_image(decoded.pixels, decoded.format, icc_profile=decoded.icc_profile)

    written = profile_of(output)
    assert written is not None and HIDDEN not in output
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(written))).strip() == name
    grid = colour_grid()
    assert np.abs(lab(grid, written) - lab(grid, profile)).max() <= 1
    before = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    after = np.asarray(Image.open(io.BytesIO(output)).convert("RGB")).astype(int)
    assert np.abs(after - before).mean() < 2


@pytest.mark.parametrize(
    "make",
    [colour_profiles.linear_lut, lambda: bytes(16) + b"RGB " + HIDDEN * 20],
    ids=["colour-tables", "unreadable"],
)
def test_a_profile_that_cannot_be_written_anew_is_applied_to_the_pixels_and_dropped(make) -> None:
    """A profile of colour tables (or none littleCMS can read) cannot be reduced to colour numbers: the pixels are
    turned to sRGB through it, so a viewer that reads untagged pixels as sRGB shows the same colours, and it is
    dropped with whatever it hid."""
    profile = make()
    grid = colour_grid()
    data = pillow_bytes(Image.fromarray(np.repeat(grid, 4, axis=0)), "PNG", icc_profile=profile)

    decoded = decode_image(data)
    output = encode_image(decoded.pixels, decoded.format, icc_profile=decoded.icc_profile)

    assert profile_of(output) is None and HIDDEN not in output
    shown = np.ascontiguousarray(np.asarray(Image.open(io.BytesIO(output)).convert("RGB"))[:1])
    if make is colour_profiles.linear_lut:
        assert np.abs(lab(shown, None) - lab(grid, profile)).max() <= 2
        assert np.abs(shown.astype(int) - grid).max() > 40, "linear light reads very differently from sRGB"
    else:
        assert np.array_equal(shown, grid)


def with_colour_space(profile: bytes, colour_space: bytes) -> bytes:
    """An ICC profile claiming another colour space (ImageCms cannot create CMYK or grey profiles)."""
    return profile[:16] + colour_space + profile[20:]


@pytest.mark.parametrize(
    ("mode", "image_format", "colour_space"),
    [("CMYK", "JPEG", b"CMYK"), ("LA", "PNG", b"GRAY")],
)
def test_icc_profile_of_another_colour_space_than_the_output_is_dropped(
    mode: str, image_format: str, colour_space: bytes
) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    profile = with_colour_space(srgb, colour_space)
    data = pillow_bytes(Image.fromarray(astronaut_rgb()).convert(mode), image_format, icc_profile=profile)
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == profile

    decoded = decode_image(data)
    output = encode_image(decoded.pixels, decoded.format, icc_profile=decoded.icc_profile)
    assert decoded.icc_profile is None and "icc_profile" not in Image.open(io.BytesIO(output)).info


def test_grey_profile_of_a_grey_photo_comes_out_anew() -> None:
    profile = colour_profiles.grey_gamma()
    data = pillow_bytes(Image.fromarray(astronaut_rgb()).convert("L"), "JPEG", icc_profile=profile)
    written = decode_image(data).icc_profile
    assert written is not None and written[16:20] == b"GRAY" and HIDDEN not in written
    grey_levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    to_lab = ImageCms.createProfile("LAB")
    tones = [
        np.asarray(
            ImageCms.profileToProfile(Image.fromarray(grey_levels, "L"), io.BytesIO(p), to_lab, outputMode="LAB")
        )
        for p in (profile, written)
    ]
    assert np.array_equal(*tones)


# --- decompression bombs -----------------------------------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(width: int, height: int) -> bytes:
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000))[:40]


def jpeg_bomb(width: int, height: int) -> bytes:
    data = bytearray(pillow_bytes(Image.fromarray(astronaut_rgb()[:64, :64]), "JPEG"))
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def webp_bomb(width: int, height: int) -> bytes:
    small = pillow_bytes(Image.fromarray(astronaut_rgb()[:64, :64]), "WEBP")
    canvas = bytes(4) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(canvas)) + canvas + small[12:]
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("make_bomb", [png_bomb, jpeg_bomb, webp_bomb])
@pytest.mark.parametrize("size", [(50_000, 50_000), (10_000, 8_000)])
def test_decompression_bomb_is_refused_from_the_header(make_bomb, size, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = make_bomb(*size)
    assert len(bomb) < 10_000

    def must_not_decode(*_args, **_kwargs):
        raise AssertionError("the pixels were decoded before the size was checked")

    monkeypatch.setattr(codec.cv2, "imdecode", must_not_decode)
    with pytest.raises(TooManyPixelsError, match="limit is 60 MP"):
        decode_image(bomb)


def test_pillow_reads_a_photo_under_the_callers_pixel_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow's own bomb check is set from the options while it reads a photo, never left at its 89 MP default."""
    photo = pillow_bytes(Image.fromarray(astronaut_rgb()), "PNG")
    limits = []
    opened = Image.open

    def recording(*args, **kwargs) -> Image.Image:
        limits.append(Image.MAX_IMAGE_PIXELS)
        return opened(*args, **kwargs)

    monkeypatch.setattr(Image, "open", recording)
    decode_image(photo, max_pixels=1_000_000)
    assert limits == [1_000_000]


def test_pixel_limit_is_the_callers() -> None:
    data = pillow_bytes(Image.fromarray(astronaut_rgb()), "PNG")
    with pytest.raises(TooManyPixelsError):
        decode_image(data, max_pixels=512 * 511)
    assert decode_image(data, max_pixels=512 * 512).width == 512


# --- bad input ---------------------------------------------------------------------------------------------------


def test_empty_and_too_large_inputs_are_refused_before_reading() -> None:
    with pytest.raises(EmptyInputError):
        decode_image(b"")
    data = pillow_bytes(Image.fromarray(astronaut_rgb()), "JPEG")
    with pytest.raises(InputTooLargeError, match="limit is"):
        decode_image(data, max_bytes=len(data) - 1)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_truncated_file_is_corrupt(image_format: str) -> None:
    data = pillow_bytes(Image.fromarray(astronaut_rgb()), image_format)
    with pytest.raises(CorruptImageError, match="damaged"):
        decode_image(data[: len(data) * 2 // 3])


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
        b"just some text that someone named photo.jpg\n",
    ],
    ids=["random", "pdf", "svg", "text"],
)
def test_non_images_are_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedFormatError, match=r"supported: JPEG, PNG, WebP"):
        decode_image(data)


def test_a_heic_header_without_a_picture_is_damaged() -> None:
    with pytest.raises(CorruptImageError, match="HEIC/AVIF image is damaged"):
        decode_image(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))


def test_gif_tiff_and_animations_are_refused_clearly() -> None:
    frames = [Image.fromarray(astronaut_rgb()), Image.fromarray(astronaut_rgb()[::-1].copy())]
    for image_format in ("GIF", "TIFF"):
        with pytest.raises(UnsupportedFormatError, match=f"{image_format} images are not supported"):
            decode_image(pillow_bytes(frames[0], image_format))
    for image_format in ("PNG", "WEBP"):
        animation = pillow_bytes(frames[0], image_format, save_all=True, append_images=frames[1:])
        with pytest.raises(UnsupportedFormatError, match="Animated"):
            decode_image(animation)


# --- colour modes --------------------------------------------------------------------------------------------------


def test_grayscale_jpeg_stays_grayscale() -> None:
    data = pillow_bytes(Image.fromarray(astronaut_rgb()).convert("L"), "JPEG")
    decoded = decode_image(data)
    assert decoded.pixels.ndim == 2 and decoded.bgr.shape == (512, 512, 3)
    assert Image.open(io.BytesIO(encode_image(decoded.pixels, decoded.format))).mode == "L"


def test_16_bit_png_keeps_its_depth() -> None:
    deep = (cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257) + 7
    data = pillow_bytes(Image.fromarray(deep), "PNG")
    decoded = decode_image(data)
    assert decoded.pixels.dtype == np.uint16 and decoded.bgr.dtype == np.uint8
    assert np.array_equal(decode_image(encode_image(decoded.pixels, "PNG")).pixels, deep)


def test_cmyk_jpeg_decodes_to_the_right_colours() -> None:
    data = pillow_bytes(Image.fromarray(astronaut_rgb()).convert("CMYK"), "JPEG", quality=95)
    decoded = decode_image(data)
    reference = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[:, :, ::-1]
    assert np.abs(decoded.bgr.astype(int) - reference.astype(int)).mean() < 2
    assert Image.open(io.BytesIO(encode_image(decoded.pixels, decoded.format))).mode == "RGB"


def test_palette_png_with_transparency_keeps_its_transparency() -> None:
    palette = Image.fromarray(astronaut_rgb()).convert("P")
    data = pillow_bytes(palette, "PNG", transparency=0)
    transparent = np.asarray(palette) == 0
    decoded = decode_image(data)
    assert decoded.pixels.shape == (512, 512, 4)
    assert np.array_equal(decoded.pixels[:, :, 3] == 0, transparent)
    output = Image.open(io.BytesIO(encode_image(decoded.pixels, decoded.format))).convert("RGBA")
    assert np.array_equal(np.asarray(output)[:, :, 3] == 0, transparent)


def test_gray_with_alpha_keeps_alpha() -> None:
    gray = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    alpha = np.tile(np.arange(512, dtype=np.uint16) // 2, (512, 1)).astype(np.uint8)
    data = pillow_bytes(Image.fromarray(np.dstack([gray, alpha]), "LA"), "PNG")
    decoded = decode_image(data)
    assert np.array_equal(decoded.pixels[:, :, 3], alpha)


@pytest.mark.parametrize("deep", [False, True])
def test_painting_changes_only_painted_pixels_and_never_alpha(deep: bool) -> None:
    alpha = np.tile(np.arange(512, dtype=np.uint16) // 2, (512, 1)).astype(np.uint8)
    bgra = np.dstack([astronaut_bgr(), alpha])
    pixels = bgra.astype(np.uint16) * 257 + 3 if deep else bgra
    decoded = decode_image(cv2.imencode(".png", pixels)[1].tobytes())
    assert np.array_equal(decoded.pixels, pixels)
    painted = decoded.bgr.copy()
    painted[100:200, 150:300] = (0, 255, 0)

    merged = decoded.with_painted(painted)

    assert merged.dtype == decoded.pixels.dtype
    assert np.array_equal(merged[:, :, 3], decoded.pixels[:, :, 3])
    outside = np.ones((512, 512), bool)
    outside[100:200, 150:300] = False
    assert np.array_equal(merged[outside], decoded.pixels[outside])
    green = np.array([0, 255 * 257 if deep else 255, 0])
    assert np.array_equal(merged[150, 200, :3], green)
    round_trip = decode_image(encode_image(merged, "PNG")).pixels
    assert np.array_equal(round_trip, merged)
