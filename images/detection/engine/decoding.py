"""From a YOLOv8 head's output to boxes, classes and mask outlines in the photo's pixels."""

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from images.detection.engine.letterbox import Letterbox

NMS_IOU = 0.7  # ultralytics' predict default
MAX_DETECTIONS = 300
MASK_ROI_MAX = 512  # masks are traced at most this many pixels across, then scaled to the box


@dataclass(frozen=True)
class Candidates:
    """Rows that passed the confidence threshold, in letterboxed input coordinates."""

    xywh: np.ndarray  # (n, 4) centre x, centre y, width, height
    scores: np.ndarray  # (n,)
    class_ids: np.ndarray  # (n,)
    extra: np.ndarray  # (n, k): mask coefficients (segment), angle (obb), or empty


def candidates(
    output: np.ndarray,
    n_classes: int,
    confidence: float,
    classes: Iterable[int] | None = None,
) -> Candidates:
    """Split a YOLOv8 head output (1, 4 + classes + extra, anchors) and keep confident rows."""
    rows = output[0].T.astype(np.float32)
    class_scores = rows[:, 4 : 4 + n_classes]
    if classes is not None:
        class_scores = np.where(_class_mask(classes, n_classes), class_scores, 0.0)
    class_ids = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(rows)), class_ids]
    keep = scores > confidence
    return Candidates(rows[keep, :4], scores[keep], class_ids[keep], rows[keep, 4 + n_classes :])


@dataclass(frozen=True)
class HeadLayout:
    """How a YOLOv8 head's per-level maps read: each level's tensors, concatenated on channels,
    hold 4 x reg_max box-distance logits (DFL), then the class logits, then the extra channels
    (mask coefficients); levels are in anchor order, with their strides in input pixels."""

    reg_max: int
    n_classes: int
    strides: tuple[int, ...]
    tensors: tuple[tuple[str, ...], ...]  # per level, in channel order


def level_candidates(
    levels: list[list[np.ndarray]],
    layout: HeadLayout,
    confidence: float | None,
    classes: Iterable[int] | None = None,
) -> Candidates:
    """Decode a head's per-level maps (what the export's own tail does), keeping confident rows.

    Rows are picked on their class logits first (sigmoid(x) > c  <=>  x > logit(c)), so the box
    distributions are decoded for the few kept anchors only instead of for all of them. With
    confidence None every anchor is kept.
    """
    box_channels, n_classes = 4 * layout.reg_max, layout.n_classes
    threshold = -np.inf if confidence is None else _logit(confidence)
    allowed = None if classes is None else _class_mask(classes, n_classes)
    bins = np.arange(layout.reg_max, dtype=np.float32)
    parts = []
    for tensors, stride in zip(levels, layout.strides, strict=True):
        block = tensors[0][0] if len(tensors) == 1 else np.concatenate([t[0] for t in tensors])
        width = block.shape[2]
        flat = block.reshape(block.shape[0], -1)
        logits = flat[box_channels : box_channels + n_classes].astype(np.float32)
        if allowed is not None:
            logits = np.where(allowed[:, np.newaxis], logits, -np.inf)
        class_ids = logits.argmax(axis=0)
        best = np.take_along_axis(logits, class_ids[np.newaxis], axis=0)[0]
        keep = np.flatnonzero(best > threshold)
        rows = flat[:, keep].T.astype(np.float32)
        distribution = rows[:, :box_channels].reshape(-1, 4, layout.reg_max)
        distribution = np.exp(distribution - distribution.max(axis=2, keepdims=True))
        left, top, right, bottom = ((distribution @ bins) / distribution.sum(axis=2)).T
        ys, xs = np.divmod(keep, width)
        x1, y1 = xs + 0.5 - left, ys + 0.5 - top
        x2, y2 = xs + 0.5 + right, ys + 0.5 + bottom
        xywh = np.column_stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]) * stride
        scores = 1 / (1 + np.exp(-best[keep]))
        parts.append((xywh, scores, class_ids[keep], rows[:, box_channels + n_classes :]))
    xywh, scores, class_ids, extra = (np.concatenate(column) for column in zip(*parts, strict=True))
    return Candidates(xywh.astype(np.float32), scores.astype(np.float32), class_ids, extra)


