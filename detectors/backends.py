"""Inference backends for the ONNX detectors: one model, its outputs by name, on cv2.dnn or onnxruntime.

A detector decodes the outputs the same way whichever backend ran them, so choosing a backend is a matter of
speed alone, measured per detector (``python -m benchmarks.backends``). onnxruntime is imported only when a detector
asks for it, so a process that runs only cv2.dnn detectors does not load it.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import cv2
import numpy as np
import onnx

# onnxruntime's Linux wheels report to Microsoft by default (a device id kept in ~/.cache, a session file in the
# temporary directory, uploads of process and session events). A tool whose promise is that nothing about its use
# leaves the machine turns that off, for this process and every worker it starts, before onnxruntime starts.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

Outputs = dict[str, np.ndarray]
Forward = Callable[[np.ndarray], list[np.ndarray]]


class OnnxNet:
    """An ONNX model loaded on one backend; ``run`` takes an NCHW float32 blob and returns every output by name.

    Threads follow OpenCV's setting (``cv2.getNumThreads()``) at load, so ``anonymizer.warm_up(threads=...)``
    sizes both backends alike. Not thread-safe: give each thread its own.
    """

    def __init__(self, model: bytes, backend: str = "opencv") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend is one of {', '.join(BACKENDS)}, not {backend!r}")
        self.backend = backend
        self.outputs, self._run = _LOADERS[backend](model)

    def run(self, blob: np.ndarray) -> Outputs:
        return dict(zip(self.outputs, self._run(blob), strict=True))


def _opencv(model: bytes) -> tuple[list[str], Forward]:
    """The model's output names and its forward on a cv2.dnn network."""
    net = cv2.dnn.readNetFromONNX(np.frombuffer(model, np.uint8))
    names = list(net.getUnconnectedOutLayersNames())

    def forward(blob: np.ndarray) -> list[np.ndarray]:
        net.setInput(blob)
        return list(net.forward(names))

    return names, forward


def _onnxruntime(model: bytes) -> tuple[list[str], Forward]:
    """The model's output names and its forward on an onnxruntime session."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, cv2.getNumThreads())
    options.inter_op_num_threads = 1
    # Threads that wait for work sleep instead of spinning: on a machine shared with other processes (a bot's
    # other workers) a spinning thread takes a core the others need.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # Every window has its own size, so a memory plan made for one input size is of no use to the next.
    options.enable_mem_pattern = False
    options.log_severity_level = 3  # its warnings name model internals a user cannot act on
    session = onnxruntime.InferenceSession(_open_shapes(model), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    feed = session.get_inputs()[0].name
    return names, lambda blob: list(session.run(names, {feed: blob}))


def _open_shapes(model: bytes) -> bytes:
    """The model without the batch and output sizes it was exported with: onnxruntime holds every run to them (and
    warns at every input size but the export's), while cv2.dnn, like the detectors, takes any."""
    graph = onnx.load_from_string(model)
    for output in graph.graph.output:
        output.type.tensor_type.ClearField("shape")
    del graph.graph.value_info[:]
    graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    return graph.SerializeToString()


_LOADERS: dict[str, Callable[[bytes], tuple[list[str], Forward]]] = {"opencv": _opencv, "onnxruntime": _onnxruntime}
BACKENDS = tuple(_LOADERS)
