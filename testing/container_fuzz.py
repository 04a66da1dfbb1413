"""A fuzzing corpus for containers: real MP4, MOV, MKV, WebM, GIF, HEIC and AVIF files made here, then mutated where
readers trust them (their headers, the sizes of their boxes and elements, their timestamps, how many streams or
frames they hold), each mutation from a seeded random generator so every run tries the same files.

The seeds are small (8 frames of 96 x 72 with a face, and sound where the container has it), so each mutation
costs a fraction of a second; what a mutated header announces can still be far larger.
"""

from __future__ import annotations

import functools
import io
import itertools
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
import pillow_heif
from PIL import Image

from anonymizer import errors
from testing.isolation import Isolated, user_facing
from testing.media import Scene, make_clip, make_gif

# What every mutated file is run under: the detector that needs no model files, and limits far under the
# defaults, so that an accepted mutation stays cheap whatever its header now says.
FUZZ_OPTIONS: dict[str, object] = {
    "detector": "haar",
    "max_pixels": 4_000_000,
    "max_frame_pixels": 1280 * 720,
    "max_duration": 60.0,
    "max_frames": 1800,
    "max_animation_pixels": 20_000_000,
    "max_held_bytes": 64 * 2**20,
}
# Whatever a mutation makes of a file, it may take this long and add this much to the process's resident peak;
# the address space it may add is capped far higher, as a safety net (testing.isolation).
CEILING_S = 20.0
CEILING_MB = 400.0
ADDRESS_SPACE_MB = 4096.0
# The refusals a file may end in: every AnonymizerError the library defines.
REFUSALS = frozenset(
    name
    for name, value in vars(errors).items()
    if isinstance(value, type) and issubclass(value, errors.AnonymizerError)
)
MUTATIONS = ("truncated", "header-bytes", "bit-flips", "sizes", "timestamps", "streams")
_SCENE = Scene(size=(96, 72), faces=[[(8 + 2 * i, 2, 48)] for i in range(8)])
# Boxes holding other boxes (ISO base media: MP4, MOV, HEIF, AVIF); "meta" starts with 4 bytes of version and flags.
_ISO_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"udta", b"meta", b"iprp"})
_ISO_CONTAINERS |= {b"ipco", b"mvex", b"moof", b"traf"}
_ISO_TIMES = frozenset({b"mvhd", b"tkhd", b"mdhd", b"stts", b"ctts", b"elst", b"tfdt", b"trun", b"sidx"})
_ISO_STREAMS = frozenset({b"trak", b"iinf", b"iloc", b"iref", b"ipma", b"ispe", b"hvcC", b"av1C", b"stsd"})
# Matroska elements holding other elements, and those holding times and streams.
_EBML_MASTERS = frozenset({0x1A45DFA3, 0x18538067, 0x1654AE6B, 0xAE, 0xE0, 0xE1, 0x1F43B675, 0xA0, 0x1549A966})
_EBML_MASTERS |= {0x114D9B74, 0x4DBB, 0x1C53BB6B, 0xBB, 0x1254C367, 0x7373}
_EBML_TIMES = frozenset({0x2AD7B1, 0x23E383, 0xE7, 0x4489, 0xA3, 0xA1, 0xB3})
_EBML_STREAMS = frozenset({0xAE, 0x1F43B675, 0xA3, 0xE0, 0xE1})
_BIT_EXACT = {"fflags": "+bitexact"}
_EXTREMES = (0, 1, 2, 0x7F, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


@dataclass(frozen=True)
class Unit:
    """A box or element: where it starts, where its size field is and how long it is, its total size, its kind,
    and the starts of the units it lies in (whose sizes change when it is copied or removed)."""

    start: int
    size_at: int
    size_bytes: int
    size: int
    kind: bytes | int
    parents: tuple[Unit, ...]


def _picture(image_format: str) -> bytes:
    pixels, _ = _SCENE.frames()[0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1])).save(buffer, image_format, quality=70)
    return buffer.getvalue()


@functools.cache
def seed_files() -> dict[str, bytes]:
    """One real file of each container the project reads."""
    pillow_heif.register_heif_opener()
    mp4 = make_clip(_SCENE, container="mp4", audio="aac", reproducible=True)
    return {
        "mp4": mp4,
        "mov": make_clip(_SCENE, container="mov", audio="aac", rotation=90, frame_ms=(33, 50, 41), reproducible=True),
        "mkv": _remuxed(mp4, "matroska"),
        "webm": make_clip(_SCENE, container="webm", codec="libvpx", audio="libopus"),
        "gif": make_gif(_SCENE),
        "heic": _picture("HEIF"),
        "avif": _picture("AVIF"),
    }


