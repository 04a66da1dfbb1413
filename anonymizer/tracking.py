"""Faces followed across the frames of a video or animation, so that a mask never blinks off.

A detector misses a face now and then (motion blur, a turned head, a hand in front), and a face covered in the
frames around a miss but bare in that one frame is exactly what gives it away in a video. So faces are found on
every ``detect_every``-th frame (a keyframe) and linked into tracks; a frame between two keyframes of a track gets
the box moved along the line between them, a track that misses a few keyframes is bridged the same way, and each
track is held on for a few frames before it is first seen and after it is last seen (the face was most likely
there, only not yet or no longer found). Boxes drawn from guesses are grown by the distance the face moves, so a
face that speeds up stays under its mask, and a keyframe's own box is joined with what its neighbours say, so a
box found too small once (detectors jitter, and shrink a face leaving the picture) leaves no edge bare.

``FrameCoverer`` does this on a stream: frames go in one at a time and come out painted, in order, as soon as
every keyframe that can change them has been searched; it holds a bounded number of frames (``lookahead``),
never the whole video.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import cv2
import numpy as np

import filters
from detectors import Detection

Payload = TypeVar("Payload")


class Painter(Protocol):
    """What covers the faces of a frame: a ``filters.Filter``, or anything with its ``apply``."""

    def apply(self, image: np.ndarray, regions: Sequence[filters.Box]) -> np.ndarray: ...


# A face missed on keyframes for up to a third of a second is the same face when it is found again near where it
# was heading, and is covered all along the gap.
MAX_GAP_S = 1 / 3
# A face stays covered this long before it is first found and after it is last found.
HOLD_S = 0.15
_REFERENCE_RATE = 30.0
# A keyframe box joins a track when it overlaps the track's predicted box this much, or when its centre lies
# within this share of the face's size from the predicted centre (a small, fast face overlaps nothing).
LINK_IOU = 0.2
LINK_DISTANCE = 0.75
# A box interpolated between keyframes is grown on each side by this share of the distance the face travels
# between them: faces do not move in straight lines at constant speed.
MOTION_SLACK = 0.25


@dataclass(frozen=True, slots=True)
class Box:
    """A face box in frame pixels (floats while boxes are moved and grown; the filter rounds them)."""

    x: float
    y: float
    w: float
    h: float

    @staticmethod
    def of(detection: Detection) -> Box:
        return Box(float(detection.x), float(detection.y), float(detection.w), float(detection.h))

    @property
    def centre(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.w * self.h + other.w * other.h - inter
        return inter / union if union > 0 else 0.0

    def shifted(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def grown(self, dx: float, dy: float) -> Box:
        """Grown by ``dx`` on the left and right and ``dy`` on the top and bottom."""
        return Box(self.x - dx, self.y - dy, self.w + 2 * dx, self.h + 2 * dy)

    def union(self, other: Box) -> Box:
        x1, y1 = min(self.x, other.x), min(self.y, other.y)
        x2, y2 = max(self.x + self.w, other.x + other.w), max(self.y + self.h, other.y + other.h)
        return Box(x1, y1, x2 - x1, y2 - y1)

    def blend(self, other: Box, t: float) -> Box:
        """The box ``t`` of the way from this one to ``other``."""
        pairs = ((self.x, other.x), (self.y, other.y), (self.w, other.w), (self.h, other.h))
        return Box(*(a + (b - a) * t for a, b in pairs))


@dataclass(frozen=True, slots=True)
class PixelBox:
    """A box in whole pixels, what filters take (``filters.Box``)."""

    x: int
    y: int
    w: int
    h: int


@dataclass(slots=True)
class Track:
    """One face: the keyframes it was found on, in order, with its box there."""

    keys: list[tuple[int, Box]] = field(default_factory=list)

    @property
    def last(self) -> tuple[int, Box]:
        return self.keys[-1]

    def velocity(self) -> tuple[float, float]:
        """Pixels per frame of the box's centre between its last two keyframes (0 with one)."""
        if len(self.keys) < 2:
            return 0.0, 0.0
        (f0, b0), (f1, b1) = self.keys[-2], self.keys[-1]
        (x0, y0), (x1, y1) = b0.centre, b1.centre
        return (x1 - x0) / (f1 - f0), (y1 - y0) / (f1 - f0)

    def predicted(self, frame: int) -> Box:
        index, box = self.last
        vx, vy = self.velocity()
        return box.shifted(vx * (frame - index), vy * (frame - index))

    def box_at(self, frame: int, max_gap: int, hold: int) -> Box | None:
        """Where this face is in ``frame``, or None when the track does not reach it."""
        keys = self.keys
        if frame < keys[0][0]:
            first, box = keys[0]
            return _held(box, self._speed(0), first - frame) if first - frame <= hold else None
        for position in range(len(keys) - 1, -1, -1):
            index, box = keys[position]
            if index <= frame:
                break
        if index == frame:
            return self._steadied(position, max_gap)
        if position + 1 < len(keys):
            after_index, after_box = keys[position + 1]
            if after_index - index <= max_gap:
                t = (frame - index) / (after_index - index)
                (x0, y0), (x1, y1) = box.centre, after_box.centre
                slack = MOTION_SLACK * max(abs(x1 - x0), abs(y1 - y0))
                return box.blend(after_box, t).grown(slack, slack)
        if frame - index <= hold:
            return _held(box, self._speed(position), frame - index)
        return None

    def _steadied(self, position: int, max_gap: int) -> Box:
        """A keyframe's box joined with where its neighbours say the face is: a detector's box jitters from frame to
        frame and shrinks as a face leaves the picture, and a box found smaller than the face once must not leave
        the face's edge bare. Between two neighbours that is their blend; at a track's end, the one neighbour moved
        on at the face's speed."""
        index, box = self.keys[position]
        neighbours = [self.keys[p] for p in (position - 1, position + 1) if 0 <= p < len(self.keys)]
        neighbours = [(i, b) for i, b in neighbours if abs(i - index) <= max_gap]
        if len(neighbours) == 2:
            (before_index, before), (after_index, after) = neighbours
            return box.union(before.blend(after, (index - before_index) / (after_index - before_index)))
        if len(neighbours) == 1:
            _, other = neighbours[0]
            (ox, oy), (x, y) = other.centre, box.centre
            return box.union(other.shifted(x - ox, y - oy))
        return box

    def _speed(self, position: int) -> float:
        """Pixels per frame the face moved into or out of keyframe ``position`` (the larger of the two)."""
        speeds = []
        for a, b in ((position - 1, position), (position, position + 1)):
            if a >= 0 and b < len(self.keys):
                (fa, ba), (fb, bb) = self.keys[a], self.keys[b]
                (xa, ya), (xb, yb) = ba.centre, bb.centre
                speeds.append(math.hypot(xb - xa, yb - ya) / (fb - fa))
        return max(speeds, default=0.0)

    def drop_before(self, frame: int) -> None:
        """Forget keyframes no frame at or after ``frame`` needs: the last one before it stays for interpolation,
        and the one before that for the face's speed."""
        while len(self.keys) > 2 and self.keys[2][0] <= frame:
            self.keys.pop(0)


