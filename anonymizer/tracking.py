"""Faces followed across the frames of a video or animation, so that a mask never blinks off.

A detector misses a face now and then (motion blur, a turned head, a hand in front), and a face covered in the
frames around a miss but bare in that one frame is exactly what gives it away in a video. So faces are searched
on a frame every ``search_interval`` seconds (a keyframe) and linked into tracks; a frame between two keyframes of a
track gets the box moved along the line between them, a track that misses a few keyframes is bridged the same way,
and each track is held on for a moment before it is first seen and after it is last seen (the face was most likely
there, only not yet or no longer found). Boxes drawn from guesses are grown by the distance the face moves, so a
face that speeds up stays under its mask, and a keyframe's own box is joined with what its neighbours say, so a
box found too small once (detectors jitter, and shrink a face leaving the picture) leaves no edge bare.

All of this is reckoned in the frames' own times, never in a frame rate a header claims: a clip whose header says
a million frames a second is searched as often per second of its frames as any other.

``FrameCoverer`` does this on a stream: frames go in one at a time and come out painted, in order, as soon as
every keyframe that can change them has been searched; it holds a bounded number of frames (the lookahead, capped
in frames and bytes), never the whole video.
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
from anonymizer.options import MAX_HELD_BYTES, MAX_HELD_FRAMES
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
# ...and, however long a frame lasts (a slow GIF's frames), over at least this many frames: a detector's miss on
# one frame of a slide show is as likely as on a video's.
REACH_FRAMES = 1
# Faces are searched ``detect_every`` times less often than on every frame of a video at this rate.
REFERENCE_RATE = 30.0
# A frame is searched once this share of the search interval has passed since the last search: timestamps are
# rounded to their stream's clock, so exactly one interval can come out a hair short.
_SEARCH_TOLERANCE = 1e-3
# A keyframe box joins a track when it overlaps the track's predicted box this much, or when its centre lies
# within this share of the face's size from the predicted centre (a small, fast face overlaps nothing).
LINK_IOU = 0.2
LINK_DISTANCE = 0.75
# A box interpolated between keyframes is grown on each side by this share of the distance the face travels
# between them: faces do not move in straight lines at constant speed.
MOTION_SLACK = 0.25


@dataclass(frozen=True, slots=True)
class Moment:
    """Where a frame is in its stream: its number and its time in seconds, both strictly increasing."""

    frame: int
    time: float


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

    keys: list[tuple[Moment, Box]] = field(default_factory=list)

    @property
    def last(self) -> tuple[Moment, Box]:
        return self.keys[-1]

    def velocity(self) -> tuple[float, float]:
        """Pixels per second of the box's centre between its last two keyframes (0 with one)."""
        if len(self.keys) < 2:
            return 0.0, 0.0
        (m0, b0), (m1, b1) = self.keys[-2], self.keys[-1]
        (x0, y0), (x1, y1) = b0.centre, b1.centre
        return (x1 - x0) / (m1.time - m0.time), (y1 - y0) / (m1.time - m0.time)

    def predicted(self, moment: Moment) -> Box:
        at, box = self.last
        vx, vy = self.velocity()
        return box.shifted(vx * (moment.time - at.time), vy * (moment.time - at.time))

    def box_at(self, moment: Moment, reach: Reach) -> Box | None:
        """Where this face is at ``moment``, or None when the track does not reach it."""
        keys = self.keys
        if moment.frame < keys[0][0].frame:
            first, box = keys[0]
            return _held(box, self._speed(0), first.time - moment.time) if reach.holds(moment, first) else None
        for position in range(len(keys) - 1, -1, -1):
            at, box = keys[position]
            if at.frame <= moment.frame:
                break
        if at.frame == moment.frame:
            return self._steadied(position, reach)
        if position + 1 < len(keys):
            after, after_box = keys[position + 1]
            if reach.bridges(at, after):
                t = (moment.time - at.time) / (after.time - at.time)
                (x0, y0), (x1, y1) = box.centre, after_box.centre
                slack = MOTION_SLACK * max(abs(x1 - x0), abs(y1 - y0))
                return box.blend(after_box, t).grown(slack, slack)
        if reach.holds(at, moment):
            return _held(box, self._speed(position), moment.time - at.time)
        return None

    def _steadied(self, position: int, reach: Reach) -> Box:
        """A keyframe's box joined with where its neighbours say the face is: a detector's box jitters from frame to
        frame and shrinks as a face leaves the picture, and a box found smaller than the face once must not leave
        the face's edge bare. Between two neighbours that is their blend; at a track's end, the one neighbour moved
        on at the face's speed."""
        at, box = self.keys[position]
        neighbours = []
        if position > 0 and reach.bridges(self.keys[position - 1][0], at):
            neighbours.append(self.keys[position - 1])
        if position + 1 < len(self.keys) and reach.bridges(at, self.keys[position + 1][0]):
            neighbours.append(self.keys[position + 1])
        if len(neighbours) == 2:
            (before_at, before), (after_at, after) = neighbours
            return box.union(before.blend(after, (at.time - before_at.time) / (after_at.time - before_at.time)))
        if len(neighbours) == 1:
            _, other = neighbours[0]
            (ox, oy), (x, y) = other.centre, box.centre
            return box.union(other.shifted(x - ox, y - oy))
        return box

    def _speed(self, position: int) -> float:
        """Pixels per second the face moved into or out of keyframe ``position`` (the larger of the two)."""
        speeds = []
        for a, b in ((position - 1, position), (position, position + 1)):
            if a >= 0 and b < len(self.keys):
                (ma, ba), (mb, bb) = self.keys[a], self.keys[b]
                (xa, ya), (xb, yb) = ba.centre, bb.centre
                speeds.append(math.hypot(xb - xa, yb - ya) / (mb.time - ma.time))
        return max(speeds, default=0.0)

    def drop_before(self, moment: Moment) -> None:
        """Forget keyframes no frame at or after ``moment`` needs: the last one before it stays for interpolation,
        and the one before that for the face's speed."""
        while len(self.keys) > 2 and self.keys[2][0].frame <= moment.frame:
            self.keys.pop(0)


