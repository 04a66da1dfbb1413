"""Colour profiles: only colour data leaves with a photo, never the bytes of the profile it came with.

An ICC profile says how to read the pixel values (dropping a phone's Display P3 profile visibly dulls every colour),
so it must come out with the photo. But a profile is a container of tagged data: a description, a copyright, a
maker's private tags, padding between them, where any text can hide. So a profile is never copied. A profile
made of a white point, three primaries and three tone curves (a "matrix/TRC" profile: what cameras and phones
write, sRGB, Display P3, Adobe RGB), or of a white point and one grey curve, is written anew from those numbers
alone, under a plain name (that of sRGB or Display P3 when its primaries are theirs). Any other profile (tables,
or one that does not read as colour data) cannot be written anew: littleCMS turns the pixels to sRGB through it,
and no profile comes out (a viewer shows untagged pixels as sRGB, so they look as they did). A profile littleCMS
cannot read either, or one for other channels than the pixels have, is dropped.
"""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image, ImageCms

_HEADER_BYTES = 128
_MAX_TAGS = 100
# Tone curves of cameras and displays have up to a few thousand points; more is not a tone curve.
_MAX_CURVE_POINTS = 4096
_PARAMETERS_OF_CURVE = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}
_PRIMARIES = (b"rXYZ", b"gXYZ", b"bXYZ")
_RGB_CURVES = (b"rTRC", b"gTRC", b"bTRC")
_GREY_CURVE = b"kTRC"
# The primaries of the profiles photos come with, adapted to the D50 white every profile is written in.
_KNOWN_PRIMARIES = {
    "sRGB": ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)),
    "Display P3": ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841)),
}
_PRIMARIES_TOLERANCE = 0.002
_D50 = struct.pack(">3i", 0xF6D6, 0x10000, 0xD32D)  # the profile connection space's white, in s15.16
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


class _NotColourData(Exception):
    """The profile is not made of numbers we can write a fresh profile from."""


def cleaned(profile: bytes | None, pixels: np.ndarray) -> tuple[np.ndarray, bytes | None]:
    """The pixels (BGR(A) or grey, as decoded) and the profile to write with them: a fresh one from the colour
    data of ``profile``, or none, the pixels then turned to sRGB through ``profile`` when littleCMS can."""
    if not profile or _colour_space(profile) != (b"GRAY" if pixels.ndim == 2 else b"RGB "):
        return pixels, None  # a CMYK profile of a photo decoded to BGR, a grey one of a photo with colour: wrong
    try:
        return pixels, _rewritten(profile)
    except _NotColourData:
        return _to_srgb(pixels, profile), None


def _colour_space(profile: bytes) -> bytes:
    return profile[16:20]


def _rewritten(profile: bytes) -> bytes:
    """A fresh profile with the white point, primaries, tone curves and adaptation matrix of ``profile``."""
    tags = _tags(profile)
    grey = _colour_space(profile) == b"GRAY"
    if profile[20:24] != b"XYZ ":
        raise _NotColourData("matrix/TRC profiles connect through XYZ")
    colour = {b"wtpt": _xyz(tags, b"wtpt")}
    if grey:
        colour[_GREY_CURVE] = _curve(tags, _GREY_CURVE)
    else:
        colour |= {sig: _xyz(tags, sig) for sig in _PRIMARIES} | {sig: _curve(tags, sig) for sig in _RGB_CURVES}
    if b"chad" in tags:
        colour[b"chad"] = _numbers(tags, b"chad", b"sf32", 9)
    name = "Grey" if grey else _known_name(colour)
    return _profile(_colour_space(profile), version_4=profile[8] >= 4, name=name, tags=colour)


def _tags(profile: bytes) -> dict[bytes, bytes]:
    """Each tag's data by its signature, after checking the header and the tag table lie within the profile."""
    if len(profile) < _HEADER_BYTES + 4 or profile[36:40] != b"acsp":
        raise _NotColourData("not an ICC profile")
    size = min(len(profile), int.from_bytes(profile[:4], "big"))
    count = int.from_bytes(profile[128:132], "big")
    if count > _MAX_TAGS or 132 + 12 * count > size:
        raise _NotColourData("a tag table past the profile's end")
    tags = {}
    for index in range(count):
        signature, offset, length = struct.unpack_from(">4sII", profile, 132 + 12 * index)
        if offset + length > size:
            raise _NotColourData("a tag past the profile's end")
        tags[signature] = profile[offset : offset + length]
    return tags


def _numbers(tags: dict[bytes, bytes], signature: bytes, kind: bytes, count: int) -> bytes:
    """A tag of ``count`` s15.16 numbers, written anew (its reserved bytes zero, nothing after the numbers)."""
    data = tags.get(signature, b"")
    if data[:4] != kind or len(data) < 8 + 4 * count:
        raise _NotColourData(f"no {signature!r} of {count} numbers")
    return kind + bytes(4) + data[8 : 8 + 4 * count]