def _held(box: Box, speed: float, frames: int) -> Box:
    """A box held on ``frames`` frames away from where it was seen, grown by how far the face may have gone."""
    reach = speed * frames
    return box.grown(reach, reach)


class Tracker:
    """Links keyframe detections into tracks and answers each frame's boxes."""

    def __init__(self, max_gap: int = round(MAX_GAP_S * _REFERENCE_RATE), hold: int = round(HOLD_S * _REFERENCE_RATE)):
        self.max_gap, self.hold = max_gap, hold
        self.tracks: list[Track] = []
        self.finished = 0

    @classmethod
    def for_rate(cls, frames_per_second: float) -> Tracker:
        """A tracker whose gap and hold last as long in seconds whatever the frame rate (at least a frame)."""
        rate = frames_per_second if frames_per_second > 0 else _REFERENCE_RATE
        return cls(max(1, round(MAX_GAP_S * rate)), max(1, round(HOLD_S * rate)))

    @property
    def count(self) -> int:
        """Tracks ever started: how many faces were followed."""
        return self.finished + len(self.tracks)

    def add(self, frame: int, detections: list[Detection]) -> None:
        """The faces found on keyframe ``frame`` (keyframes come in increasing order)."""
        boxes = [Box.of(d) for d in detections]
        live = [t for t in self.tracks if frame - t.last[0] <= self.max_gap]
        pairs = []
        for ti, track in enumerate(live):
            guess = track.predicted(frame)
            gx, gy = guess.centre
            size = max(guess.w, guess.h)
            for bi, box in enumerate(boxes):
                overlap = guess.iou(box)
                bx, by = box.centre
                distance = math.hypot(bx - gx, by - gy) / max(size, 1.0)
                if overlap >= LINK_IOU or distance <= LINK_DISTANCE:
                    pairs.append((-overlap, distance, ti, bi))
        taken_tracks: set[int] = set()
        taken_boxes: set[int] = set()
        for _, _, ti, bi in sorted(pairs):
            if ti in taken_tracks or bi in taken_boxes:
                continue
            taken_tracks.add(ti)
            taken_boxes.add(bi)
            live[ti].keys.append((frame, boxes[bi]))
        for bi, box in enumerate(boxes):
            if bi not in taken_boxes:
                self.tracks.append(Track([(frame, box)]))

    def boxes(self, frame: int) -> list[Box]:
        """Every face's box in ``frame``; final once the keyframes up to ``frame + lookahead`` were added."""
        found = (track.box_at(frame, self.max_gap, self.hold) for track in self.tracks)
        return [box for box in found if box is not None]

    def forget_before(self, frame: int) -> None:
        """Drop what frames before ``frame`` alone needed, so memory stays bounded on long videos."""
        kept = []
        for track in self.tracks:
            if frame - track.last[0] > max(self.max_gap, self.hold):
                self.finished += 1
            else:
                track.drop_before(frame)
                kept.append(track)
        self.tracks = kept

    @property
    def lookahead(self) -> int:
        """How many frames past a frame must have been searched before its boxes are final."""
        return max(self.max_gap, self.hold)