@dataclass(frozen=True, slots=True)
class Reach:
    """How far a track reaches from its keyframes: across a gap of missed searches, and held past its ends.

    Each is a time in seconds, or ``frames`` frames when they last longer."""

    max_gap: float = MAX_GAP_S
    hold: float = HOLD_S
    frames: int = REACH_FRAMES

    def bridges(self, earlier: Moment, later: Moment) -> bool:
        return later.time - earlier.time <= self.max_gap or later.frame - earlier.frame <= self.frames

    def holds(self, earlier: Moment, later: Moment) -> bool:
        return later.time - earlier.time <= self.hold or later.frame - earlier.frame <= self.frames

    @property
    def lookahead(self) -> float:
        """Seconds past a frame that must have been searched before its boxes are final (beyond ``frames``)."""
        return max(self.max_gap, self.hold)


def _links(guesses: Sequence[Box], boxes: Sequence[Box]) -> Iterator[tuple[int, int]]:
    """(guess, box) index pairs that may be one face, by overlap (most first), then by the distance of their centres
    in the guess's size (least first): every pair at once, as a crowd brings hundreds of each."""
    if not guesses or not boxes:
        return
    gx, gy, gw, gh = np.array([(g.x, g.y, g.w, g.h) for g in guesses], np.float64).T[:, :, None]
    bx, by, bw, bh = np.array([(b.x, b.y, b.w, b.h) for b in boxes], np.float64).T[:, None, :]
    ix = np.maximum(0.0, np.minimum(gx + gw, bx + bw) - np.maximum(gx, bx))
    iy = np.maximum(0.0, np.minimum(gy + gh, by + bh) - np.maximum(gy, by))
    inter = ix * iy
    union = gw * gh + bw * bh - inter
    overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    distance = np.hypot(bx + bw / 2 - (gx + gw / 2), by + bh / 2 - (gy + gh / 2)) / np.maximum(np.maximum(gw, gh), 1.0)
    ti, bi = np.nonzero((overlap >= LINK_IOU) | (distance <= LINK_DISTANCE))
    order = np.lexsort((bi, ti, distance[ti, bi], -overlap[ti, bi]))
    yield from zip(ti[order].tolist(), bi[order].tolist(), strict=True)


def _held(box: Box, speed: float, seconds: float) -> Box:
    """A box held on ``seconds`` away from where it was seen, grown by how far the face may have gone."""
    reach = speed * seconds
    return box.grown(reach, reach)


