"""What a detector is: the model file it runs (`ModelSpec`, read from the metadata of the export),
what it finds (`Found`, in pixels of the image as given) and how it is called (`Detector`)."""

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import PIL.Image

TASKS = ("detect", "segment", "obb")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    path: Path
    task: str
    input_size: int
    class_names: tuple[str, ...]
    confidence: float = 0.25
    backend: str = "onnx"


@dataclass(frozen=True)
class Found:
    class_id: int
    class_name: str
    confidence: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    polygon: tuple[tuple[float, float], ...] | None = None  # mask outline or OBB corners

    def normalised_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 / width, y1 / height, x2 / width, y2 / height)


class Detector(Protocol):
    spec: ModelSpec

    def predict(
        self,
        image: PIL.Image.Image,
        *,
        confidence: float | None = None,
        classes: Iterable[int] | None = None,
        size: int | None = None,
    ) -> list[Found]: ...


def read_onnx_metadata(path: Path) -> dict[str, Any]:
    """Task, class names and input size from the metadata ultralytics writes into its exports."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    names = ast.literal_eval(meta.get("names", "{}"))  # a Python dict literal, not JSON
    shape = session.get_inputs()[0].shape
    return {
        "task": meta.get("task", "detect"),
        "class_names": [names[i] for i in sorted(names)],
        "input_size": int(shape[-1]) if isinstance(shape[-1], int) else 640,
    }