def _remuxed(data: bytes, container: str) -> bytes:
    """The same packets in another container (one encoding fewer to keep reproducible)."""
    buffer = io.BytesIO()
    with av.open(io.BytesIO(data)) as source, av.open(buffer, "w", format=container, options=_BIT_EXACT) as output:
        streams = {stream: output.add_stream_from_template(stream) for stream in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream]
                output.mux(packet)
    return buffer.getvalue()


def iso_units(data: bytes, start: int = 0, end: int | None = None, parents: tuple[Unit, ...] = ()) -> list[Unit]:
    """Every box of an ISO base media file, nested ones included, in file order."""
    end = len(data) if end is None else end
    units, position = [], start
    while position + 8 <= end:
        size, kind, header = int.from_bytes(data[position : position + 4], "big"), data[position + 4 : position + 8], 8
        if size == 1 and position + 16 <= end:
            size, header = int.from_bytes(data[position + 8 : position + 16], "big"), 16
        if size < header or position + size > end:
            break
        unit = Unit(position, position if header == 8 else position + 8, 4 if header == 8 else 8, size, kind, parents)
        units.append(unit)
        if kind in _ISO_CONTAINERS:
            inner = position + header + (4 if kind == b"meta" else 0)
            units += iso_units(data, inner, position + size, (*parents, unit))
        position += size
    return units


def _vint(data: bytes, position: int) -> tuple[int, int]:
    """An EBML variable-length integer at ``position``: its value (the length marker removed) and its length."""
    first = data[position]
    length = 9 - first.bit_length() if first else 9
    if length > 8 or position + length > len(data):
        raise ValueError("not a variable-length integer")
    value = int.from_bytes(data[position : position + length], "big") & ((1 << (7 * length)) - 1)
    return value, length


def ebml_units(data: bytes, start: int = 0, end: int | None = None, parents: tuple[Unit, ...] = ()) -> list[Unit]:
    """Every element of a Matroska or WebM file, nested ones included, in file order."""
    end = len(data) if end is None else end
    units, position = [], start
    while position < end:
        try:
            _, id_length = _vint(data, position)
            size, size_length = _vint(data, position + id_length)
        except (ValueError, IndexError):
            break
        element = int.from_bytes(data[position : position + id_length], "big")
        header = id_length + size_length
        unknown = size == (1 << (7 * size_length)) - 1
        total = end - position if unknown else header + size
        if position + total > end:
            break
        unit = Unit(position, position + id_length, size_length, total, element, parents)
        units.append(unit)
        if element in _EBML_MASTERS:
            units += ebml_units(data, position + header, position + total, (*parents, unit))
        position += total
    return units


def units_of(data: bytes) -> list[Unit]:
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return ebml_units(data)
    if data[:3] == b"GIF":
        return _gif_frames(data)
    return iso_units(data)


def _gif_frames(data: bytes) -> list[Unit]:
    """Each frame of a GIF written by Pillow, from its graphic control extension to the next one (no size field)."""
    starts = [match.start() for match in re.finditer(rb"!\xf9\x04", data)] + [len(data) - 1]
    return [Unit(a, a + 3, 1, b - a, b"frame", ()) for a, b in itertools.pairwise(starts)]


def _is_ebml(data: bytes) -> bool:
    return data[:4] == b"\x1a\x45\xdf\xa3"


def _write_size(data: bytearray, unit: Unit, size: int) -> None:
    """Set a unit's size field (for an element, its content's size), clamped to what the field can hold."""
    if _is_ebml(data):
        limit = (1 << (7 * unit.size_bytes)) - 1
        value = min(max(size - (unit.size_at - unit.start) - unit.size_bytes, 0), limit)
        data[unit.size_at : unit.size_at + unit.size_bytes] = (value | (1 << (7 * unit.size_bytes))).to_bytes(
            unit.size_bytes, "big"
        )
    else:
        limit = (1 << (8 * unit.size_bytes)) - 1
        data[unit.size_at : unit.size_at + unit.size_bytes] = min(max(size, 0), limit).to_bytes(unit.size_bytes, "big")


def _truncated(data: bytearray, rng: random.Random) -> bytearray:
    return data[: rng.randrange(1, len(data))]


def _header_bytes(data: bytearray, rng: random.Random) -> bytearray:
    for _ in range(4):
        data[rng.randrange(min(256, len(data)))] = rng.randrange(256)
    return data


def _bit_flips(data: bytearray, rng: random.Random) -> bytearray:
    for _ in range(8):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return data