class Tracker:
    """Links keyframe detections into tracks and answers each frame's boxes."""

    def __init__(self, reach: Reach | None = None) -> None:
        self.reach = reach or Reach()
        self.tracks: list[Track] = []
        self.finished = 0

    @property
    def count(self) -> int:
        """Tracks ever started: how many faces were followed."""
        return self.finished + len(self.tracks)

    def add(self, moment: Moment, detections: list[Detection]) -> None:
        """The faces found on keyframe ``moment`` (keyframes come in increasing order)."""
        boxes = [Box.of(d) for d in detections]
        live = [t for t in self.tracks if self.reach.bridges(t.last[0], moment)]
        taken_tracks: set[int] = set()
        taken_boxes: set[int] = set()
        for ti, bi in _links([track.predicted(moment) for track in live], boxes):
            if ti in taken_tracks or bi in taken_boxes:
                continue
            taken_tracks.add(ti)
            taken_boxes.add(bi)
            live[ti].keys.append((moment, boxes[bi]))
        for bi, box in enumerate(boxes):
            if bi not in taken_boxes:
                self.tracks.append(Track([(moment, box)]))

    def boxes(self, moment: Moment) -> list[Box]:
        """Every face's box at ``moment``; final once every keyframe within the lookahead was added."""
        found = (track.box_at(moment, self.reach) for track in self.tracks)
        return [box for box in found if box is not None]

    def forget_before(self, moment: Moment) -> None:
        """Drop what frames before ``moment`` alone needed, so memory stays bounded on long videos."""
        kept = []
        for track in self.tracks:
            if self._reaches(track.last[0], moment):
                track.drop_before(moment)
                kept.append(track)
            else:
                self.finished += 1
        self.tracks = kept

    def final(self, moment: Moment, searched: Moment) -> bool:
        """Whether no keyframe after ``searched`` can change the boxes at ``moment``."""
        return (
            searched.frame - moment.frame >= self.reach.frames and searched.time - moment.time >= self.reach.lookahead
        )

    def _reaches(self, earlier: Moment, later: Moment) -> bool:
        return self.reach.bridges(earlier, later) or self.reach.holds(earlier, later)


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


def search_interval(detect_every: int) -> float:
    """Seconds between searches: as often in time as every ``detect_every``-th frame of a 30 fps video."""
    return detect_every / REFERENCE_RATE


class FrameCoverer(Generic[Payload]):
    """Paints the faces of a stream of frames, searching one frame every ``search_every`` seconds, holding frames
    back only as long as a later search can change them, and never more than ``max_held_frames`` frames or
    ``max_held_bytes`` bytes of them.

    ``push`` takes one upright BGR frame, its time in seconds (strictly increasing) and anything the caller needs
    back with it (such as its timestamp), and yields the frames that are ready, painted, in order; ``finish``
    yields the rest. When the bound is reached before the lookahead is, the newest frame is searched (unless a
    frame after the oldest already was) and the oldest is painted with what is known: a frame never goes out
    without a search at or after it.
    """

    def __init__(
        self,
        find_faces: Callable[[np.ndarray], list[Detection]],
        painter: Painter,
        search_every: float = 0.0,
        tracker: Tracker | None = None,
        max_held_frames: int = MAX_HELD_FRAMES,
        max_held_bytes: int = MAX_HELD_BYTES,
    ) -> None:
        if max_held_frames < 2:
            raise ValueError(f"max_held_frames must be at least 2, not {max_held_frames}")
        self.find_faces, self.painter, self.search_every = find_faces, painter, search_every
        self.tracker = tracker or Tracker()
        self.max_held_frames, self.max_held_bytes = max_held_frames, max_held_bytes
        self.pending: deque[tuple[Moment, np.ndarray, Payload]] = deque()
        self.held_bytes = 0
        self.next_frame = 0
        self.searched: Moment | None = None  # the last keyframe searched

    def push(self, frame: np.ndarray, time: float, payload: Payload) -> Iterator[tuple[np.ndarray, Payload]]:
        moment = Moment(self.next_frame, time)
        if self.pending and time <= self.pending[-1][0].time:
            raise ValueError(f"frame times must increase: {time} after {self.pending[-1][0].time}")
        self.next_frame += 1
        self.pending.append((moment, frame, payload))
        self.held_bytes += frame.nbytes
        if self.searched is None or time - self.searched.time >= self.search_every * (1 - _SEARCH_TOLERANCE):
            self._search(moment, frame)
        while self.pending and self.tracker.final(self.pending[0][0], self._last_search()):
            yield self._paint_oldest()
        while len(self.pending) > self.max_held_frames or self.held_bytes > self.max_held_bytes:
            searched = self._last_search()
            if searched.frame <= self.pending[0][0].frame and searched != moment:
                self._search(moment, frame)
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

    def _last_search(self) -> Moment:
        assert self.searched is not None  # the first frame pushed is always searched
        return self.searched

    def _search(self, moment: Moment, frame: np.ndarray) -> None:
        self.tracker.add(moment, self.find_faces(frame))
        self.searched = moment

    def _paint_oldest(self) -> tuple[np.ndarray, Payload]:
        moment, frame, payload = self.pending.popleft()
        self.held_bytes -= frame.nbytes
        height, width = frame.shape[:2]
        regions = pixel_boxes(self.tracker.boxes(moment), width, height)
        if regions:
            frame = self.painter.apply(frame, regions)
        if self.pending:
            self.tracker.forget_before(self.pending[0][0])
        return frame, payload
