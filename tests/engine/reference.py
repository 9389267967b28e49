"""ultralytics' detections on the shared plate photos, recorded: the reference for our decoder.

`make test` compares our ONNX engine with these files and needs no torch. `make test-yolo` runs
ultralytics on the same photos and compares the files with what it finds;
`make test-yolo RECORD_REFERENCE=1` writes them again instead (a new model, a new ultralytics).
"""

import json
import re
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from images.management.commands.fetch_models import sha256_of

FOLDER = Path(__file__).with_name("reference")
CONFIDENCE = 0.25
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Mask:
    """What a mask outline is summed up by: its area and bounds, in pixels of the photo."""

    area: float
    box: Box


@dataclass(frozen=True)
class Expected:
    box: Box
    class_id: int
    score: float
    mask: Mask | None = None


@dataclass(frozen=True)
class Recording:
    model: str  # the ONNX file's name and SHA-256: a recording holds for that file only
    sha256: str
    recorded_with: str
    photos: dict[str, list[Expected]]  # by the photo's file name


def outline(points: Any) -> Mask:
    """Area (shoelace formula) and bounds of a polygon given as (x, y) rows."""
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    x, y = xy[:, 0], xy[:, 1]
    area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return Mask(round(float(area)), _rounded((x.min(), y.min(), x.max(), y.max())))


def from_ultralytics(result: Any) -> list[Expected]:
    """One ultralytics `Results` as the rows we record."""
    boxes = result.boxes
    outlines = result.masks.xy if result.masks is not None else [None] * len(boxes)
    return [
        Expected(
            _rounded(box),
            int(class_id),
            round(float(score), 4),
            outline(polygon) if polygon is not None else None,
        )
        for box, class_id, score, polygon in zip(
            boxes.xyxy.cpu().numpy(),
            boxes.cls.cpu().numpy(),
            boxes.conf.cpu().numpy(),
            outlines,
            strict=True,
        )
    ]


def recording(model: Path, photos: dict[str, list[Expected]]) -> Recording:
    return Recording(model.name, sha256_of(model), f"ultralytics {version('ultralytics')}", photos)


def save(name: str, recorded: Recording) -> None:
    FOLDER.mkdir(exist_ok=True)
    text = json.dumps(asdict(recorded), indent=1)
    # A box on one line: [x1, y1, x2, y2].
    text = re.sub(r"\[\s+([^][{}]*?)\s+\]", lambda m: f"[{' '.join(m[1].split())}]", text)
    (FOLDER / f"{name}.json").write_text(text + "\n")


def load(name: str) -> Recording:
    data = json.loads((FOLDER / f"{name}.json").read_text())
    photos = {
        photo: [
            Expected(
                tuple(row["box"]),
                row["class_id"],
                row["score"],
                Mask(row["mask"]["area"], tuple(row["mask"]["box"])) if row["mask"] else None,
            )
            for row in rows
        ]
        for photo, rows in data["photos"].items()
    }
    return Recording(data["model"], data["sha256"], data["recorded_with"], photos)


def _rounded(values: Any) -> Box:
    x1, y1, x2, y2 = (round(float(v), 1) for v in values)
    return (x1, y1, x2, y2)
