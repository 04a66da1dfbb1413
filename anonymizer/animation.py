"""GIF files, animated or still: every frame painted, the same timing and loop, out as GIF without metadata.

Pillow reads the frames (each composed onto the canvas, as a viewer shows it) and writes the output; the frames
go through ``tracking.FrameCoverer`` like a video's, so a face the detector misses in one frame stays covered.
Each output frame keeps its input frame's duration, and the loop count is written only when the input had one
(a GIF without it plays once). No comment, application extension or XMP of the input is carried over: the
output frames are new images made from pixels.

Limits are checked before a frame is painted: the canvas size from the header, and the frame count, which Pillow
counts by skipping over the frames' data. Pillow keeps every output frame (one palette byte a pixel) until it
writes the file, so the pixels of all frames together are capped too.
"""

from __future__ import annotations

import io
import statistics
import time
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image

from anonymizer.errors import (
    CorruptMediaError,
    EmptyInputError,
    InputTooLargeError,
    MediaTooLongError,
    TooManyPixelsError,
)
from anonymizer.options import MediaKind, Options, Result
from anonymizer.pipeline import DEFAULT_OPTIONS, face_filter, find_faces
from anonymizer.tracking import FrameCoverer, Tracker, keyframe_interval, shrunk_search
from anonymizer.video import Progress
from detectors import Detection

GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
# GIF viewers show frames with no delay (or under 20 ms) at about 10 per second; the tracker reasons in that rate.
_DEFAULT_FRAME_MS = 100


def is_gif(data: bytes) -> bool:
    return data[:6] in GIF_SIGNATURES


def anonymize_gif(data: bytes, options: Options = DEFAULT_OPTIONS, progress: Progress | None = None) -> Result:
    """The GIF with every face covered in every frame, as GIF with the same frame durations and loop."""
    start = time.perf_counter()
    timings = {"detect": 0.0}
    gif = _open(data, options)
    frames = _frame_count(gif, options)
    width, height = gif.size
    loop = gif.info.get("loop")
    transparent = "transparency" in gif.info or gif.mode in ("RGBA", "PA")
    durations = _durations_hint(gif)

    search = shrunk_search(lambda frame: find_faces(frame, options), options.detect_side)

    def timed_find(frame: np.ndarray) -> list[Detection]:
        mark = time.perf_counter()
        found = search(np.ascontiguousarray(frame[:, :, :3]) if frame.shape[2] == 4 else frame)
        timings["detect"] += time.perf_counter() - mark
        return found

    rate = 1000 / statistics.median(durations or [_DEFAULT_FRAME_MS])
    coverer: FrameCoverer[int] = FrameCoverer(
        timed_find, face_filter(options), keyframe_interval(options.detect_every, rate), Tracker.for_rate(rate)
    )
    written = 0

    def painted() -> Iterator[Image.Image]:
        nonlocal written
        for pixels, duration in _cover_all(gif, frames, transparent, coverer):
            image = Image.fromarray(pixels[:, :, [2, 1, 0, 3]] if transparent else pixels[:, :, ::-1])
            image.info["duration"] = duration
            written += 1
            if progress is not None:
                progress(written, frames)
            yield image

    output = io.BytesIO()
    sequence = painted()
    try:
        first = next(sequence)
        params = {"loop": loop} if loop is not None else {}
        first.save(output, "GIF", save_all=True, append_images=sequence, disposal=2 if transparent else 1, **params)
    except (OSError, ValueError, EOFError, SyntaxError) as error:
        raise CorruptMediaError("The GIF is damaged or truncated and cannot be decoded.") from error
    timings["total"] = time.perf_counter() - start
    return Result(
        data=output.getvalue(),
        format="GIF",
        width=width,
        height=height,
        timings=timings,
        input_format="GIF",
        kind=MediaKind.ANIMATION,
        frames=written,
        tracks=coverer.tracks,
        duration=sum(durations) / 1000,
    )


def probe_gif(data: bytes, options: Options = DEFAULT_OPTIONS) -> tuple[int, int, int, float]:
    """Width, height, frame count and seconds of a GIF, checked against the limits without decoding a frame."""
    gif = _open(data, options)
    frames = _frame_count(gif, options)
    return *gif.size, frames, sum(_durations_hint(gif)) / 1000


def _open(data: bytes, options: Options) -> Image.Image:
    if not data:
        raise EmptyInputError("The file is empty.")
    if len(data) > options.max_bytes:
        raise InputTooLargeError(
            f"The GIF is {len(data) / 2**20:.1f} MB; the limit is {options.max_bytes / 2**20:.1f} MB."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gif = Image.open(io.BytesIO(data), formats=["GIF"])
    except Image.DecompressionBombError:
        raise TooManyPixelsError("The GIF has too many pixels.") from None
    except Exception:  # whatever Pillow's reader raises on a malformed header
        raise CorruptMediaError("The GIF is damaged and cannot be read.") from None
    width, height = gif.size
    if width * height > min(options.max_frame_pixels, options.max_pixels):
        raise TooManyPixelsError(f"The GIF is {width} x {height} pixels; that is over the limit.")
    return gif


def _frame_count(gif: Image.Image, options: Options) -> int:
    try:
        frames = int(getattr(gif, "n_frames", 1))
    except Exception:
        raise CorruptMediaError("The GIF is damaged or truncated and cannot be read.") from None
    if frames > options.max_frames:
        raise MediaTooLongError(f"The GIF has {frames} frames; the limit is {options.max_frames}.")
    width, height = gif.size
    if frames * width * height > options.max_animation_pixels:
        raise MediaTooLongError(
            f"The GIF has {frames} frames of {width} x {height} pixels; that is more than can be processed."
        )
    return frames


def _durations_hint(gif: Image.Image) -> list[int]:
    """Each frame's display time in ms as viewers use it (the header's, or 100 ms for none or under 20 ms)."""
    durations = []
    for index in range(getattr(gif, "n_frames", 1)):
        try:
            gif.seek(index)
        except EOFError:
            break
        durations.append(_shown_ms(gif.info.get("duration")))
    gif.seek(0)
    return durations


def _shown_ms(duration: object) -> int:
    value = int(duration) if isinstance(duration, int | float) else 0
    return value if value >= 20 else _DEFAULT_FRAME_MS


def _cover_all(
    gif: Image.Image, frames: int, transparent: bool, coverer: FrameCoverer[int]
) -> Iterator[tuple[np.ndarray, int]]:
    """Painted BGR(A) frames with their durations in ms (the input's own value), in order."""
    mode = "RGBA" if transparent else "RGB"
    for index in range(frames):
        gif.seek(index)
        duration = int(gif.info.get("duration") or 0)
        rgb = np.asarray(gif.convert(mode))
        pixels = np.ascontiguousarray(rgb[:, :, [2, 1, 0, 3]] if transparent else rgb[:, :, ::-1])
        yield from coverer.push(pixels, duration)
    yield from coverer.finish()
