"""Real video and GIF files made in the tests with PyAV and Pillow, from the astronaut's face at known places."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
from PIL import Image

from testing.images import Box, composite

# Tags a phone writes into a MOV/MP4: its position, the time and the camera. None may come out again.
PHONE_TAGS = {
    "location": "+48.8584+002.2945/",
    "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
    "com.apple.quicktime.make": "SecretPhone",
    "com.apple.quicktime.model": "SecretPhone 15",
    "creation_time": "2026-01-01T10:00:00Z",
}
SECRET_VALUES = ("48.8584", "SecretPhone", "2026-01-01")


@dataclass(frozen=True)
class Scene:
    """Frames of ``size`` (width, height) with a face at (x, y, face height) per frame, moving as listed."""

    size: tuple[int, int] = (192, 144)
    faces: Sequence[Sequence[tuple[int, int, int]]] = field(
        default_factory=lambda: [[(20 + 3 * i, 12, 64)] for i in range(16)]
    )

    def frames(self) -> list[tuple[np.ndarray, list[Box]]]:
        return [composite(self.size, list(faces)) for faces in self.faces]


def rotated_for_storage(upright: np.ndarray, rotation: int) -> np.ndarray:
    """The pixels a phone stores for a frame shown ``rotation`` degrees counter-clockwise from them."""
    return np.ascontiguousarray(np.rot90(upright, -(rotation // 90)))


def make_clip(
    scene: Scene | None = None,
    *,
    container: str = "mov",
    codec: str = "libx264",
    audio: str | None = "aac",
    rotation: int = 0,
    tags: dict[str, str] | None = None,
    frame_ms: Sequence[int] | None = None,
    rate: int = 30,
    sound_seconds: float | None = None,
    reproducible: bool = False,
) -> bytes:
    """A video file of ``scene``: stored turned by ``rotation`` with the display matrix saying so, optional sound.

    ``frame_ms`` gives each frame's own duration (variable frame rate, millisecond timestamps); else ``rate`` frames a
    second, in the header and in the timestamps alike. The sound lasts as long as the picture, or ``sound_seconds``.
    ``reproducible`` makes the same bytes on every call (a fuzzing corpus is built from them).
    """
    scene = scene or Scene()
    frames = [pixels for pixels, _ in scene.frames()]
    buffer = io.BytesIO()
    # Bit-exact: the same file every time (Matroska's muxer otherwise draws random segment and track ids).
    options = {"fflags": "+bitexact"} | ({"movflags": "use_metadata_tags"} if container in ("mov", "mp4") else {})
    output = av.open(buffer, "w", format=container, options=options)
    output.metadata.update(tags or {})
    stored = rotated_for_storage(frames[0], rotation)
    video = output.add_stream(codec, rate=rate)
    video.height, video.width = stored.shape[:2]
    video.pix_fmt = "yuv420p"
    if codec == "libx264" and reproducible:
        video.options = {"preset": "ultrafast"}  # x264's slower presets do not write the same bytes twice
    time_base = Fraction(1, 1000) if frame_ms else Fraction(1, rate)
    video.codec_context.time_base = time_base
    for key, value in (tags or {}).items():
        video.metadata[key] = value
    if rotation:
        video.set_display_rotation(rotation)
    sound = output.add_stream(audio, rate=48000) if audio else None
    if sound is not None:
        # As a phone's encoder, FFmpeg's writes no name of its own into the sound (which may be copied as it is).
        sound.codec_context.flags |= av.codec.context.Flags.bitexact
    pts = 0
    for index, pixels in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(rotated_for_storage(pixels, rotation), format="bgr24")
        frame.pts, frame.time_base = pts, time_base
        pts += frame_ms[index % len(frame_ms)] if frame_ms else 1
        for packet in video.encode(frame):
            output.mux(packet)
    for packet in video.encode():
        output.mux(packet)
    if sound is not None:
        seconds = float(pts * time_base) if sound_seconds is None else sound_seconds
        tone = (0.3 * np.sin(np.arange(int(48000 * seconds)) / 8)).astype(np.float32)[None]
        samples = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        samples.sample_rate, samples.pts = 48000, 0
        for packet in [*sound.encode(samples), *sound.encode()]:
            output.mux(packet)
    output.close()
    return buffer.getvalue()


def decoded_frames(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data)) as container:
        return list(container.decode(video=0))


def bgr_frames(data: bytes) -> list[np.ndarray]:
    return list(iter_bgr_frames(data))


def iter_bgr_frames(data: bytes) -> Iterator[np.ndarray]:
    """The frames one at a time, for videos too long to hold decoded."""
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="bgr24")


def every_tag(data: bytes) -> dict[str, str]:
    """All container and stream tags of a video file, stream tags prefixed by the stream's index."""
    with av.open(io.BytesIO(data)) as container:
        tags = dict(container.metadata)
        for stream in container.streams:
            tags.update({f"{stream.index}:{key}": value for key, value in stream.metadata.items()})
    return tags


def make_gif(
    scene: Scene | None = None, durations: Sequence[int] = (60, 120), loop: int | None = 0, **params: object
) -> bytes:
    """An animated GIF of ``scene`` with those frame durations (cycled) and loop count (None: no loop block)."""
    scene = scene or Scene()
    images = [Image.fromarray(np.ascontiguousarray(pixels[:, :, ::-1])) for pixels, _ in scene.frames()]
    buffer = io.BytesIO()
    timing = [durations[i % len(durations)] for i in range(len(images))]
    extra = {"loop": loop} if loop is not None else {}
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=timing, **extra, **params)
    return buffer.getvalue()


def gif_frames(data: bytes) -> list[tuple[np.ndarray, int]]:
    """Each frame of a GIF as BGR with its duration in ms."""
    image = Image.open(io.BytesIO(data))
    frames = []
    for index in range(image.n_frames):
        image.seek(index)
        frames.append((np.asarray(image.convert("RGB"))[:, :, ::-1].copy(), image.info.get("duration", 0)))
    return frames


def changed(before: np.ndarray, after: np.ndarray, box: Box) -> float:
    """Mean absolute change over a face box (0-255): high when the face was painted over."""
    region = (slice(box.y, box.y + box.h), slice(box.x, box.x + box.w))
    return float(np.abs(after[region].astype(int) - before[region].astype(int)).mean())