def _sizes(data: bytearray, rng: random.Random) -> bytearray:
    """An extreme or off-by-one size: a box's or element's, or a GIF's screen or frame extent."""
    units = units_of(bytes(data))
    if data[:3] == b"GIF":
        frame = rng.choice(units)
        field = rng.choice((6, 8, *(frame.start + 9 + 2 * k for k in range(4))))  # after the frame's delay block
        data[field : field + 2] = rng.choice(_EXTREMES[:7]).to_bytes(2, "little")
        return data
    if not units:
        return _header_bytes(data, rng)
    unit = rng.choice(units)
    _write_size(data, unit, rng.choice((0, 1, 7, unit.size - 1, unit.size + 1, unit.size * 2, 2**64)))
    return data


def _timestamps(data: bytearray, rng: random.Random) -> bytearray:
    """An extreme value in a field that holds a time, a time scale, a duration or a delay."""
    units = units_of(bytes(data))
    if data[:3] == b"GIF":
        frame = rng.choice(units)
        data[frame.start + 4 : frame.start + 6] = rng.choice(_EXTREMES[:7]).to_bytes(2, "little")
        return data
    timed = [unit for unit in units if unit.kind in (_EBML_TIMES if _is_ebml(data) else _ISO_TIMES)]
    if not timed:
        return _bit_flips(data, rng)
    unit = rng.choice(timed)
    payload = unit.size_at + unit.size_bytes
    field = rng.randrange(payload, max(payload + 1, unit.start + unit.size - 3))
    data[field : field + 4] = rng.choice(_EXTREMES).to_bytes(4, "big")[: len(data[field : field + 4])]
    return data


def _streams(data: bytearray, rng: random.Random) -> bytearray:
    """A stream, track, item or frame copied or removed, the sizes of what holds it kept right."""
    units = units_of(bytes(data))
    kinds = _EBML_STREAMS if _is_ebml(data) else _ISO_STREAMS | {b"frame"}
    chosen = [unit for unit in units if unit.kind in kinds] or units
    if not chosen:
        return _bit_flips(data, rng)
    unit = rng.choice(chosen)
    piece = data[unit.start : unit.start + unit.size]
    copied = rng.random() < 0.5
    change = len(piece) if copied else -len(piece)
    for parent in unit.parents:
        _write_size(data, parent, parent.size + change)
    if copied:
        return data[: unit.start + unit.size] + piece + data[unit.start + unit.size :]
    return data[: unit.start] + data[unit.start + unit.size :]


_MUTATE: dict[str, Callable[[bytearray, random.Random], bytearray]] = {
    "truncated": _truncated,
    "header-bytes": _header_bytes,
    "bit-flips": _bit_flips,
    "sizes": _sizes,
    "timestamps": _timestamps,
    "streams": _streams,
}


def corpus(count: int, seed: int = 21) -> list[tuple[str, bytes]]:
    """``count`` mutated files, cycling through the seeds and the kinds of mutation; the same for the same seed."""
    rng = random.Random(seed)
    seeds = seed_files()
    names = sorted(seeds)
    cases = []
    for index in range(count):
        name = names[index % len(names)]
        mutation = MUTATIONS[index // len(names) % len(MUTATIONS)]
        mutated = _MUTATE[mutation](bytearray(seeds[name]), rng)
        cases.append((f"{name}-{mutation}-{index}", bytes(mutated)))
    return cases


def problems(isolated: Isolated, seeds: set[str]) -> list[str]:
    """What went wrong, case by case: a seed not read, an error that is not one clear refusal, a case over the time
    or memory ceiling. Empty when every file ended well."""
    found = []
    grown = False  # the peak only rises: the first case past the memory ceiling is the one that passed it
    for name, line in isolated.outcomes.items():
        outcome, message = line["outcome"], line["message"]
        if name in seeds and outcome != "ok":
            found.append(f"{name}: the unmutated file was refused: {message}")
        elif outcome != "ok" and not (outcome in REFUSALS and user_facing(message)):
            found.append(f"{name}: {outcome}: {message}")
        if line["seconds"] > CEILING_S:
            found.append(f"{name}: took {line['seconds']:.1f} s")
        if line["growth_mb"] > CEILING_MB and not grown:
            found.append(f"{name}: grew the process by {line['growth_mb']:.0f} MB")
            grown = True
    return found


def tally(isolated: Isolated) -> dict[str, Counter[str]]:
    """Outcomes counted per container (the name's first part), for a run's summary."""
    counts: dict[str, Counter[str]] = {}
    for name, line in isolated.outcomes.items():
        counts.setdefault(name.split("-")[0], Counter())[line["outcome"]] += 1
    return counts
