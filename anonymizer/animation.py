"""GIF files, animated or still: every frame painted, the same timing and loop, out as GIF without metadata.

Pillow reads the frames (each composed onto the canvas, as a viewer shows it) and writes the output; the frames
go through ``tracking.FrameCoverer`` like a video's, so a face the detector misses in one frame stays covered.
Each output frame keeps its input frame's duration, and the loop count is written only when the input had one
(a GIF without it plays once). No comment, application extension or XMP of the input is carried over: the
output frames are new images made from pixels.

Limits are checked before a frame is decoded, from the GIF's own blocks read here (``_blocks``): every frame's
extent and offset, not just the screen size the header gives, since Pillow grows the picture to fit any frame that
reaches past it (a header saying 1 x 1 can be followed by 6000 x 6000 frames). Pillow keeps every output frame
(one palette byte a pixel) until it writes the file, so the pixels of all frames together are capped too.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from anonymizer.errors import (
    CorruptMediaError,
    EmptyInputError,
    MediaTooLongError,
    too_large,
    too_many_frames,
    too_many_pixels,
)
from anonymizer.guards import MAX_HEADER_UNITS, MAX_STRAY_HEADER_BYTES, PILLOW_BOMB_ERRORS, pillow_pixel_limit
from anonymizer.options import MediaKind, Options, Result
from anonymizer.pipeline import DEFAULT_OPTIONS, face_filter, find_faces
from anonymizer.tracking import FrameCoverer, search_interval, shrunk_search
from anonymizer.video import Progress
from detectors import Detection

# GIF viewers show frames with no delay (or under 20 ms) at about 10 per second; faces are followed in that time.
_DEFAULT_FRAME_MS = 100
_MIN_SHOWN_MS = 20
_EXTENSION, _IMAGE, _TRAILER = 0x21, 0x2C, 0x3B
_GRAPHIC_CONTROL = 0xF9
# Encoders cut image data into sub-blocks of 255 bytes; a file cut into far smaller ones (or padded with empty
# extensions) only keeps a reader busy, so the blocks read are capped by the file's size.
_BYTES_PER_BLOCK = 128
_BLOCKS_PER_FRAME = 4


@dataclass(frozen=True, slots=True)
class _Gif:
    """What a GIF's blocks say: the picture's size once every frame is on it, and each frame's delay in ms."""

    width: int
    height: int
    delays: list[int]

    @property
    def frames(self) -> int:
        return len(self.delays)

    @property
    def shown_ms(self) -> list[int]:
        """Each frame's display time as viewers use it (its delay, or 100 ms for none or under 20 ms)."""
        return [delay if delay >= _MIN_SHOWN_MS else _DEFAULT_FRAME_MS for delay in self.delays]

    @property
    def duration(self) -> float:
        return sum(self.shown_ms) / 1000


def anonymize_gif(data: bytes, options: Options = DEFAULT_OPTIONS, progress: Progress | None = None) -> Result:
    """The GIF with every face covered in every frame, as GIF with the same frame durations and loop."""
    start = time.perf_counter()
    timings = {"detect": 0.0}
    layout = _checked(data, options)
    search = shrunk_search(lambda frame: find_faces(frame, options), options.detect_side)

    def timed_find(frame: np.ndarray) -> list[Detection]:
        mark = time.perf_counter()
        found = search(np.ascontiguousarray(frame[:, :, :3]) if frame.shape[2] == 4 else frame)
        timings["detect"] += time.perf_counter() - mark
        return found

    coverer: FrameCoverer[int] = FrameCoverer(
        timed_find,
        face_filter(options),
        search_interval(options.detect_every),
        max_held_frames=options.max_held_frames,
        max_held_bytes=options.max_held_bytes,
    )
    output = io.BytesIO()
    written = 0
    with pillow_pixel_limit(layout.width * layout.height):
        gif = _open(data)
        loop = gif.info.get("loop")
        transparent = "transparency" in gif.info or gif.mode in ("RGBA", "PA")

        def painted() -> Iterator[Image.Image]:
            nonlocal written
            for pixels, duration in _cover_all(gif, layout, transparent, coverer):
                image = Image.fromarray(pixels[:, :, [2, 1, 0, 3]] if transparent else pixels[:, :, ::-1])
                image.info["duration"] = duration
                written += 1
                if progress is not None:
                    progress(written, layout.frames)
                yield image

        sequence = painted()
        try:
            first = next(sequence)
            params = {"loop": loop} if loop is not None else {}
            disposal = 2 if transparent else 1
            first.save(output, "GIF", save_all=True, append_images=sequence, disposal=disposal, **params)
        except (OSError, ValueError, EOFError, SyntaxError, *PILLOW_BOMB_ERRORS) as error:
            raise CorruptMediaError("The GIF is damaged or truncated and cannot be decoded.") from error
    timings["total"] = time.perf_counter() - start
    return Result(
        data=output.getvalue(),
        format="GIF",
        width=layout.width,
        height=layout.height,
        timings=timings,
        input_format="GIF",
        kind=MediaKind.ANIMATION,
        frames=written,
        tracks=coverer.tracks,
        duration=layout.duration,
    )


def probe_gif(data: bytes, options: Options = DEFAULT_OPTIONS) -> tuple[int, int, int, float]:
    """Width, height, frame count and seconds of a GIF, checked against the limits without decoding a frame."""
    layout = _checked(data, options)
    return layout.width, layout.height, layout.frames, layout.duration