def pixel_boxes(boxes: list[Box], width: int, height: int) -> list[PixelBox]:
    """Boxes rounded outward to whole pixels and cut to the frame; boxes wholly outside it are dropped."""
    out = []
    for box in boxes:
        x1, y1 = max(0, math.floor(box.x)), max(0, math.floor(box.y))
        x2, y2 = min(width, math.ceil(box.x + box.w)), min(height, math.ceil(box.y + box.h))
        if x2 > x1 and y2 > y1:
            out.append(PixelBox(x1, y1, x2 - x1, y2 - y1))
    return out


def shrunk_search(
    find_faces: Callable[[np.ndarray], list[Detection]], longest_side: int
) -> Callable[[np.ndarray], list[Detection]]:
    """``find_faces`` run on the frame shrunk to ``longest_side`` (not enlarged; 0 keeps it whole), boxes given back
    in the frame's pixels."""

    def find(frame: np.ndarray) -> list[Detection]:
        height, width = frame.shape[:2]
        scale = longest_side / max(height, width) if longest_side else 1.0
        if scale >= 1:
            return find_faces(frame)
        small = cv2.resize(frame, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        return [
            Detection(
                math.floor(d.x / scale),
                math.floor(d.y / scale),
                math.ceil(d.w / scale),
                math.ceil(d.h / scale),
                d.score,
                d.detector,
            )
            for d in find_faces(small)
        ]

    return find


def keyframe_interval(detect_every: int, frames_per_second: float) -> int:
    """Frames between searches so that faces are searched as often in time as ``detect_every`` says for 30 fps."""
    rate = frames_per_second if frames_per_second > 0 else _REFERENCE_RATE
    return max(1, round(detect_every * rate / _REFERENCE_RATE))


class FrameCoverer(Generic[Payload]):
    """Paints the faces of a stream of frames, detecting on keyframes, with a bounded lookahead.

    ``push`` takes one upright BGR frame (and anything the caller needs back with it, such as its timestamp) and
    yields the frames that are ready, painted, in order; ``finish`` yields the rest.
    """

    def __init__(
        self,
        find_faces: Callable[[np.ndarray], list[Detection]],
        painter: Painter,
        detect_every: int = 1,
        tracker: Tracker | None = None,
    ) -> None:
        if detect_every < 1:
            raise ValueError(f"detect_every must be at least 1, not {detect_every}")
        self.find_faces, self.painter, self.detect_every = find_faces, painter, detect_every
        self.tracker = tracker or Tracker()
        self.pending: deque[tuple[int, np.ndarray, Payload]] = deque()
        self.next_index = 0
        self.searched = -1  # the last keyframe searched

    def push(self, frame: np.ndarray, payload: Payload) -> Iterator[tuple[np.ndarray, Payload]]:
        index = self.next_index
        self.next_index += 1
        self.pending.append((index, frame, payload))
        if index % self.detect_every == 0:
            self._search(index, frame)
        while self.pending and self.pending[0][0] + self.tracker.lookahead <= self.searched:
            yield self._paint_oldest()

    def finish(self) -> Iterator[tuple[np.ndarray, Payload]]:
        """The frames still held, painted; the last frame is searched too so the tail is not guessed."""
        if self.pending and self.pending[-1][0] != self.searched:
            self._search(self.pending[-1][0], self.pending[-1][1])
        while self.pending:
            yield self._paint_oldest()

    @property
    def tracks(self) -> int:
        return self.tracker.count

    def _search(self, index: int, frame: np.ndarray) -> None:
        self.tracker.add(index, self.find_faces(frame))
        self.searched = index

    def _paint_oldest(self) -> tuple[np.ndarray, Payload]:
        index, frame, payload = self.pending.popleft()
        height, width = frame.shape[:2]
        regions = pixel_boxes(self.tracker.boxes(index), width, height)
        if regions:
            frame = self.painter.apply(frame, regions)
        self.tracker.forget_before(index + 1)
        return frame, payload
