"""Faces that slip through in video: coverage per frame on clips with known faces, with tracking and without.

No labelled video is at hand, so the clips are made from the labelled photos of ../shared/eval (read from there,
never copied): a virtual camera pans across each photo, zooms in a little and turns a few degrees, and the clip is
encoded as H.264 and decoded back, as a phone's would be. Every face's box is the photo's box moved by the same
camera, so it is known in every frame.

Each clip's frames are searched once per detector setting, frame by frame; the ways of covering are then replayed
over those detections through the library's own ``FrameCoverer`` and filter mask:
- per-frame detector, no tracking: each frame painted with what was found in it alone;
- tracking: keyframes every N frames (N = 1, 2, 3), linked into tracks, bridged and held (the library's default
  is N = 3 on frames shrunk to 640 px).
A face counts as covered in a frame when 75 % of its box is painted (the photo comparison's rule). A *slip* is a
face bare for 1 to 5 frames with the face covered in the frames just before and just after. Faces under 20 px
tall in a frame are not counted (they are too small to identify, and the photo figures count 20 px+ too).

    python -m benchmarks.video_slips                    # 40 photos, 45 frames each (about 15 minutes)
    python -m benchmarks.video_slips --photos 8 --frames 30
    python -m benchmarks.video_slips --deface /path/to/venv/bin/deface    # also deface's video mode
    python -m benchmarks.video_slips --deface out/peer/venv/bin/deface --report data/reports/video-slips.json
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from anonymizer import Options, decode_image, face_filter, warm_up
from anonymizer.pipeline import find_faces
from anonymizer.tracking import FrameCoverer, Reach, Tracker, search_interval, shrunk_search
from benchmarks.datasets import Sample, load_annotations
from benchmarks.machine import stamp
from detectors import Detection
from testing.paths import EVAL_DIR

FPS = 30
MIN_FACE_PX = 20
COVERED = 0.75
MAX_SLIP_FRAMES = 5
CRF = "28"


@dataclass(frozen=True)
class Clip:
    """A clip's decoded frames and the boxes (x, y, w, h) of its faces in each frame."""

    name: str
    frames: list[np.ndarray]
    boxes: list[np.ndarray]


def camera(sample_index: int, frames: int, width: int, height: int) -> tuple[list[np.ndarray], tuple[int, int]]:
    """Affine matrices photo -> frame for a pan across 15 % of the photo, a zoom to 1.15 and a turn of up to 3 degrees;
    the frame is 80 % of the photo's size. Each photo gets its own direction, from its index."""
    rng = np.random.default_rng(sample_index)
    out_w, out_h = (round(width * 0.8) // 2 * 2, round(height * 0.8) // 2 * 2)
    direction = rng.uniform(0, 2 * math.pi)
    pan = 0.15 * min(width, height)
    turn = rng.uniform(-3, 3)
    matrices = []
    for index in range(frames):
        t = index / max(1, frames - 1)
        cx = width / 2 + pan * (t - 0.5) * math.cos(direction)
        cy = height / 2 + pan * (t - 0.5) * math.sin(direction)
        scale = 1.0 + 0.15 * t
        matrix = cv2.getRotationMatrix2D((cx, cy), turn * t, scale)
        matrix[:, 2] += (out_w / 2 - cx, out_h / 2 - cy)
        matrices.append(matrix)
    return matrices, (out_w, out_h)


def moved_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Axis-aligned boxes around each box's four corners moved by ``matrix``."""
    if not len(boxes):
        return np.zeros((0, 4), np.float32)
    x, y, w, h = boxes.T
    corners = np.stack([np.stack([x, y]), np.stack([x + w, y]), np.stack([x, y + h]), np.stack([x + w, y + h])])
    moved = np.einsum("ij,cjn->cin", matrix[:, :2], corners) + matrix[:, 2][None, :, None]
    x1, y1 = moved[:, 0].min(axis=0), moved[:, 1].min(axis=0)
    x2, y2 = moved[:, 0].max(axis=0), moved[:, 1].max(axis=0)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)


def h264_round_trip(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The frames as a phone's H.264 would give them back."""
    buffer = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buffer, "w", format="mp4") as output:
        stream = output.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": CRF, "preset": "veryfast"}
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="bgr24")):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    with av.open(io.BytesIO(buffer.getvalue())) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def make_clip(sample: Sample, index: int, frames: int) -> Clip:
    photo = decode_image(sample.path.read_bytes()).bgr
    height, width = photo.shape[:2]
    matrices, size = camera(index, frames, width, height)
    pictures = [cv2.warpAffine(photo, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT) for m in matrices]
    return Clip(sample.name, h264_round_trip(pictures), [moved_boxes(sample.faces, m) for m in matrices])


