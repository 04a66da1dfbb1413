"""Synthetic phone clips for the video benchmarks: the astronaut's face pasted twice on a textured background,
both faces moving, with sound, encoded with PyAV as a phone would (H.264 in MP4, AAC); every face's box is known
in every frame. Made from scikit-image's astronaut only (never from the labelled evaluation photos)."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from testing.images import Box, face_crop, textured

SAMPLE_RATE = 48_000


@dataclass(frozen=True)
class ClipSpec:
    """A clip's size, length and frame rate; two faces of ``face_height`` px wander across it, one in each half."""

    width: int
    height: int
    seconds: float
    fps: int = 30
    face_height: int | None = None

    @property
    def frames(self) -> int:
        return round(self.seconds * self.fps)

    @property
    def faces_px(self) -> int:
        return self.face_height or max(48, self.height // 6)


def frames(spec: ClipSpec, seed: int = 3) -> Iterator[tuple[np.ndarray, list[Box]]]:
    """Each frame (BGR) and the two faces' boxes in it: the camera pans slowly, the faces move on their own paths."""
    pan = spec.width // 4
    background = textured(spec.width + pan, spec.height, seed, cell=48, grain=10)
    crop, face = face_crop()
    scale = spec.faces_px / face.h
    head = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    head_h, head_w = head.shape[:2]
    fx, fy, fw, fh = (round(v * scale) for v in (face.x, face.y, face.w, face.h))
    for index in range(spec.frames):
        t = index / spec.fps
        shift = round(pan * (0.5 + 0.5 * math.sin(t * 0.7)))
        canvas = background[:, shift : shift + spec.width].copy()
        boxes = []
        for number, (speed, phase) in enumerate(((0.9, 0.0), (1.3, 2.0))):
            # Each face keeps to its half of the frame: the heads are pasted as rectangles, and one pasted over the
            # other would hide part of a face whose box still counts as a face to cover.
            half = spec.width // 2
            x = number * half + round((half - head_w) * (0.5 + 0.45 * math.sin(t * speed + phase)))
            y = round((spec.height - head_h) * (0.5 + 0.4 * math.cos(t * speed * 0.8 + phase + number)))
            canvas[y : y + head_h, x : x + head_w] = head
            boxes.append(Box(x + fx, y + fy, fw, fh))
        yield canvas, boxes


def make_clip(spec: ClipSpec, seed: int = 3) -> bytes:
    """The clip as a phone's MP4: H.264 at a phone's quality, AAC sound, 30 fps timestamps."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as output:
        video = output.add_stream("libx264", rate=spec.fps)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        video.options = {"crf": "23", "preset": "ultrafast"}
        sound = output.add_stream("aac", rate=SAMPLE_RATE)
        for pixels, _ in frames(spec, seed):
            for packet in video.encode(av.VideoFrame.from_ndarray(pixels, format="bgr24")):
                output.mux(packet)
        for packet in video.encode():
            output.mux(packet)
        samples = int(SAMPLE_RATE * spec.seconds)
        tone = (0.2 * np.sin(np.arange(samples) * 2 * math.pi * 440 / SAMPLE_RATE)).astype(np.float32)[None]
        audio = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        audio.sample_rate, audio.pts, audio.time_base = SAMPLE_RATE, 0, Fraction(1, SAMPLE_RATE)
        for packet in [*sound.encode(audio), *sound.encode()]:
            output.mux(packet)
    return buffer.getvalue()
