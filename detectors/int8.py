"""SCRFD's INT8 weights, derived from its FP32 weights where they are installed: static quantization with the
activation ranges recorded beside this module, so every machine derives the very same file and checks it.

The ranges were measured once by ``python -m benchmarks.int8`` on what the detector itself feeds its network (the
fitted and close-up looks, full-resolution windows, brightened, rolled and turned views) of photos scikit-image
ships and scenes made of them; that command writes them here, with the derived file's sha256. No labelled photo
takes part. onnxruntime quantizes, and runs the result: cv2.dnn does not read this quantized graph.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import onnx
from onnx import version_converter

from detectors.scrfd import any_size_model

# The activation ranges, in onnxruntime's calibration-cache format.
RANGES = Path(__file__).with_name("scrfd_int8_ranges.json")
# The first opset with per-channel dequantization.
OPSET = 13


def derive(fp32: Path, ranges: Path = RANGES) -> bytes:
    """The INT8 model of the FP32 export at ``fp32``, at any input size: QDQ, weights per channel (int8), activations
    per tensor (uint8) at the ``ranges`` recorded."""
    # Imported here: the quantizer is a large import that only `models download` needs.
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = version_converter.convert_version(onnx.load_from_string(any_size_model(fp32)), OPSET)
    quantizer_log = logging.getLogger()
    level = quantizer_log.level
    quantizer_log.setLevel(logging.ERROR)  # it advises pre-processing this graph does not need
    try:
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "int8.onnx"
            quantize_static(
                model,
                target,
                calibration_data_reader=None,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                calibration_cache_path=ranges,
            )
            return target.read_bytes()
    finally:
        quantizer_log.setLevel(level)
