"""Measure the activation ranges SCRFD's INT8 weights are derived with, on what the detector itself looks at.

    python -m benchmarks.int8          # writes detectors/scrfd_int8_ranges.json and prints the derived file's sha256

The detector (every pass on: turned looks on every photo) runs on photos scikit-image ships and on scenes made of
them (the astronaut as selfies filling the frame at a thumbnail's, Telegram's and a file's size, groups of faces from
16 to 600 px, a crowd of small faces, and dark, black-and-white and tilted versions), and every input it gives its
network (fitted and close-up looks, full-resolution windows, brightened, rolled and turned views) is an input of
the calibration: the ranges are those of what the detector sees, from images anyone can make again. No labelled
photo takes part, so the halves of the labelled set stay for measuring. The sha256 it prints is the one
``detectors.models`` pins for the derived file.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import onnx
from skimage import data
from tqdm import tqdm

from benchmarks.variants import dark, tilted
from detectors import int8
from detectors.backends import OnnxNet, Outputs
from detectors.models import model_path
from detectors.scrfd import MODEL, ScrfdDetector, ScrfdSettings, any_size_model
from testing.images import composite, selfie, textured

# scikit-image's photos: the one with a face, and objects, animals, scenes, a sky and a grey one.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "camera")
SELFIE_FILLS = (0.5, 0.65, 0.85, 0.95)
SELFIE_HEIGHTS = (400, 1280, 2560)


def _bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)


def _on_texture(size: tuple[int, int], faces: list[tuple[int, int, int]], seed: int) -> np.ndarray:
    """The astronaut's head pasted at (x, y, face height) on a photo-like texture."""
    image, _ = composite(size, faces)
    background = textured(*size, seed)
    pasted = np.any(image != 90, axis=-1)
    background[pasted] = image[pasted]
    return background


def _crowd(width: int, height: int, seed: int) -> np.ndarray:
    """scikit-image's small faces (25 px, grey) in rows, some enlarged, on a texture: a crowd far away."""
    faces = data.lfw_subset()[:100]
    canvas = textured(width, height, seed)
    rng = np.random.default_rng(seed)
    x, y = 10, 10
    for face in faces:
        side = int(rng.choice((16, 25, 36, 50)))
        patch = _bgr(cv2.resize((face * 255).astype(np.uint8), (side, side), interpolation=cv2.INTER_AREA))
        if x + side > width:
            x, y = 10, y + 60
        if y + side > height:
            break
        canvas[y : y + side, x : x + side] = patch
        x += side + 20
    return canvas


def scenes() -> Iterator[np.ndarray]:
    """The photos and scenes the calibration shows the detector (BGR)."""
    for name in PHOTOS:
        yield _bgr(getattr(data, name)())
    for fill in SELFIE_FILLS:
        for height in SELFIE_HEIGHTS:
            yield selfie(fill, height)[0]
    groups = [
        _on_texture((1600, 1200), [(40, 40, 16), (120, 40, 24), (260, 60, 40), (500, 80, 90), (800, 300, 420)], 1),
        _on_texture((4032, 3024), [(200, 200, 24), (600, 300, 48), (1200, 400, 120), (2000, 800, 300)], 2),
        _on_texture((1024, 768), [(x, y, 20) for x in range(30, 980, 80) for y in range(30, 720, 90)], 3),
        _crowd(1280, 960, 4),
    ]
    yield from groups
    changed = [groups[0], groups[3], selfie(0.65, 1280)[0], _bgr(data.astronaut())]
    for image in changed:
        none = np.empty((0, 4))
        for variant in (dark, tilted(25)):
            yield from (
                cv2.imdecode(np.frombuffer(case.data, np.uint8), cv2.IMREAD_COLOR)
                for case in variant("calibration", image, none, none)
            )
        yield cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


class Recording:
    """The detector's network, keeping every input it is given."""

    def __init__(self, net: OnnxNet) -> None:
        self._net = net
        self.inputs: list[np.ndarray] = []

    def run(self, blob: np.ndarray) -> Outputs:
        self.inputs.append(blob)
        return self._net.run(blob)


def seen_inputs() -> Iterator[np.ndarray]:
    """Every input the detector gives its network on the calibration scenes, one scene at a time."""
    scrfd = ScrfdDetector(ScrfdSettings(turned="always", precision="fp32", window_precision="fp32"))
    recording = Recording(scrfd._net)
    scrfd._net = scrfd._window_net = recording  # type: ignore[assignment]
    for scene in tqdm(list(scenes()), desc="calibration scenes", unit="scene"):
        scrfd.detect(scene)
        yield from recording.inputs
        recording.inputs.clear()


def calibrate(target: Path) -> None:
    """Measure the ranges into ``target`` (onnxruntime's calibration cache) from the detector's own inputs."""
    from onnx import version_converter
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    model = version_converter.convert_version(onnx.load_from_string(any_size_model(model_path(MODEL))), int8.OPSET)
    inputs = seen_inputs()

    class Seen(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            blob = next(inputs, None)
            return None if blob is None else {model.graph.input[0].name: blob}

    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        quantize_static(
            model,
            Path(folder) / "int8.onnx",
            Seen(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            calibration_cache_path=target,
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranges", type=Path, default=int8.RANGES, help="where the ranges are written")
    args = parser.parse_args(argv)
    calibrate(args.ranges)
    derived = int8.derive(model_path(MODEL), args.ranges)
    print(f"ranges in {args.ranges}; the derived INT8 file's sha256: {hashlib.sha256(derived).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
