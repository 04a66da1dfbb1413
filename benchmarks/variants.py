"""Photos as people send them, made from a labelled set with every box carried through the change: the suite.

A labelled set is mostly crowds and meetings photographed upright in good light; a bot gets selfies, portraits,
tilted phones, dim rooms, black-and-white pictures and photos Telegram has already shrunk. Each variant turns one
labelled photo into the cases it stands for (a close-up variant makes one case per large face), each with the
faces that must be covered and the don't-care regions, and the file the pipeline is given. Everything is
deterministic (noise is seeded by the photo's name), so a case can be made again to show what was missed.

Where a variant is about one face (close-ups, faces cut by the border), only that face counts; the other labelled
faces in its frame become don't-care regions, so the variant's figures measure exactly what it is named for.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from anonymizer.codec import encode_image
from benchmarks.metrics import as_boxes

# Close-ups are made of faces at least this tall in the labelled photo, so the face is real detail, not upscaled mush.
CLOSEUP_MIN_FACE = 120
# A selfie's frame: 0.8 times as wide as tall, centred on the face.
CLOSEUP_ASPECT = 0.8
CLOSEUP_FILLS = (65, 85)
CLOSEUP_HEIGHTS = (400, 1280, 2560)
TILT_DEGREES = 25
DARK_GAMMA = 2.5
DARK_NOISE_SIGMA = 4.0
# What the Bot API hands a bot for a photo: longest side 1280 px, recompressed as JPEG.
TELEGRAM_SIDE = 1280
TELEGRAM_QUALITY = 80
# Faces cut in half by the photo's edge: faces at least this tall, so that half a face is still a face to a viewer.
BORDER_MIN_FACE = 48
# A face or don't-care box keeps counting as a face in a crop only if this share of it is still in the frame.
VISIBLE_SHARE = 0.6


@dataclass(frozen=True)
class Case:
    """One photo the pipeline is given: its file, its pixels as encoded, and the labels carried through."""

    name: str
    data: bytes
    shape: tuple[int, int]
    faces: np.ndarray
    ignore: np.ndarray


Variant = Callable[[str, np.ndarray, np.ndarray, np.ndarray], Iterator[Case]]


def _png(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Case:
    return Case(name, encode_image(image, "PNG"), image.shape[:2], as_boxes(faces), as_boxes(ignore))


def upright(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Iterator[Case]:
    """The labelled photo itself."""
    yield _png(name, image, faces, ignore)


def rotate_boxes(boxes: np.ndarray, size_hw: tuple[int, int], quarter_turns: int) -> np.ndarray:
    """(x, y, w, h) boxes of an image of ``size_hw`` moved with it as it turns 90 degrees clockwise, k times."""
    boxes = as_boxes(boxes)
    height, width = size_hw
    for _ in range(quarter_turns % 4):
        boxes = np.stack([height - boxes[:, 1] - boxes[:, 3], boxes[:, 0], boxes[:, 3], boxes[:, 2]], axis=1)
        height, width = width, height
    return boxes


def turned(degrees: int) -> Variant:
    """The photo stored turned clockwise by a quarter turn or more, with no orientation tag to undo it."""
    quarter_turns = degrees // 90

    def variant(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Iterator[Case]:
        size = image.shape[:2]
        rotated = np.ascontiguousarray(np.rot90(image, -quarter_turns))
        yield _png(name, rotated, rotate_boxes(faces, size, quarter_turns), rotate_boxes(ignore, size, quarter_turns))

    variant.__doc__ = turned.__doc__
    return variant


def crop_boxes(
    boxes: np.ndarray, left: float, top: float, scale: float, size_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes moved into a crop starting at (left, top), scaled by ``scale`` and cut to the crop's ``size_hw``;
    also the share of each box that is still inside."""
    boxes = as_boxes(boxes)
    height, width = size_hw
    x1 = (boxes[:, 0] - left) * scale
    y1 = (boxes[:, 1] - top) * scale
    x2 = x1 + boxes[:, 2] * scale
    y2 = y1 + boxes[:, 3] * scale
    cx1, cy1 = np.clip(x1, 0, width), np.clip(y1, 0, height)
    cx2, cy2 = np.clip(x2, 0, width), np.clip(y2, 0, height)
    area = (x2 - x1) * (y2 - y1)
    visible = np.divide((cx2 - cx1) * (cy2 - cy1), area, out=np.zeros_like(area), where=area > 0)
    return np.stack([cx1, cy1, cx2 - cx1, cy2 - cy1], axis=1), visible


def _crop(image: np.ndarray, left: int, top: int, width: int, height: int) -> np.ndarray:
    """The region (left, top, width, height), padded with black where it leaves the image."""
    rows, cols = image.shape[:2]
    inside = image[max(0, top) : max(0, min(rows, top + height)), max(0, left) : max(0, min(cols, left + width))]
    pad_top, pad_left = max(0, -top), max(0, -left)
    return cv2.copyMakeBorder(
        inside,
        pad_top,
        height - inside.shape[0] - pad_top,
        pad_left,
        width - inside.shape[1] - pad_left,
        cv2.BORDER_CONSTANT,
        value=(0, 0, 0),
    )


def _scaled(image: np.ndarray, scale: float) -> np.ndarray:
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)