def _checked(data: bytes, options: Options) -> _Gif:
    """The GIF's layout from its blocks, after every limit is checked against it."""
    if not data:
        raise EmptyInputError("The file is empty.")
    if len(data) > options.max_bytes:
        raise too_large("GIF", len(data), options.max_bytes)
    layout = _blocks(data, options.max_frames)
    if layout.frames > options.max_frames:
        raise too_many_frames("GIF", None, options.max_frames)  # the walk stops one frame past the limit
    max_pixels = min(options.max_frame_pixels, options.max_pixels)
    if layout.width * layout.height > max_pixels:
        raise too_many_pixels("GIF", layout.width, layout.height, max_pixels)
    if layout.frames * layout.width * layout.height > options.max_animation_pixels:
        raise MediaTooLongError(
            f"The GIF has {layout.frames} frames of {layout.width} x {layout.height} pixels; "
            "that is more than can be processed."
        )
    return layout


def _blocks(data: bytes, max_frames: int) -> _Gif:
    """Walk the GIF's blocks as Pillow will (no pixel decoded): each frame's extent and delay, up to one frame past
    ``max_frames``. Like Pillow, the walk ends at the trailer or the end of the bytes and steps over stray bytes.
    """
    if len(data) < 13:
        raise CorruptMediaError("The GIF is damaged and cannot be read.")
    width, height = int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    position = 13 + _colour_table_size(data[10])
    delays: list[int] = []
    delay = 0
    budget = _Budget(MAX_HEADER_UNITS + _BLOCKS_PER_FRAME * max_frames + len(data) // _BYTES_PER_BLOCK)
    while position < len(data) and len(delays) <= max_frames:
        introducer = data[position]
        if introducer == _TRAILER:
            break
        if introducer == _EXTENSION:
            block = data[position + 1 : position + 6]
            if len(block) == 5 and block[0] == _GRAPHIC_CONTROL and block[1] >= 3:
                delay = 10 * int.from_bytes(block[3:5], "little")
            position = _past_sub_blocks(data, position + 2, budget)
        elif introducer == _IMAGE:
            descriptor = data[position + 1 : position + 10]
            if len(descriptor) < 9:
                break
            left, top, frame_width, frame_height = (
                int.from_bytes(descriptor[i : i + 2], "little") for i in (0, 2, 4, 6)
            )
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            delays.append(delay)
            delay = 0
            position = _past_sub_blocks(data, position + 11 + _colour_table_size(descriptor[8]), budget)
        else:
            position += 1
            budget.stray()
    if not delays:
        raise CorruptMediaError("The GIF is damaged: it has no frame.")
    return _Gif(width, height, delays)


def _colour_table_size(flags: int) -> int:
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _past_sub_blocks(data: bytes, position: int, budget: _Budget) -> int:
    """Where the run of data sub-blocks starting at ``position`` ends (past its empty terminator)."""
    while position < len(data):
        size = data[position]
        budget.block()
        position += 1 + size
        if size == 0:
            break
    return position


class _Budget:
    """Counts the blocks and stray bytes a walk steps over; a file with more is padded to keep readers busy."""

    def __init__(self, blocks: int) -> None:
        self.blocks, self.stray_bytes = blocks, MAX_STRAY_HEADER_BYTES

    def block(self) -> None:
        self.blocks -= 1
        if self.blocks < 0:
            raise CorruptMediaError("The GIF is malformed: it is padded out with empty blocks.")

    def stray(self) -> None:
        self.stray_bytes -= 1
        if self.stray_bytes < 0:
            raise CorruptMediaError("The GIF is malformed: it is padded out with junk between its blocks.")


def _open(data: bytes) -> Image.Image:
    """Pillow's GIF reader on the bytes (its pixel limit set by the caller)."""
    try:
        return Image.open(io.BytesIO(data), formats=["GIF"])
    except PILLOW_BOMB_ERRORS:
        raise CorruptMediaError("The GIF is damaged: its frames are larger than its blocks say.") from None
    except Exception:  # whatever Pillow's reader raises on a malformed header
        raise CorruptMediaError("The GIF is damaged and cannot be read.") from None


def _cover_all(
    gif: Image.Image, layout: _Gif, transparent: bool, coverer: FrameCoverer[int]
) -> Iterator[tuple[np.ndarray, int]]:
    """Painted BGR(A) frames, all of the layout's size, with their durations in ms (the input's own value)."""
    mode = "RGBA" if transparent else "RGB"
    shown_at = 0
    for index, (delay, shown_ms) in enumerate(zip(layout.delays, layout.shown_ms, strict=True)):
        try:
            gif.seek(index)
            rgb = np.asarray(gif.convert(mode))
        except Exception as error:  # whatever Pillow's reader raises on a damaged frame (IndexError, OSError...)
            raise CorruptMediaError("The GIF is damaged or truncated and cannot be decoded.") from error
        pixels = np.ascontiguousarray(rgb[:, :, [2, 1, 0, 3]] if transparent else rgb[:, :, ::-1])
        yield from coverer.push(_on_canvas(pixels, layout), shown_at / 1000, delay)
        shown_at += shown_ms
    yield from coverer.finish()


def _on_canvas(pixels: np.ndarray, layout: _Gif) -> np.ndarray:
    """The frame on the whole picture: Pillow's canvas grows only when it reaches a frame larger than it."""
    pad_y, pad_x = layout.height - pixels.shape[0], layout.width - pixels.shape[1]
    if pad_y > 0 or pad_x > 0:
        pixels = np.pad(pixels, ((0, max(0, pad_y)), (0, max(0, pad_x)), (0, 0)))
    return pixels
