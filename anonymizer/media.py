"""Any input the project reads, told apart by its first bytes: a still image, a GIF or a video.

``anonymize_media`` is the one call for callers that take whatever a user sends (the command line; the bot for
videos and files): it hands still images to ``pipeline.anonymize`` (JPEG, PNG, WebP, BMP, HEIC, AVIF), GIFs to
``animation`` and videos to ``video``, each with its own safe decoding. ``probe`` reads only headers, so a caller
can refuse or price an input before any frame is decoded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from anonymizer import animation, video
from anonymizer.codec import image_header, output_format
from anonymizer.errors import ChoiceError
from anonymizer.formats import is_gif
from anonymizer.options import MAX_FRAME_RATE, MediaKind, Options, Result
from anonymizer.pipeline import DEFAULT_OPTIONS, anonymize
from anonymizer.tracking import search_interval
from anonymizer.video import Progress


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What an input's header says: its kind, format, size and, for a GIF or video, frames and duration.

    A video's cost has two parts a caller can price from these alone: decoding, painting and encoding touch every
    pixel of every frame (``pixels``), and the detector runs once per keyframe (``searches``) on a frame shrunk to
    ``Options.detect_side``, so at a nearly fixed cost whatever the video's resolution.
    """

    kind: MediaKind
    format: str
    width: int
    height: int
    frames: int = 1
    duration: float = 0.0
    has_audio: bool = False
    frame_rate: float = 0.0

    @property
    def pixels(self) -> int:
        return self.width * self.height * self.frames

    def searches(self, options: Options = DEFAULT_OPTIONS) -> int:
        """How many frames the detector will look at (a still image: one): one every search interval of the
        frames' time, which is at least a frame every 1/MAX_FRAME_RATE seconds, and the last frame."""
        if self.kind == MediaKind.IMAGE:
            return 1
        seconds = max(self.duration, self.frames / MAX_FRAME_RATE)
        return min(self.frames, math.ceil(seconds / search_interval(options.detect_every))) + 1


def kind_of(data: bytes) -> MediaKind:
    """The kind of input from its signature; whatever is neither GIF nor video is tried as an image."""
    if is_gif(data):
        return MediaKind.ANIMATION
    if video.container_format(data) is not None:
        return MediaKind.VIDEO
    return MediaKind.IMAGE


def probe(data: bytes, options: Options = DEFAULT_OPTIONS) -> MediaInfo:
    """The header's facts, after the limits of ``options`` are checked; no frame or pixel is decoded.

    Raises the same ``AnonymizerError`` subclasses as ``anonymize_media`` would for limits and unreadable headers.
    """
    kind = kind_of(data)
    if kind == MediaKind.VIDEO:
        info = video.probe_video(data, options)
        return MediaInfo(
            MediaKind.VIDEO,
            info.format,
            info.width,
            info.height,
            info.frames,
            info.duration,
            info.has_audio,
            info.frame_rate,
        )
    if kind == MediaKind.ANIMATION:
        width, height, frames, duration = animation.probe_gif(data, options)
        return MediaInfo(
            MediaKind.ANIMATION, "GIF", width, height, frames, duration, frame_rate=frames / duration if duration else 0
        )
    image_format, width, height = image_header(data, max_bytes=options.max_bytes, max_pixels=options.max_pixels)
    return MediaInfo(MediaKind.IMAGE, image_format, width, height)


def output_format_of(info: MediaInfo) -> str:
    """The format ``anonymize_media`` writes an input of this header in (a video as MP4, a HEIC photo as JPEG)."""
    if info.kind == MediaKind.VIDEO:
        return "MP4"
    return output_format(info.format)


def anonymize_media(data: bytes, options: Options = DEFAULT_OPTIONS, progress: Progress | None = None) -> Result:
    """Every face covered in a still image, GIF or video; ``Result.kind`` and ``Result.format`` say what came out.

    ``progress(done, total)`` is called after each frame of a GIF or video (a still image calls it once, at the
    end). Raises ``AnonymizerError`` subclasses for refused input (``MediaTooLongError`` for a video or GIF over
    the frame or duration limits, ``CorruptMediaError`` for one that cannot be decoded to its end, ``ChoiceError``
    for faces to keep or regions to add on a GIF or video: its faces are not numbered, so no choice can name them).
    """
    kind = kind_of(data)
    if kind != MediaKind.IMAGE and (options.keep or options.add or options.outline):
        raise ChoiceError("Choosing faces and adding regions work on photos only, not on GIFs or videos.")
    if kind == MediaKind.VIDEO:
        return video.anonymize_video(data, options, progress)
    if kind == MediaKind.ANIMATION:
        return animation.anonymize_gif(data, options, progress)
    result = anonymize(data, options)
    if progress is not None:
        progress(1, 1)
    return result
