"""ICC colour profiles made by the tests, with text hidden where a profile has room for it, and what littleCMS says
a profile's colours are (the reference every colour check compares with)."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageCms

# Where text hides in a profile: its description and copyright, a private tag, the padding after a tag's data and
# after the last tag.
HIDDEN = b"secret-in-the-profile"
D50 = (0.9642, 1.0, 0.8249)
SRGB_PRIMARIES = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
P3_PRIMARIES = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
# Bradford adaptation from D65 to D50, as Apple's Display P3 profile carries it.
D65_TO_D50 = (1.0479, 0.0229, -0.0502, 0.0296, 0.9904, -0.0171, -0.0092, 0.0151, 0.7519)
# The sRGB tone curve as ICC's parametric curve of type 3: gamma, a, b, c, d.
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)


def s15(*values: float) -> bytes:
    return struct.pack(f">{len(values)}i", *(round(value * 65536) for value in values))


def xyz(*values: float) -> bytes:
    return b"XYZ " + bytes(4) + s15(*values)


def parametric(*parameters: float, function: int = 3) -> bytes:
    return b"para" + bytes(4) + struct.pack(">HH", function, 0) + s15(*parameters)


def mluc(text: bytes) -> bytes:
    utf16 = text.decode().encode("utf-16-be")
    return b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(utf16), 28) + utf16


def lut_rgb_to_xyz(primaries: tuple[tuple[float, float, float], ...]) -> bytes:
    """An 'mft2' table taking linear RGB to XYZ through a 2 x 2 x 2 grid: colour data a matrix profile cannot hold."""
    corners = []
    for r in (0, 1):
        for g in (0, 1):
            for b in (0, 1):
                point = np.array(primaries).T @ np.array([r, g, b], float)
                corners.extend(round(min(value, 1.99) * 32768) for value in point)
    identity_matrix = s15(1, 0, 0, 0, 1, 0, 0, 0, 1)
    ramps = struct.pack(">6H", 0, 65535, 0, 65535, 0, 65535)
    head = b"mft2" + bytes(4) + bytes([3, 3, 2, 0]) + identity_matrix + struct.pack(">HH", 2, 2)
    return head + ramps + struct.pack(f">{len(corners)}H", *corners) + ramps


def icc_profile(tags: dict[bytes, bytes], colour_space: bytes = b"RGB ", trailer: bytes = b"") -> bytes:
    """A version 4 display profile of these tags (data in order, each followed by a hidden text), then ``trailer``."""
    table_size = 4 + 12 * len(tags)
    entries, blobs, position = [], b"", 128 + table_size
    for signature, data in tags.items():
        entries.append(struct.pack(">4sII", signature, position, len(data)))
        blob = data + HIDDEN
        blob += bytes(-len(blob) % 4)
        blobs += blob
        position += len(blob)
    size = position + len(trailer)
    header = struct.pack(">I4sI4s4s4s", size, b"appl", 0x04300000, b"mntr", colour_space, b"XYZ ")
    header += b"\x07\xea\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00" + b"acsp" + b"APPL" + bytes(4) + b"APPL" + bytes(12)
    header += bytes(4) + s15(*D50) + b"appl" + bytes(44)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + b"".join(entries) + blobs + trailer


def matrix_profile(
    primaries: tuple[tuple[float, float, float], ...], name: bytes, adaptation: tuple[float, ...] | None = None
) -> bytes:
    """A matrix/TRC profile with the sRGB tone curve, text hidden in every place a profile has for it."""
    curve = parametric(*SRGB_CURVE)
    tags = {
        b"desc": mluc(name + b" " + HIDDEN),
        b"cprt": mluc(b"Copyright " + HIDDEN),
        b"wtpt": xyz(*D50),
        **{sig: xyz(*primary) for sig, primary in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries, strict=True)},
        **dict.fromkeys((b"rTRC", b"gTRC", b"bTRC"), curve),
        b"priv": HIDDEN * 4,
    }
    if adaptation is not None:
        tags[b"chad"] = b"sf32" + bytes(4) + s15(*adaptation)
    return icc_profile(tags, trailer=HIDDEN)


def display_p3() -> bytes:
    """A phone's Display P3 profile (Apple's numbers), carrying hidden text."""
    return matrix_profile(P3_PRIMARIES, b"Display P3", D65_TO_D50)


def srgb() -> bytes:
    """An sRGB profile (IEC 61966-2.1's numbers), carrying hidden text."""
    return matrix_profile(SRGB_PRIMARIES, b"sRGB IEC61966-2.1")


def linear_lut() -> bytes:
    """A table-based profile for linear-light RGB with sRGB's primaries, carrying hidden text."""
    tags = {b"desc": mluc(b"Linear " + HIDDEN), b"wtpt": xyz(*D50), b"A2B0": lut_rgb_to_xyz(SRGB_PRIMARIES)}
    return icc_profile(tags, trailer=HIDDEN)


def colour_grid(steps: int = 6) -> np.ndarray:
    """Every mix of ``steps`` levels of red, green and blue, as one row of RGB pixels."""
    levels = np.linspace(0, 255, steps).round().astype(np.uint8)
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(1, -1, 3)
    return np.ascontiguousarray(grid)


def lab(rgb: np.ndarray, profile: bytes | None) -> np.ndarray:
    """The colours littleCMS says RGB pixels are under ``profile`` (sRGB when None), in CIELAB (L 0-100)."""
    source = ImageCms.ImageCmsProfile(io.BytesIO(profile)) if profile else ImageCms.createProfile("sRGB")
    to_lab = ImageCms.buildTransform(source, ImageCms.createProfile("LAB"), "RGB", "LAB")
    converted = ImageCms.applyTransform(Image.fromarray(rgb, "RGB"), to_lab)
    assert isinstance(converted, Image.Image)
    values = np.asarray(converted).astype(float)
    values[..., 0] *= 100 / 255
    values[..., 1:] -= 128
    return values


def grey_gamma(gamma: float = 2.2) -> bytes:
    """A grey profile with a plain gamma curve, carrying hidden text."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))
    tags = {b"desc": mluc(b"Grey " + HIDDEN), b"wtpt": xyz(*D50), b"kTRC": curve}
    return icc_profile(tags, colour_space=b"GRAY", trailer=HIDDEN)
