"""Real-photo fixtures with known face boxes, built from scikit-image's astronaut photo, and the textured
backgrounds synthetic photos and clips are pasted on."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from skimage import data

# Eileen Collins' face in skimage.data.astronaut() (512 x 512), hairline to chin, measured with
# Haar, YuNet and the ResNet SSD, which agree within a few pixels.
ASTRONAUT_FACE = (178, 60, 92, 116)


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


def astronaut_bgr() -> np.ndarray:
    """The astronaut photo as OpenCV's BGR uint8."""
    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def face_crop(margin: float = 0.35) -> tuple[np.ndarray, Box]:
    """The astronaut's head with some context around it, and the face box inside the crop."""
    x, y, w, h = ASTRONAUT_FACE
    mx, my = int(w * margin), int(h * margin)
    x0, y0 = max(0, x - mx), max(0, y - my)
    crop = astronaut_bgr()[y0 : y + h + my, x0 : x + w + mx].copy()
    return crop, Box(x - x0, y - y0, w, h)


def selfie(fill: float, height: int) -> tuple[np.ndarray, Box]:
    """The astronaut as a selfie: her face filling ``fill`` of the frame's height, the frame 0.8 times as wide as
    tall, centred on the face and scaled to ``height`` px; also the face box in it."""
    x, y, w, h = ASTRONAUT_FACE
    frame_h = round(h / fill)
    frame_w = round(frame_h * 0.8)
    left, top = round(x + w / 2 - frame_w / 2), round(y + h / 2 - frame_h / 2)
    crop = astronaut_bgr()[top : top + frame_h, left : left + frame_w]
    scale = height / frame_h
    image = cv2.resize(crop, (round(frame_w * scale), height), interpolation=cv2.INTER_CUBIC)
    return image, Box(round((x - left) * scale), round((y - top) * scale), round(w * scale), round(h * scale))


def textured(width: int, height: int, seed: int, cell: int = 64, grain: int = 12) -> np.ndarray:
    """A smooth colour texture (one random colour per ``cell`` px, interpolated) with +-``grain`` of fine noise, so
    files compress like photos rather than like flat fills."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 215, (max(2, height // cell), max(2, width // cell), 3), dtype=np.uint8)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-grain, grain + 1, (height, width, 1), dtype=np.int16)
    return np.clip(smooth.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def composite(
    canvas_size: tuple[int, int], faces: list[tuple[int, int, int]], background: int = 90
) -> tuple[np.ndarray, list[Box]]:
    """A canvas (width, height) with the astronaut's head pasted at (x, y) with face height h each.

    Returns the image and the face boxes where they were pasted, so tests know the truth.
    """
    width, height = canvas_size
    canvas = np.full((height, width, 3), background, np.uint8)
    crop, face = face_crop()
    boxes = []
    for x, y, face_height in faces:
        scale = face_height / face.h
        resized = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        rh, rw = resized.shape[:2]
        x1, y1 = min(width, x + rw), min(height, y + rh)
        canvas[y:y1, x:x1] = resized[: y1 - y, : x1 - x]
        boxes.append(
            Box(x + round(face.x * scale), y + round(face.y * scale), round(face.w * scale), round(face.h * scale))
        )
    return canvas, boxes


def rotate_image_and_boxes(image: np.ndarray, boxes: list[Box], quarter_turns: int) -> tuple[np.ndarray, list[Box]]:
    """Rotate by 90 degrees clockwise ``quarter_turns`` times, moving the boxes with the pixels."""
    out, moved = image, list(boxes)
    for _ in range(quarter_turns % 4):
        height = out.shape[0]
        out = cv2.rotate(out, cv2.ROTATE_90_CLOCKWISE)
        moved = [Box(height - b.y - b.h, b.x, b.h, b.w) for b in moved]
    return out, moved


def coverage(box: Box, painted: np.ndarray) -> float:
    """Share of the box whose pixels are marked in the boolean ``painted`` mask."""
    region = painted[box.y : box.y + box.h, box.x : box.x + box.w]
    return float(region.mean()) if region.size else 0.0


def jpeg(image_bgr: np.ndarray, quality: int = 95) -> bytes:
    """BGR pixels as a JPEG file, as a phone or a user would send them."""
    ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return encoded.tobytes()


def png(image_bgr: np.ndarray) -> bytes:
    """BGR pixels as a lossless PNG file."""
    ok, encoded = cv2.imencode(".png", image_bgr)
    assert ok
    return encoded.tobytes()