def _class_mask(classes: Iterable[int], n_classes: int) -> np.ndarray:
    allowed = np.zeros(n_classes, dtype=bool)
    allowed[[c for c in classes if 0 <= c < n_classes]] = True
    return allowed


def _logit(probability: float) -> float:
    if probability <= 0:
        return -np.inf
    if probability >= 1:
        return np.inf
    return float(np.log(probability / (1 - probability)))


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Class-aware NMS (OpenCV's batched NMS); indices by descending score."""
    if len(scores) == 0:
        return np.empty(0, dtype=int)
    xywh = np.column_stack([boxes_xyxy[:, :2], boxes_xyxy[:, 2:] - boxes_xyxy[:, :2]])
    keep = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), class_ids.tolist(), 0.0, NMS_IOU)
    keep = np.asarray(keep, dtype=int).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")][:MAX_DETECTIONS]


def nms_rotated(xywha: np.ndarray, scores: np.ndarray, class_ids: np.ndarray) -> np.ndarray:
    """Class-aware rotated NMS: OpenCV's rotated-rectangle NMS, one class at a time."""
    kept: list[int] = []
    for class_id in np.unique(class_ids):
        index = np.flatnonzero(class_ids == class_id)
        rects = [
            ((float(cx), float(cy)), (float(w), float(h)), float(np.degrees(a)))
            for cx, cy, w, h, a in xywha[index]
        ]
        keep = cv2.dnn.NMSBoxesRotated(rects, scores[index].tolist(), 0.0, NMS_IOU)
        kept.extend(index[np.asarray(keep, dtype=int).reshape(-1)].tolist())
    order = np.asarray(kept, dtype=int)
    return order[np.argsort(-scores[order], kind="stable")][:MAX_DETECTIONS]


def xywh_to_xyxy(xywh: np.ndarray) -> np.ndarray:
    half = xywh[:, 2:4] / 2
    return np.column_stack([xywh[:, :2] - half, xywh[:, :2] + half])


def boxes_to_original(boxes: np.ndarray, box: Letterbox, width: int, height: int) -> np.ndarray:
    xs, ys = box.to_original(boxes[:, [0, 2]], boxes[:, [1, 3]])
    xs, ys = np.clip(xs, 0, width), np.clip(ys, 0, height)
    return np.column_stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]])


@dataclass(frozen=True)
class ProtoGrid:
    """Where a block of prototype-mask logits lies: the grid's stride in input pixels, and the
    block's first column and row in the full grid (not zero when only a crop was computed)."""

    stride: float
    x0: float = 0.0
    y0: float = 0.0


def mask_polygon(
    logits: np.ndarray,
    box_xyxy: np.ndarray,
    box: Letterbox,
    grid: ProtoGrid,
) -> tuple[tuple[float, float], ...] | None:
    """Trace a prototype mask (mh x mw logits) inside its box, in original pixels.

    Rather than upsampling the whole mask to the photo's size (megapixels per plate), the box is
    sampled directly from the prototype grid with bilinear interpolation, which is what
    ultralytics' upsample-then-crop computes.
    """
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    scale = min(1.0, MASK_ROI_MAX / max(x2 - x1, y2 - y1))
    roi_w, roi_h = max(1, round((x2 - x1) * scale)), max(1, round((y2 - y1) * scale))
    xs = x1 + (np.arange(roi_w, dtype=np.float32) + 0.5) / scale
    ys = y1 + (np.arange(roi_h, dtype=np.float32) + 0.5) / scale
    grid_x = (xs * box.ratio + box.pad_x) / grid.stride - 0.5 - grid.x0
    grid_y = (ys * box.ratio + box.pad_y) / grid.stride - 0.5 - grid.y0
    map_x = grid_x[np.newaxis, :].repeat(roi_h, axis=0)
    map_y = grid_y[:, np.newaxis].repeat(roi_w, axis=1)
    sampled = cv2.remap(logits.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR)
    binary = (sampled > 0).astype(np.uint8)  # sigmoid(x) > 0.5  ⇔  x > 0
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float64)
    points = outline / scale + (x1, y1)
    return tuple((round(x, 1), round(y, 1)) for x, y in points)
