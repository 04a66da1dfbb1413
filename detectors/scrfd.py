"""SCRFD-2.5G (InsightFace), on onnxruntime or cv2.dnn: the photo at full resolution in windows of up to 1280 px,
fitted into 640 px and into a small look for close-ups; passes for tilted, sideways and dark photos when the photo
asks for them."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NamedTuple, TypeVar

import cv2
import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

from detectors.backends import BACKENDS, OnnxNet
from detectors.base import Detection, Detector
from detectors.geometry import (
    ROTATE_CODES,
    Pyramid,
    box_detection,
    boxes_by_window,
    even_window,
    lifted,
    turned,
    unturn_box,
    window_starts,
)
from detectors.models import model_path
from detectors.registry import register
from detectors.settings import Distance, OneOf, Pixels, Score, Settings, Share, Within

MODEL = "scrfd_2.5g_bnkps.onnx"
# Its INT8 copy, derived at `photo-anon models download` (detectors.int8); it runs on onnxruntime only.
INT8_MODEL = "scrfd_2.5g_bnkps.int8.onnx"
PRECISIONS = ("int8", "fp32")
# The side the network was trained at: the whole photo is also seen fitted into it, where large faces are found.
FITTED = 640
STRIDES = (8, 16, 32)
# Inputs are padded to a multiple of the coarsest stride.
INPUT_MULTIPLE = max(STRIDES)
ANCHORS_PER_CELL = 2
# How much finer than the fitted look the windowed pass may look for the fitted look's hint of small faces to be
# trusted: at half the resolution, a 16 px face is still 8 px there, where the network gives it a weak box.
HINT_REACH = 2.0
# Clockwise turns the turned passes look at, and when they run.
TURNS = (90, 180, 270)
TURNED_WHEN = ("unless_upright", "always", "never")
# A candidate is one row: box corners, score, the five landmarks (eyes, nose, mouth corners) as (x, y) pairs, and
# the score the box needs to be kept.
SCORE = 4
LANDMARKS = slice(5, 15)
NEEDED = 15
COLUMNS = 16


class Pass(NamedTuple):
    """One of the detector's looks at a photo: its name, the candidates it adds and what it cost (seconds, forwards
    of the network). ``ScrfdDetector.passes`` gives them, so a report can say what each pass costs and buys."""

    name: str
    rows: np.ndarray
    seconds: float
    forwards: int


Looked = TypeVar("Looked")


class TurnedLooks(NamedTuple):
    """What the turned looks saw: their candidates, and the clockwise turn that shows a clear face, if one does."""

    rows: np.ndarray
    clear_angle: int | None


@functools.lru_cache(maxsize=64)
def _anchor_centres(stride: int, height: int, width: int) -> np.ndarray:
    """(x, y) of each anchor of a stride's feature map for a ``width`` x ``height`` input, in input pixels, row by
    row, each cell's anchors together."""
    rows, cols = np.mgrid[: height // stride, : width // stride]
    centres = np.stack([cols, rows], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centres, ANCHORS_PER_CELL, axis=0)


def any_size_model(path: Path) -> bytes:
    """The ONNX export, rewritten to run at any input size that is a multiple of 32.

    Its two upsampling steps carry output sizes fixed for a 640 x 640 input, so OpenCV could only run it at that
    size and larger photos would be seen through 640 px windows. Given as scale factors instead (the same 2x), the
    same weights give the same outputs at 640 and run on a 1024 x 768 photo in one pass, in half the time of the
    four overlapping windows it needs otherwise.
    """
    model = onnx.load(str(path))
    shapes = {
        value.name: [dim.dim_value for dim in value.type.tensor_type.shape.dim]
        for value in shape_inference.infer_shapes(model).graph.value_info
    }
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Resize" and len(node.input) == 4 and node.input[3] in constants:
            sizes = constants[node.input[3]].astype(np.float32)
            scales = numpy_helper.from_array(sizes / np.array(shapes[node.input[0]], np.float32), f"{node.name}_scales")
            model.graph.initializer.append(scales)
            node.input[2], node.input[3] = scales.name, ""
    for dim, name in zip(model.graph.input[0].type.tensor_type.shape.dim[2:], ("height", "width"), strict=True):
        dim.dim_param = name
    return model.SerializeToString()


def input_blob(image: np.ndarray) -> np.ndarray:
    """The network's input for a BGR image of its own size: RGB, (pixel - 127.5) / 128, as SCRFD was trained."""
    height, width = image.shape[:2]
    return cv2.dnn.blobFromImage(image, 1 / 128, (width, height), (127.5, 127.5, 127.5), swapRB=True)


def _sample(image: np.ndarray) -> np.ndarray:
    """About 64 x 64 of the photo's pixels, evenly spread: enough to judge its colour and brightness cheaply."""
    return image[:: max(1, image.shape[0] // 64), :: max(1, image.shape[1] // 64)]


def _is_grey(image: np.ndarray) -> bool:
    """Whether a photo is black and white: its colour channels agree on a sample of its pixels."""
    return bool(np.abs(np.diff(_sample(image).astype(np.int16), axis=-1)).max() <= 2)


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    return np.vstack(rows) if rows else np.empty((0, COLUMNS), np.float32)


def _rows(passes: Sequence[Pass]) -> np.ndarray:
    """The candidates of every pass, in their order."""
    return _stack([found.rows for found in passes])


@dataclass(frozen=True)
class ScrfdSettings(Settings):
    """What ScrfdDetector takes; its docstring says what each setting does. The defaults are the measured default
    (data/README.md says why each)."""

    threshold: Score = 0.2
    small_share: Share = 0.6
    small_face: Pixels = 32
    small_hint: Score = 0.12
    hint_face: Pixels = 64
    large_step: Share = 0.125
    large_face: Share = 1 / 16
    edge_share: Share = 0.85
    confident: Score = 0.2
    near_face: Distance = 0.25
    closeup_side: Pixels = 320
    closeup_face: Share = 1 / 3
    brighten_below: Share = 0.35
    brighten_to: Annotated[float, Within(0.01, 1, "a brightness")] = 0.6
    brightened_floor: Score = 0.15
    grey_share: Share = 0.85
    edge_large: bool = True
    roll_from: Annotated[float, Within(0, 45, "an angle in degrees")] = 16.0
    rolled: bool = True
    turned: Annotated[str, OneOf(TURNED_WHEN)] = "unless_upright"
    turned_threshold: Score = 0.7
    upright_enough: Score = 0.7
    nms_iou: Share = 0.4
    min_face: Annotated[int, Within(0)] = 6
    max_side: Pixels = 2560
    max_window: Annotated[int, Within(INPUT_MULTIPLE)] = 1280
    window_overlap: Annotated[int, Within(0)] = 160
    max_shrink: Share = 0.15
    edge_margin: Distance = 2.0
    precision: Annotated[str, OneOf(PRECISIONS)] = "fp32"
    window_precision: Annotated[str, OneOf(PRECISIONS)] | None = None
    backend: Annotated[str, OneOf(BACKENDS)] = "onnxruntime"

    def __post_init__(self) -> None:
        super().__post_init__()
        if "int8" in (self.precision, self.window_precision) and self.backend == "opencv":
            raise ValueError("the INT8 weights run on onnxruntime only: backend='opencv' takes the FP32 ones")
        if self.window_overlap >= self.max_window:
            raise ValueError(f"window_overlap is less than max_window ({self.max_window}), not {self.window_overlap}")

    @property
    def windows_in(self) -> str:
        """The windowed looks' weights: ``window_precision``, or ``precision`` when it is not given."""
        return self.window_precision or self.precision


@register("scrfd", ScrfdSettings)
class ScrfdDetector(Detector):
    """SCRFD-2.5G with the box, score and landmark decoding of the InsightFace export; the boxes of every pass are
    merged by NMS, then each is kept if it scores what a box of its kind needs.

    Upright passes: the whole photo fitted into 640 px, where large faces are; the whole photo fitted into
    ``closeup_side`` px, where a face that fills the frame is (the network's largest anchors stop short of a face
    filling most of a 640 px input, so a selfie would be seen by no pass at all; the look costs a quarter of the
    640 px one, and only its boxes of ``closeup_face`` of its side or more count: smaller ones are seen better by the
    other passes, and on a crowd this coarse a look mostly sees false faces); and the photo at full resolution
    (capped at ``max_side``), where small faces are seen, in one input up to ``max_window`` px a side or in as few
    such windows as cover it, overlapping by ``window_overlap`` px. That windowed pass costs more than the others
    together, and on a portrait, an interview or a selfie it finds nothing they do not: where the whole-photo looks
    saw a clear face, it runs only when they also show a hint of smaller ones (a box under ``hint_face`` px of the
    fitted look scoring ``small_hint`` or more; ``small_hint=0`` runs it on every photo). Boxes touching an inner
    window side are cut faces and dropped (whole in a neighbour window or a coarser pass).

    What a box needs grows with ``threshold``, the score of a face of medium size: a false box costs paint in
    proportion to its area while a crowd's true faces score low. Boxes under ``small_face`` px of the network's input
    need ``small_share`` of it; boxes from ``large_face`` of the photo's longest side up need ``large_step`` of the
    way from it to 1; a box that reaches the photo's edge needs ``edge_share`` of what its size needs (of what a
    medium one needs if it is large, under a close-up's size, and ``edge_large``), since a face cut by the frame shows
    only part of itself and scores low; and in a black-and-white photo every box needs ``grey_share`` of its bar, as
    the network, trained on colour, scores grey faces lower. A weak box (under ``threshold``) whose centre lies beside
    a higher-scoring box of at least ``confident`` is that face's hair or edge and is dropped. Every rule is decided
    on all the candidates of at least ``confident``, whatever ``threshold`` is, so a higher threshold never paints
    more.

    Passes the photo asks for:
    - ``brighten_below``: a photo whose brighter quarter is darker than this (0-1) is also searched brightened (to
      ``brighten_to``): a dim room's faces are found where their shadows are lifted; both are kept, since lifting
      also lifts sensor noise, and a box seen only there needs at least ``brightened_floor``, as lifted noise makes
      small false faces (a rocket's night sky) that the size tiers would otherwise let through.
    - ``rolled``: when the clear faces (``upright_enough``) lean by ``roll_from`` degrees or more (the median angle
      of their eyes and mouth), the phone was tilted, and the fitted pass runs again on the photo turned upright by
      that angle, with the windowed one where the upright looks hint at small faces, so those are seen upright too.
    - ``turned``: for photos stored sideways or upside down. The photo fitted into one input is looked at turned 90,
      180 and 270 degrees (boxes from ``turned_threshold``); if a turn shows a clear face, the windowed pass runs on
      the photo turned that way, so its small faces are found as on an upright photo. By default
      (``"unless_upright"``) the looks run only when the whole-photo passes show no upright box scoring
      ``upright_enough`` with a box taller than wide (a photo with a clear upright face is upright), before the
      windowed pass, which then runs on the photo as stored only if no turn shows a clear face: a photo stored
      sideways costs about what an upright one does. Their boxes count unless the upright passes found a clear
      face after all. ``"always"`` runs every pass; ``"never"`` none of them.

    ``precision`` chooses the weights: ``"fp32"``, the export itself, or ``"int8"``, derived from it at ``photo-anon
    models download`` (``detectors.int8``): about half the network's time on onnxruntime, but it leaves more faces
    uncovered on upright and tilted photos (data/README.md has the figures), so it is a choice, not the default.
    ``window_precision`` chooses them for the windowed looks alone (the photo at full resolution, also turned or
    rolled), which are most of the time; by default the same as ``precision``. INT8 there and FP32 for the
    whole-photo looks keeps upright photos as covered, but its scores differ from FP32's by a few percent either
    way, and where a clear face (``upright_enough``) is seen only in windows that is enough to change whether a
    tilted photo is looked at rolled: tilted photos lose some, so this too is a choice.
    ``backend`` runs the network on onnxruntime (``"onnxruntime"``, the default) or cv2.dnn (``"opencv"``, FP32 only):
    the same boxes either way, and onnxruntime was as fast or faster per forward on every machine measured
    (``python -m benchmarks.backends`` measures each on the machine at hand).

    Not thread-safe (one network per instance): give each thread its own detector.
    """

    def __init__(self, settings: ScrfdSettings | None = None) -> None:
        self.settings = settings = settings or ScrfdSettings()
        self.small_threshold = settings.small_share * settings.threshold
        self.large_threshold = settings.threshold + settings.large_step * (1 - settings.threshold)
        # Every candidate that a rule may look at is collected, whatever the threshold.
        self._floor = min(self.small_threshold * settings.edge_share, settings.confident)
        nets = {
            precision: OnnxNet(self._weights(precision), settings.backend)
            for precision in {settings.precision, settings.windows_in}
        }
        self._net, self._window_net = nets[settings.precision], nets[settings.windows_in]
        self._forwards = 0
        expected = {f"{kind}_{stride}" for kind in ("score", "bbox", "kps") for stride in STRIDES}
        for net in nets.values():
            if not expected <= set(net.outputs):
                raise ValueError(f"{MODEL} is not the SCRFD export this detector decodes (outputs {net.outputs})")

    @staticmethod
    def _weights(precision: str) -> bytes:
        """The verified model of that precision, as the backends load it."""
        return model_path(INT8_MODEL).read_bytes() if precision == "int8" else any_size_model(model_path(MODEL))

    def _find(self, image: np.ndarray) -> list[Detection]:
        return self.decide(self.passes(image), image)

    def passes(self, image: np.ndarray) -> list[Pass]:
        """The passes the photo asks for (see the class's docstring), each with its candidates and what it cost, in
        the order their candidates are merged; a pass whose candidates are not kept is there with none."""
        height, width = image.shape[:2]
        view = Pyramid(image, self.fine_scale(width, height))
        start = time.perf_counter()
        curve = self._brightening(image) if self.settings.brighten_below else None
        brightened = lifted(view, curve) if curve is not None else None
        brightening = time.perf_counter() - start
        looked_at = view if brightened is None else brightened
        done = [
            self._timed("fitted", lambda: self._fitted(view)),
            self._timed("close-up", lambda: self._closeup(view)),
        ]
        if brightened is not None:
            lifted_fitted = self._timed("brightened fitted", lambda: self._lifted(self._fitted(brightened)))
            done += [
                lifted_fitted._replace(seconds=lifted_fitted.seconds + brightening),
                self._timed("brightened close-up", lambda: self._lifted(self._closeup(brightened))),
            ]
        turns, looks = None, None
        if self.settings.turned == "always" or (
            self.settings.turned == "unless_upright" and not self._clearly_upright(_rows(done))
        ):
            turns, seconds, forwards = self._measured(lambda: self._turned_looks(looked_at))
            looks = Pass("turned looks", turns.rows, seconds, forwards)
        # A turn that shows a clear face where the whole photo shows none upright: the photo is stored turned. Its
        # small faces are sought in the photo turned back (the windowed pass on the photo as stored would look at
        # faces lying on their side), and their lean is not a roll: the landmarks the network gives a face lying on
        # its side can read as one.
        clear_turn = turns is not None and turns.clear_angle is not None
        if not (clear_turn and self.settings.turned == "unless_upright"):
            small_faces = self._small_faces_hinted(_rows(done), width, height)
            if small_faces:
                done.append(self._timed("windowed", lambda: self._windowed(view)))
                if brightened is not None:
                    done.append(self._timed("brightened windowed", lambda: self._lifted(self._windowed(brightened))))
            if self.settings.rolled and not clear_turn and (roll := self._roll(_rows(done))) is not None:
                done.append(self._timed("rolled", lambda: self._rolled(looked_at.at(1.0), roll, small_faces)))
        if looks is not None and turns is not None:
            if clear_turn or self.settings.turned == "always" or not self._clearly_upright(_rows(done)):
                done.append(looks)
                if turns.clear_angle is not None:
                    angle = turns.clear_angle
                    done.append(self._timed("turned windows", lambda: self._turned_windows(looked_at, angle)))
            else:
                done.append(looks._replace(rows=_stack([])))
        return done

    def decide(self, passes: Sequence[Pass], image: np.ndarray) -> list[Detection]:
        """The faces the passes' candidates make: in a black-and-white photo every box needs ``grey_share`` of its
        bar, then one box per face (``_decide``)."""
        candidates = _rows(passes)
        if self.settings.grey_share != 1.0 and _is_grey(image):
            candidates[:, NEEDED] *= self.settings.grey_share
        return self._decide(candidates, image.shape[1], image.shape[0])

    def _timed(self, name: str, look: Callable[[], np.ndarray]) -> Pass:
        return Pass(name, *self._measured(look))

    def _measured(self, look: Callable[[], Looked]) -> tuple[Looked, float, int]:
        """What ``look`` returns, its seconds and the network's forwards it took."""
        forwards, start = self._forwards, time.perf_counter()
        looked = look()
        return looked, time.perf_counter() - start, self._forwards - forwards

    def _lifted(self, rows: np.ndarray) -> np.ndarray:
        """Candidates of the brightened view, where a box needs at least ``brightened_floor``."""
        rows[:, NEEDED] = np.maximum(rows[:, NEEDED], self.settings.brightened_floor)
        return rows

    def _decide(self, candidates: np.ndarray, width: int, height: int) -> list[Detection]:
        """One box per face (NMS over every pass), less hair and edges beside a face, less boxes under their bar or
        with less than ``min_face`` px of the photo inside them."""
        if not len(candidates):
            return []
        rects = np.column_stack([candidates[:, :2], candidates[:, 2:4] - candidates[:, :2]])
        kept = np.asarray(
            cv2.dnn.NMSBoxes(rects.tolist(), candidates[:, SCORE].tolist(), 0.0, self.settings.nms_iou)
        ).ravel()
        survivors = candidates[kept]
        scores = survivors[:, SCORE]
        confident = survivors[scores >= self.settings.confident]
        found = []
        for row, score in zip(survivors, scores, strict=True):
            if score < row[NEEDED] or (score < self.settings.threshold and self._beside(row, confident)):
                continue
            x1, y1, x2, y2 = row[:4]
            box = box_detection(x1, y1, x2, y2, float(score), self.name).clipped(width, height)
            if box is not None and min(box.w, box.h) >= self.settings.min_face:
                found.append(box)
        return found

    def _beside(self, weak: np.ndarray, confident: np.ndarray) -> bool:
        """Whether a weak box's centre lies within a higher-scoring box grown by ``near_face`` each way: it is then
        that face's hair or edge, which the face's mask covers anyway, not another face."""
        cx, cy = (weak[0] + weak[2]) / 2, (weak[1] + weak[3]) / 2
        higher = confident[confident[:, SCORE] > weak[SCORE]]
        grow_w = self.settings.near_face * (higher[:, 2] - higher[:, 0])
        grow_h = self.settings.near_face * (higher[:, 3] - higher[:, 1])
        return bool(
            np.any(
                (higher[:, 0] - grow_w <= cx)
                & (cx <= higher[:, 2] + grow_w)
                & (higher[:, 1] - grow_h <= cy)
                & (cy <= higher[:, 3] + grow_h)
            )
        )

    def _fitted(self, view: Pyramid) -> np.ndarray:
        """Candidates of the whole photo fitted into 640 px (a photo that small is seen at full resolution), where
        large faces are found."""
        height, width = view.shape[:2]
        scale = self._fitted_scale(width, height)
        return self._with_needs(self._detect_at(view, scale, self._net), scale, width, height)

    def _closeup(self, view: Pyramid) -> np.ndarray:
        """Candidates of the close-up look, the whole photo in ``closeup_side`` px, of faces of at least
        ``closeup_face`` of the photo; nothing for a photo the fitted pass sees that small already."""
        height, width = view.shape[:2]
        longest = max(width, height)
        if longest * self._fitted_scale(width, height) <= self.settings.closeup_side:
            return _stack([])
        scale = self.settings.closeup_side / longest
        closeup = self._detect_at(view, scale, self._net)
        side = np.maximum(closeup[:, 2] - closeup[:, 0], closeup[:, 3] - closeup[:, 1])
        closeup = closeup[side >= self.settings.closeup_face * longest]
        return self._with_needs(closeup, scale, width, height)

    def _fitted_scale(self, width: int, height: int) -> float:
        """The fitted pass's scale: the photo into 640 px, or the windowed pass's own for a photo that small."""
        longest = max(width, height)
        fine = self.fine_scale(width, height)
        return FITTED / longest if longest * fine > FITTED else fine

    def _windowed(self, view: Pyramid) -> np.ndarray:
        """Candidates of the full-resolution pass in windows, where small faces are seen; nothing for a photo that
        the whole-photo pass already sees at that resolution."""
        height, width = view.shape[:2]
        scale = self.fine_scale(width, height)
        if max(width, height) * scale <= FITTED:
            return _stack([])
        return self._with_needs(self._detect_at(view, scale, self._window_net), scale, width, height)

    def _with_needs(self, rows: np.ndarray, scale: float, width: int, height: int, edges: bool = True) -> np.ndarray:
        """The rows with the score each box needs: by its size in the photo (``large_face``) and in the network's
        input (``small_face``), and less if it reaches an edge of the photo (``edges``) with enough of it inside to be
        part of a face (half of ``small_face``)."""
        side = np.maximum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
        needed = np.where(side * scale < self.settings.small_face, self.small_threshold, self.settings.threshold)
        needed = np.where(side >= self.settings.large_face * max(width, height), self.large_threshold, needed)
        if edges:
            reach = self.settings.edge_margin / scale
            at_edge = (
                (rows[:, 0] <= reach)
                | (rows[:, 1] <= reach)
                | (rows[:, 2] >= width - reach)
                | (rows[:, 3] >= height - reach)
            )
            inside_w = np.minimum(rows[:, 2], width) - np.maximum(rows[:, 0], 0)
            inside_h = np.minimum(rows[:, 3], height) - np.maximum(rows[:, 1], 0)
            at_edge &= np.minimum(inside_w, inside_h) * scale >= self.settings.small_face / 2
            # A close-up's box at the edge keeps its own bar: a pet's head filling a corner scores like a cut face.
            cut_large = self.settings.edge_large & (side < self.settings.closeup_face * max(width, height))
            base = np.where(cut_large, np.minimum(needed, self.settings.threshold), needed)
            needed = np.where(at_edge, base * self.settings.edge_share, needed)
        return np.column_stack([rows[:, :NEEDED], needed]).astype(np.float32)

    def _brightening(self, image: np.ndarray) -> np.ndarray | None:
        """The lookup table that lifts the photo's shadows if it is dark: a gamma curve that takes the brightness of
        its brighter quarter (the 75th percentile, black borders aside) from under ``brighten_below`` to
        ``brighten_to``."""
        grey = cv2.cvtColor(np.ascontiguousarray(_sample(image)), cv2.COLOR_BGR2GRAY)
        lit = grey[grey > 0]
        bright = float(np.percentile(lit if lit.size else grey, 75)) / 255
        if bright >= self.settings.brighten_below:
            return None
        exponent = math.log(self.settings.brighten_to) / math.log(max(bright, 1 / 255))
        return np.clip(np.round(255 * (np.arange(256) / 255) ** exponent), 0, 255).astype(np.uint8)

    def _roll(self, candidates: np.ndarray) -> float | None:
        """The angle (degrees, counter-clockwise) that would turn the clear faces upright, if they lean together by
        ``roll_from`` or more, and by less than 45 (beyond, the photo is stored sideways: the turned passes' case):
        the median slope of their eye and mouth lines."""
        clear = candidates[candidates[:, SCORE] >= self.settings.upright_enough]
        if not len(clear):
            return None
        points = clear[:, LANDMARKS].reshape(-1, 5, 2)
        eyes = points[:, 1] - points[:, 0]
        mouth = points[:, 4] - points[:, 3]
        slopes = np.degrees(np.arctan2(eyes[:, 1] + mouth[:, 1], eyes[:, 0] + mouth[:, 0]))
        roll = float(np.median(slopes))
        return roll if self.settings.roll_from <= abs(roll) < 45 else None

    def _rolled(self, image: np.ndarray, roll: float, small_faces: bool) -> np.ndarray:
        """Candidates of the fitted pass, and of the full-resolution one where ``small_faces`` may be there, on the
        photo turned upright by ``roll`` degrees, the canvas grown so nothing is cut; each box keeps its size around
        its centre moved back."""
        height, width = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), roll, 1.0)
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        turned_w, turned_h = math.ceil(width * cos + height * sin), math.ceil(width * sin + height * cos)
        matrix[0, 2] += (turned_w - width) / 2
        matrix[1, 2] += (turned_h - height) / 2
        fine = self.fine_scale(turned_w, turned_h)
        upright = Pyramid(cv2.warpAffine(image, matrix, (turned_w, turned_h), flags=cv2.INTER_LINEAR), fine)
        fitted = self._fitted_scale(turned_w, turned_h)
        scales = list(dict.fromkeys([fine, fitted] if small_faces else [fitted]))
        rows = _stack(
            [
                self._with_needs(
                    self._detect_at(upright, scale, self._net if scale == fitted else self._window_net),
                    scale,
                    turned_w,
                    turned_h,
                    edges=False,
                )
                for scale in scales
            ]
        )
        back = cv2.invertAffineTransform(matrix)
        centres = np.column_stack([(rows[:, 0] + rows[:, 2]) / 2, (rows[:, 1] + rows[:, 3]) / 2, np.ones(len(rows))])
        moved = centres @ back.T
        half = (rows[:, 2:4] - rows[:, :2]) / 2
        rows[:, :2], rows[:, 2:4] = moved - half, moved + half
        rows[:, LANDMARKS] = 0  # the landmarks are not carried back: no later pass reads them
        return rows

    def _small_faces_hinted(self, candidates: np.ndarray, width: int, height: int) -> bool:
        """Whether faces too small for the whole-photo looks may be in the photo, so that the windowed pass, which
        looks for them at full resolution, has to run. They may not be where those looks saw a clear face
        (``upright_enough``) and none of their boxes under ``hint_face`` px of the fitted look scores ``small_hint``:
        small faces give such boxes, and without one the windowed pass finds nothing the other passes do not. A
        photo with no clear face is looked at in windows (they are its last chance), and so is one the fitted look
        sees at less than 1/HINT_REACH of the windowed pass's resolution unless a clear face fills a third of it (a
        large photo of a group, whose faces the fitted look may see as a few pixels; a selfie is not)."""
        scores = candidates[:, SCORE]
        clear = scores >= self.settings.upright_enough
        if not self.settings.small_hint or not np.any(clear):
            return True
        scale = self._fitted_scale(width, height)
        side = np.maximum(candidates[:, 2] - candidates[:, 0], candidates[:, 3] - candidates[:, 1])
        selfie = np.any(clear & (side >= self.settings.closeup_face * max(width, height)))
        if self.fine_scale(width, height) > HINT_REACH * scale and not selfie:
            return True
        return bool(np.any((side * scale < self.settings.hint_face) & (scores >= self.settings.small_hint)))

    def _clearly_upright(self, candidates: np.ndarray) -> bool:
        """Whether an upright pass saw a face clearly (``upright_enough``) and taller than wide, so the photo is
        upright: the network also finds large sideways faces, but gives them wide boxes."""
        clear = candidates[candidates[:, SCORE] >= self.settings.upright_enough]
        return bool(np.any(clear[:, 3] - clear[:, 1] > clear[:, 2] - clear[:, 0]))

    def _turned_looks(self, view: Pyramid) -> TurnedLooks:
        """Candidates of faces lying sideways or upside down, in the photo's pixels: the photo fitted into one input
        (the fitted pass's copy), looked at turned 90, 180 and 270 degrees. The turn with the best face, if that face
        is clear (``upright_enough``), is taken to be the way round the photo is stored."""
        height, width = view.shape[:2]
        fitted = min(1.0, FITTED / max(width, height))
        small = view.at(fitted)
        view_h, view_w = small.shape[:2]
        rows, best_angle, best_score = [], 0, 0.0
        needed = max(self.settings.turned_threshold, self.settings.threshold)
        for angle in TURNS:
            for box in self._run(cv2.rotate(small, ROTATE_CODES[angle]), self._net, self.settings.turned_threshold):
                corners: Sequence[float] = [c / fitted for c in unturn_box(tuple(box[:4]), angle, view_w, view_h)]
                rows.append(np.array([*corners, box[SCORE], *np.zeros(10), needed], np.float32))
                if box[SCORE] > best_score:
                    best_angle, best_score = angle, float(box[SCORE])
        return TurnedLooks(
            _stack([np.array(rows, np.float32).reshape(-1, COLUMNS)]),
            best_angle if best_score >= self.settings.upright_enough else None,
        )

    def _turned_windows(self, view: Pyramid, angle: int) -> np.ndarray:
        """Candidates of the windowed pass on the photo turned by ``angle``, in the photo's pixels: a photo stored
        turned has its small faces found as on an upright one."""
        height, width = view.shape[:2]
        upright = turned(view, angle)
        turned_h, turned_w = upright.shape[:2]
        scale = self.fine_scale(turned_w, turned_h)
        found = self._with_needs(self._detect_at(upright, scale, self._window_net), scale, turned_w, turned_h)
        rows = [
            np.array([*unturn_box(tuple(box[:4]), angle, width, height), box[SCORE], *np.zeros(10), box[NEEDED]])
            for box in found
        ]
        return _stack([np.array(rows, np.float32).reshape(-1, COLUMNS)])

    def fine_scale(self, width: int, height: int) -> float:
        """The scale of the windowed pass: full size up to ``max_side``, shrunk by at most ``max_shrink`` when that
        saves a row or column of windows (a 1300 x 1000 photo: one window at 0.98 instead of two at full size)."""
        scale = min(1.0, self.settings.max_side / max(width, height, 1))

        def windows(at: float) -> int:
            rows = len(window_starts(round(height * at), self.settings.max_window, self.settings.window_overlap))
            return rows * len(window_starts(round(width * at), self.settings.max_window, self.settings.window_overlap))

        for side in sorted((width, height)):
            fitted = self.settings.max_window / side
            if fitted < scale and fitted >= scale * (1 - self.settings.max_shrink) and windows(fitted) < windows(scale):
                return fitted
        return scale

    def _detect_at(self, view: Pyramid, scale: float, net: OnnxNet) -> np.ndarray:
        """Rows (x1, y1, x2, y2, score, landmarks) in image pixels found by ``net`` window by window on the image
        scaled by ``scale``."""
        scaled = view.at(scale)
        height, width = scaled.shape[:2]
        window = (
            even_window(width, self.settings.max_window, self.settings.window_overlap),
            even_window(height, self.settings.max_window, self.settings.window_overlap),
        )
        rows = np.array(
            list(
                boxes_by_window(
                    scaled,
                    window,
                    self.settings.window_overlap,
                    lambda part: self._run(part, net),
                    self.settings.edge_margin,
                )
            )
        )
        to_image = np.full(NEEDED, 1 / scale, np.float32)
        to_image[SCORE] = 1
        return rows.reshape(-1, NEEDED).astype(np.float32) * to_image

    def _run(self, window: np.ndarray, net: OnnxNet, floor: float | None = None) -> np.ndarray:
        """Rows (x1, y1, x2, y2, score, landmarks) of boxes ``net`` scores ``floor`` or more in one window, padded to
        a multiple of the coarsest stride."""
        floor = self._floor if floor is None else floor
        height, width = (math.ceil(side / INPUT_MULTIPLE) * INPUT_MULTIPLE for side in window.shape[:2])
        padded = cv2.copyMakeBorder(
            np.ascontiguousarray(window),
            0,
            height - window.shape[0],
            0,
            width - window.shape[1],
            cv2.BORDER_CONSTANT,
            value=(0, 0, 0),
        )
        outputs = net.run(input_blob(padded))
        self._forwards += 1
        found = []
        for stride in STRIDES:
            scores = outputs[f"score_{stride}"].reshape(-1)
            keep = scores >= floor
            distances = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep] * stride
            centres = _anchor_centres(stride, height, width)[keep]
            landmarks = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep] * stride + centres[:, None, :]
            found.append(
                np.column_stack(
                    [centres - distances[:, :2], centres + distances[:, 2:], scores[keep], landmarks.reshape(-1, 10)]
                )
            )
        return np.concatenate(found)