def counted_faces(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Every face's box cut to the frame, and which must be covered: MIN_FACE_PX tall and mostly inside."""
    x1, y1 = np.clip(boxes[:, 0], 0, width), np.clip(boxes[:, 1], 0, height)
    x2, y2 = np.clip(boxes[:, 0] + boxes[:, 2], 0, width), np.clip(boxes[:, 1] + boxes[:, 3], 0, height)
    inside = (x2 - x1) * (y2 - y1) >= 0.5 * boxes[:, 2] * boxes[:, 3]
    counted = inside & (boxes[:, 3] >= MIN_FACE_PX)
    return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1).round().astype(int), counted


def coverage(mask: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    return np.array([(mask[y : y + h, x : x + w] >= 0.5).mean() if w * h else 1.0 for x, y, w, h in boxes])


@dataclass
class Tally:
    """Face-frames covered, frames with every face covered, slips and over-painting, summed over clips."""

    face_frames: int = 0
    covered: int = 0
    frames: int = 0
    all_covered: int = 0
    slips: int = 0
    slip_frames: int = 0
    painted_outside: float = 0.0

    def add_clip(self, covered: np.ndarray, counted: np.ndarray, outside: list[float]) -> None:
        """``covered`` and ``counted``: frames x faces flags; only counted entries are scored."""
        self.frames += len(covered)
        self.all_covered += int((covered | ~counted).all(axis=1).sum())
        self.face_frames += int(counted.sum())
        self.covered += int((covered & counted).sum())
        self.painted_outside += sum(outside)
        for face in range(covered.shape[1]):
            runs = _slip_runs(covered[counted[:, face], face].tolist())
            self.slips += len(runs)
            self.slip_frames += sum(runs)

    def figures(self) -> dict[str, float | int]:
        """The tally as a report keeps it: shares in percent."""
        return {
            "face_frames_covered": 100 * self.covered / max(1, self.face_frames),
            "frames_all_covered": 100 * self.all_covered / max(1, self.frames),
            "slips": self.slips,
            "slip_frames": self.slip_frames,
            "painted_outside": 100 * self.painted_outside / max(1, self.frames),
        }

    def row(self) -> list[str]:
        figures = self.figures()
        return [
            f"{figures['face_frames_covered']:.1f} %",
            f"{figures['frames_all_covered']:.1f} %",
            str(self.slips),
            str(self.slip_frames),
            f"{figures['painted_outside']:.2f} %",
        ]


def _slip_runs(covered: Sequence[bool]) -> list[int]:
    """Lengths of the bare runs of 1..MAX_SLIP_FRAMES frames with covered frames on both sides."""
    runs, start = [], None
    for index, is_covered in enumerate(covered):
        if not is_covered and start is None:
            start = index
        elif is_covered and start is not None:
            if start > 0 and index - start <= MAX_SLIP_FRAMES:
                runs.append(index - start)
            start = None
    return runs


def replay(clip: Clip, detections: list[list[Detection]], detect_every: int, tracking: bool) -> tuple:
    """The library's painting replayed over cached detections: each frame's mask, scored."""
    painter = face_filter(Options())
    height, width = clip.frames[0].shape[:2]
    shapes = [np.empty((height, width, 0), np.uint8) for _ in clip.frames]
    index_of = {id(shape): index for index, shape in enumerate(shapes)}
    masks: dict[int, np.ndarray] = {}

    class Recorder:
        def apply(self, frame: np.ndarray, regions) -> np.ndarray:
            masks[index_of[id(frame)]] = painter.mask((height, width), regions)
            return frame

    def find(frame: np.ndarray) -> list[Detection]:
        return detections[index_of[id(frame)]]

    if tracking:
        coverer = FrameCoverer(find, Recorder(), search_interval(detect_every), Tracker())
    else:
        coverer = FrameCoverer(find, Recorder(), 0.0, Tracker(Reach(max_gap=0, hold=0, frames=0)))
    for index, shape in enumerate(shapes):
        list(coverer.push(shape, index / FPS, None))
    list(coverer.finish())
    empty = np.zeros((height, width), np.float32)
    return score(clip, [masks.get(index, empty) for index in range(len(clip.frames))])


def score(clip: Clip, masks: list[np.ndarray], trusted: np.ndarray | None = None) -> tuple:
    """Covered and counted flags (frames x faces) and each frame's painted share outside every face box.

    ``trusted`` (per frame, optional) marks the pixels where a mask read back from pixels can be believed."""
    height, width = clip.frames[0].shape[:2]
    covered, counted, outside = [], [], []
    for index, mask in enumerate(masks):
        boxes, counts = counted_faces(clip.boxes[index], width, height)
        covered.append(coverage(mask, boxes) >= COVERED if len(boxes) else np.zeros(0, bool))
        counted.append(counts)
        faces = np.zeros((height, width), bool)
        for x, y, w, h in boxes:
            faces[y : y + h, x : x + w] = True
        painted = (mask >= 0.5) & ~faces
        if trusted is not None:
            painted &= trusted[index]
        outside.append(float(painted.mean()))
    return np.array(covered), np.array(counted), outside


def deface_run(clip: Clip, deface: Path) -> tuple:
    """What deface's video mode paints (black ellipses, ``--replacewith solid``), read back from its output."""
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "clip.mp4", Path(folder) / "out.mp4"
        height, width = clip.frames[0].shape[:2]
        with av.open(str(source), "w") as output:
            stream = output.add_stream("libx264", rate=FPS)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "12", "preset": "veryfast"}
            for pixels in clip.frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="bgr24")):
                    output.mux(packet)
            for packet in stream.encode():
                output.mux(packet)
        subprocess.run(
            [str(deface), str(source), "--output", str(target), "--replacewith", "solid", "--keep-audio"],
            check=True,
            capture_output=True,
            timeout=1800,
        )
        with av.open(str(target)) as container:
            painted = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    # Black in the output is deface's paint, except where the input was dark already: there it says nothing, and
    # counts as painted inside faces (so dark hair costs deface nothing) and is ignored outside them.
    masks, trusted = [], []
    for before, after in zip(clip.frames, painted, strict=True):
        after = after[: before.shape[0], : before.shape[1]]  # deface's writer pads frames to 16 px blocks
        dark_before = before.max(axis=2) <= 40
        masks.append(((after.max(axis=2) <= 24) | dark_before).astype(np.float32))
        trusted.append(~dark_before)
    return score(clip, masks, np.array(trusted))