def _framed(
    name: str,
    image: np.ndarray,
    target: int,
    faces: np.ndarray,
    ignore: np.ndarray,
    region: tuple[int, int, int, int],
    scale: float,
) -> Case:
    """A crop of ``region`` scaled by ``scale`` in which face ``target`` is the one face that counts."""
    left, top, width, height = region
    frame = _scaled(_crop(image, left, top, width, height), scale)
    size = frame.shape[:2]
    target_box, _ = crop_boxes(faces[target : target + 1], left, top, scale, size)
    others = np.concatenate([np.delete(faces, target, axis=0), ignore])
    other_boxes, visible = crop_boxes(others, left, top, scale, size)
    return _png(name, frame, target_box, other_boxes[visible > 0])


def closeup(fill_percent: int, frame_height: int) -> Variant:
    """A selfie or portrait: each large face filling ``fill_percent`` of the frame's height, the frame
    ``frame_height`` px tall (Telegram's 1280, a file's 2560, a thumbnail's 400)."""

    def variant(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Iterator[Case]:
        rows, cols = image.shape[:2]
        for index, (x, y, w, h) in enumerate(as_boxes(faces)):
            if h < CLOSEUP_MIN_FACE:
                continue
            height = round(h * 100 / fill_percent)
            width = round(height * CLOSEUP_ASPECT)
            # Centred on the face, shifted back inside the photo where the photo allows.
            left = round(x + w / 2 - width / 2)
            top = round(y + h / 2 - height / 2)
            left = min(max(left, 0), max(0, cols - width)) if width <= cols else left
            top = min(max(top, 0), max(0, rows - height)) if height <= rows else top
            region = (left, top, width, height)
            yield _framed(f"{name}#face{index}", image, index, faces, ignore, region, frame_height / height)

    variant.__doc__ = closeup.__doc__
    return variant


def tilted(degrees: float) -> Variant:
    """The photo turned ``degrees`` counter-clockwise (negative: clockwise), the canvas grown so nothing is cut;
    each box keeps its size around its moved centre, as a tilted head keeps its size."""

    def variant(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Iterator[Case]:
        rows, cols = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((cols / 2, rows / 2), degrees, 1.0)
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        width, height = math.ceil(cols * cos + rows * sin), math.ceil(cols * sin + rows * cos)
        matrix[0, 2] += width / 2 - cols / 2
        matrix[1, 2] += height / 2 - rows / 2
        rotated = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))

        def moved(boxes: np.ndarray) -> np.ndarray:
            boxes = as_boxes(boxes)
            centres = np.column_stack(
                [boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2, np.ones(len(boxes))]
            )
            new = centres @ matrix.T
            return np.column_stack([new[:, 0] - boxes[:, 2] / 2, new[:, 1] - boxes[:, 3] / 2, boxes[:, 2:]])

        yield _png(name, rotated, moved(faces), moved(ignore))

    variant.__doc__ = tilted.__doc__
    return variant


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def dark(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Iterator[Case]:
    """A dim room: gamma 2.5 (shadows crushed) and Gaussian sensor noise of 4 grey levels."""
    curve = (255 * (np.arange(256) / 255) ** DARK_GAMMA).astype(np.float32)
    noise = np.random.default_rng(_seed(name)).normal(0, DARK_NOISE_SIGMA, image.shape).astype(np.float32)
    darkened = np.clip(np.round(curve[image] + noise), 0, 255).astype(np.uint8)
    yield _png(name, darkened, faces, ignore)


def grey(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Iterator[Case]:
    """A black-and-white photo, stored with one channel."""
    yield _png(name, cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), faces, ignore)


def telegram(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Iterator[Case]:
    """A photo as the Bot API hands it to a bot: longest side at most 1280 px, JPEG at quality 80."""
    scale = min(1.0, TELEGRAM_SIDE / max(image.shape[:2]))
    resized = _scaled(image, scale) if scale < 1 else image
    ok, buffer = cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, TELEGRAM_QUALITY])
    if not ok:
        raise ValueError(f"could not encode {name} as JPEG")
    yield Case(name, buffer.tobytes(), resized.shape[:2], as_boxes(faces) * scale, as_boxes(ignore) * scale)


def border(name: str, image: np.ndarray, faces: np.ndarray, ignore: np.ndarray) -> Iterator[Case]:
    """Each face of BORDER_MIN_FACE px or more cut in half by an edge of the photo: the photo is cropped along the
    face's middle, from the left, top, right or bottom in turn (left half gone, forehead gone, ...)."""
    rows, cols = image.shape[:2]
    for index, (x, y, w, h) in enumerate(as_boxes(faces)):
        if h < BORDER_MIN_FACE:
            continue
        middle_x, middle_y = round(x + w / 2), round(y + h / 2)
        side = index % 4
        if side == 0:
            region = (middle_x, 0, cols - middle_x, rows)
        elif side == 1:
            region = (0, middle_y, cols, rows - middle_y)
        elif side == 2:
            region = (0, 0, middle_x, rows)
        else:
            region = (0, 0, cols, middle_y)
        if region[2] < 16 or region[3] < 16:
            continue
        yield _framed(f"{name}#face{index}", image, index, faces, ignore, region, 1.0)


VARIANTS: dict[str, Variant] = {
    "upright": upright,
    **{f"turned-{degrees}": turned(degrees) for degrees in (90, 180, 270)},
    **{f"closeup-{fill}-{height}": closeup(fill, height) for fill in CLOSEUP_FILLS for height in CLOSEUP_HEIGHTS},
    "tilted-left": tilted(TILT_DEGREES),
    "tilted-right": tilted(-TILT_DEGREES),
    "dark": dark,
    "grey": grey,
    "telegram": telegram,
    "border": border,
}
# The robustness suite: every variant but the quarter turns, which the default handles by its turned passes and
# the comparison measures on their own (--variant turned-90).
SUITE = tuple(name for name in VARIANTS if not name.startswith("turned-"))
