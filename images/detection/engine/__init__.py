"""YOLO inference: ONNX Runtime with our own decoding.

Detectors return `Found` objects, in pixels of the image as given (callers pass images with the
EXIF orientation already applied). ultralytics, running the same ONNX files, is the reference our
decoder is tested against (`ultralytics_model`); it never loads a .pt in this process.

The flow, one module each: `detector` says what a model file is (`ModelSpec`, from the export's
metadata) and what a detection is (`Found`); on load, `graph` cuts the export (a segmentation
model's prototype branch apart, the head before its decoding tail) and `backends` opens ONNX
Runtime sessions on the chosen device (`get_detector`, one per model file in a process). Each
prediction `letterbox`es the photo into the network's input, runs it, and `decoding` turns the
head's output into boxes, classes and mask outlines back in the photo's pixels.
"""

from images.detection.engine.backends import (
    BackendUnavailable,
    OnnxDetector,
    execution_providers,
    get_detector,
    ordered_map,
    ultralytics_model,
)
from images.detection.engine.detector import TASKS, Detector, Found, ModelSpec, read_onnx_metadata

__all__ = [
    "TASKS",
    "BackendUnavailable",
    "Detector",
    "Found",
    "ModelSpec",
    "OnnxDetector",
    "execution_providers",
    "get_detector",
    "ordered_map",
    "read_onnx_metadata",
    "ultralytics_model",
]