WAYS: dict[str, tuple[int, int, bool]] = {
    # name: (detection side, search every this many frames of 30 a second, whether faces are tracked)
    "per-frame detector, no tracking, 640 px": (640, 1, False),
    "per-frame detector, no tracking, full size": (0, 1, False),
    "tracking, every frame, 640 px": (640, 1, True),
    "tracking, every 2nd frame, 640 px": (640, 2, True),
    "tracking, every 3rd frame, 640 px (default)": (640, 3, True),
    "tracking, every 3rd frame, full size": (0, 3, True),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", type=Path, default=EVAL_DIR, help="labelled photos (annotations.json)")
    parser.add_argument("--photos", type=int, default=40, help="photos turned into clips, evenly spaced")
    parser.add_argument("--frames", type=int, default=45, help="frames per clip (30 per second)")
    parser.add_argument("--deface", type=Path, help="a deface executable (its own virtualenv) to compare with")
    parser.add_argument("--report", type=Path, help="also write the figures to this JSON file (data/reports/)")
    args = parser.parse_args(argv)
    if not (args.eval / "annotations.json").exists():
        print(f"no labelled photos at {args.eval}", file=sys.stderr)
        return 2
    samples = [s for s in load_annotations(args.eval) if len(s.faces) and s.faces[:, 3].max() >= MIN_FACE_PX]
    step = max(1, len(samples) // args.photos)
    chosen = samples[::step][: args.photos]
    options = Options()
    warm_up(options)
    sides = sorted({side for side, _, _ in WAYS.values()})
    tallies = {name: Tally() for name in WAYS}
    if args.deface:
        tallies["deface 1.5.0 video mode (CenterFace, every frame)"] = Tally()
    seconds = dict.fromkeys(sides, 0.0)
    started = time.perf_counter()
    for number, sample in enumerate(chosen):
        clip = make_clip(sample, number, args.frames)
        detections = {}
        for side in sides:
            search = shrunk_search(lambda frame: find_faces(frame, options), side)
            mark = time.perf_counter()
            detections[side] = [search(frame) for frame in clip.frames]
            seconds[side] += time.perf_counter() - mark
        for name, (side, every, tracking) in WAYS.items():
            tallies[name].add_clip(*replay(clip, detections[side], every, tracking))
        if args.deface:
            tallies["deface 1.5.0 video mode (CenterFace, every frame)"].add_clip(*deface_run(clip, args.deface))
        print(f"[{number + 1}/{len(chosen)}] {sample.name} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    frames = len(chosen) * args.frames
    print(f"\n{len(chosen)} clips of {args.frames} frames from {args.eval}", end="; ")
    print(f"faces {MIN_FACE_PX} px+ counted; H.264 crf {CRF}")
    for side in sides:
        print(f"detector {options.detector} at {side or 'full'} px: {seconds[side] / frames * 1000:.0f} ms a frame")
    header = [
        "",
        "face-frames covered",
        "frames with every face covered",
        "slips",
        "slip frames",
        "painted outside faces",
    ]
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, tally in tallies.items():
        print(f"| {name} | " + " | ".join(tally.row()) + " |")
    print(f"\n{tallies[next(iter(WAYS))].face_frames} face-frames in {frames} frames")
    if args.report:
        report = {
            "generated": stamp("python -m benchmarks.video_slips", argv),
            "clips": len(chosen),
            "frames_per_clip": args.frames,
            "face_frames": tallies[next(iter(WAYS))].face_frames,
            "ms_per_frame": {str(side or "full"): seconds[side] / frames * 1000 for side in sides},
            "ways": {name: tally.figures() for name, tally in tallies.items()},
        }
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