def _xyz(tags: dict[bytes, bytes], signature: bytes) -> bytes:
    return _numbers(tags, signature, b"XYZ ", 3)


def _curve(tags: dict[bytes, bytes], signature: bytes) -> bytes:
    """A tone curve written anew: a gamma, a table that only rises, or one of ICC's parametric curves."""
    data = tags.get(signature, b"")
    if data[:4] == b"curv" and len(data) >= 12:
        points = int.from_bytes(data[8:12], "big")
        table = data[12 : 12 + 2 * points]
        if points > _MAX_CURVE_POINTS or len(table) < 2 * points:
            raise _NotColourData("a tone curve of too many points")
        if points > 1 and np.any(np.diff(np.frombuffer(table, ">u2").astype(np.int32)) < 0):
            raise _NotColourData("a tone curve that falls")
        return b"curv" + bytes(4) + data[8:12] + table
    if data[:4] == b"para" and len(data) >= 12:
        function = int.from_bytes(data[8:10], "big")
        parameters = _PARAMETERS_OF_CURVE.get(function)
        if parameters is None or len(data) < 12 + 4 * parameters:
            raise _NotColourData("an unknown parametric curve")
        return b"para" + bytes(4) + data[8:10] + bytes(2) + data[12 : 12 + 4 * parameters]
    raise _NotColourData(f"no tone curve {signature!r}")


def _known_name(colour: dict[bytes, bytes]) -> str:
    """sRGB or Display P3 when the primaries are theirs, else plain RGB."""
    primaries = [[value / 65536 for value in struct.unpack(">3i", colour[sig][8:20])] for sig in _PRIMARIES]
    for name, known in _KNOWN_PRIMARIES.items():
        if np.allclose(primaries, known, atol=_PRIMARIES_TOLERANCE):
            return name
    return "RGB"


def _profile(colour_space: bytes, version_4: bool, name: str, tags: dict[bytes, bytes]) -> bytes:
    """A display profile of these tags and a description, nothing else: no date, maker, creator or private tag."""
    every = {b"desc": _text(name, version_4), b"cprt": _text("No copyright, use freely", version_4), **tags}
    table_end = _HEADER_BYTES + 4 + 12 * len(every)
    entries, blobs, placed = [], [], {}
    position = table_end
    for signature, data in every.items():
        if data not in placed:  # tags with the same data (three equal tone curves) share it
            placed[data] = position
            padded = data + bytes(-len(data) % 4)
            blobs.append(padded)
            position += len(padded)
        entries.append(struct.pack(">4sII", signature, placed[data], len(data)))
    header = struct.pack(
        ">I4sI4s4s4s12s4s4sIIIQI12s4s16s28s",
        position,  # the profile's size
        bytes(4),  # preferred CMM: none
        0x04300000 if version_4 else 0x02100000,
        b"mntr",
        colour_space,
        b"XYZ ",
        bytes(12),  # date and time: none
        b"acsp",
        bytes(4),  # platform: none
        0,  # flags
        0,  # device maker
        0,  # device model
        0,  # device attributes
        0,  # rendering intent: perceptual
        _D50,
        bytes(4),  # creator: none
        bytes(16),  # profile ID: not computed
        bytes(28),  # reserved
    )
    return header + len(every).to_bytes(4, "big") + b"".join(entries) + b"".join(blobs)


def _text(text: str, version_4: bool) -> bytes:
    """A text tag as each ICC version has it: multi-localised Unicode (v4), or ASCII with empty alternatives (v2)."""
    if version_4:
        utf16 = text.encode("utf-16-be")
        return b"mluc" + bytes(4) + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(utf16), 28) + utf16
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + len(ascii_text).to_bytes(4, "big") + ascii_text + bytes(4 + 4 + 2 + 1 + 67)


def _to_srgb(pixels: np.ndarray, profile: bytes) -> np.ndarray:
    """The pixels as littleCMS turns them from ``profile`` to sRGB (8 bits a sample; grey stays grey, alpha is
    kept); as they are when it cannot read the profile."""
    depth_8 = (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels
    grey = pixels.ndim == 2
    colour = depth_8 if grey else np.ascontiguousarray(depth_8[:, :, 2::-1])  # BGR(A) -> RGB
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(
            Image.fromarray(colour, "L" if grey else "RGB"), source, _SRGB, outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return pixels
    assert isinstance(converted, Image.Image)
    rgb = np.asarray(converted)
    if grey:
        return np.ascontiguousarray(rgb[:, :, 0])
    bgr = rgb[:, :, ::-1]
    if pixels.shape[2] == 4:
        bgr = np.dstack([bgr, depth_8[:, :, 3]])
    return np.ascontiguousarray(bgr)
